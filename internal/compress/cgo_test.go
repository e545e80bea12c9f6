//go:build cgo

package compress

import (
	"sync"
	"testing"
)

// However many goroutines call at once, no more libzstd contexts are made
// than the concurrency the encoder was given: that bounds its memory.
func TestCgoEncoderMakesAtMostConcurrencyContexts(t *testing.T) {
	enc, err := NewEncoder(Better, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	in := sample(256<<10, 3)
	var wg sync.WaitGroup
	for range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := enc.Append(nil, in); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if made := enc.(*cgoEncoder).made.Load(); made < 1 || made > 3 {
		t.Fatalf("%d contexts made for concurrency 3", made)
	}
}
