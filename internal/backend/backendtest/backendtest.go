// Package backendtest is the conformance suite that every backend.Backend
// implementation must pass. A backend's tests call Run with a function that
// returns a new backend at a fresh, empty location (not yet created).
package backendtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/snapdata/snapdata/internal/backend"
)

// NumDataObjects is how many data objects the listing test stores: more
// than 1000, so that S3 listings need more than one page.
const NumDataObjects = 1100

// Run runs the conformance suite. newBackend must return a backend at a
// fresh, empty location each time it is called; Run calls Create itself.
func Run(t *testing.T, newBackend func(t *testing.T) backend.Backend) {
	open := func(t *testing.T, create bool) backend.Backend {
		t.Helper()
		b := newBackend(t)
		t.Cleanup(func() {
			if err := b.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		if b.Location() == "" {
			t.Error("Location() is empty")
		}
		if create {
			if err := b.Create(context.Background()); err != nil {
				t.Fatalf("Create on an empty location: %v", err)
			}
		}
		return b
	}
	t.Run("CreateEmpty", func(t *testing.T) { testCreateEmpty(t, open(t, false)) })
	t.Run("CreateRefusesExisting", func(t *testing.T) { testCreateRefusesExisting(t, open(t, true)) })
	t.Run("SaveLoad", func(t *testing.T) { testSaveLoad(t, open(t, true)) })
	t.Run("Missing", func(t *testing.T) { testMissing(t, open(t, true)) })
	t.Run("SaveReplaces", func(t *testing.T) { testSaveReplaces(t, open(t, true)) })
	t.Run("Remove", func(t *testing.T) { testRemove(t, open(t, true)) })
	t.Run("List", func(t *testing.T) { testList(t, open(t, true)) })
	t.Run("ListCallbackError", func(t *testing.T) { testListCallbackError(t, open(t, true)) })
	t.Run("ConcurrentSaves", func(t *testing.T) { testConcurrentSaves(t, open(t, true)) })
	t.Run("Canceled", func(t *testing.T) { testCanceled(t, open(t, true)) })
	t.Run("HexNames", func(t *testing.T) { testHexNames(t, open(t, true)) })
}

// RandomName returns a random 64-character hex name, like a chunk ID.
func RandomName() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// listAll returns the objects of type ft, by name.
func listAll(t *testing.T, b backend.Backend, ft backend.FileType) map[string]int64 {
	t.Helper()
	got := map[string]int64{}
	err := b.List(context.Background(), ft, func(fi backend.FileInfo) error {
		if _, dup := got[fi.Name]; dup {
			t.Errorf("List(%s) returned %s twice", ft, fi.Name)
		}
		got[fi.Name] = fi.Size
		return nil
	})
	if err != nil {
		t.Fatalf("List(%s): %v", ft, err)
	}
	return got
}

func mustSave(t *testing.T, b backend.Backend, h backend.Handle, data []byte) {
	t.Helper()
	if err := b.Save(context.Background(), h, data); err != nil {
		t.Fatalf("Save(%s): %v", h, err)
	}
}

func checkLoad(t *testing.T, b backend.Backend, h backend.Handle, want []byte) {
	t.Helper()
	got, err := b.Load(context.Background(), h)
	if err != nil {
		t.Errorf("Load(%s): %v", h, err)
		return
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Load(%s) returned %d bytes that differ from the %d saved", h, len(got), len(want))
	}
}

func testCreateEmpty(t *testing.T, b backend.Backend) {
	ctx := context.Background()
	if err := b.Create(ctx); err != nil {
		t.Fatalf("Create on an empty location: %v", err)
	}
	for _, ft := range backend.AllTypes {
		if got := listAll(t, b, ft); len(got) != 0 {
			t.Errorf("List(%s) on a new repository = %v, want nothing", ft, got)
		}
	}
	// A freshly created location works for Save/Load at once.
	h := backend.Handle{Type: backend.Snapshot, Name: RandomName()}
	mustSave(t, b, h, []byte("x"))
	checkLoad(t, b, h, []byte("x"))
}

func testCreateRefusesExisting(t *testing.T, b backend.Backend) {
	ctx := context.Background()
	// Create without a config yet is allowed again (an interrupted init).
	if err := b.Create(ctx); err != nil {
		t.Fatalf("second Create before a config exists: %v", err)
	}
	mustSave(t, b, backend.Handle{Type: backend.Config}, []byte("config"))
	err := b.Create(ctx)
	if err == nil {
		t.Fatal("Create succeeded where a repository config exists")
	}
	if !strings.Contains(err.Error(), "already exists") {
		t.Errorf("Create error %q does not say a repository already exists", err)
	}
	checkLoad(t, b, backend.Handle{Type: backend.Config}, []byte("config"))
}

func testSaveLoad(t *testing.T, b backend.Backend) {
	ctx := context.Background()
	cases := []struct {
		h    backend.Handle
		data []byte
	}{
		{backend.Handle{Type: backend.Config}, []byte(`{"version":1}`)},
		{backend.Handle{Type: backend.Data, Name: RandomName()}, []byte{}},
		{backend.Handle{Type: backend.Data, Name: RandomName()}, randomBytes(1)},
		{backend.Handle{Type: backend.Data, Name: RandomName()}, randomBytes(8<<20 + 17)},
		{backend.Handle{Type: backend.Key, Name: RandomName()}, randomBytes(300)},
		{backend.Handle{Type: backend.Snapshot, Name: RandomName()}, randomBytes(1000)},
		{backend.Handle{Type: backend.Lock, Name: RandomName()}, randomBytes(50)},
		{backend.Handle{Type: backend.DataIndex, Name: RandomName()}, randomBytes(4096)},
	}
	for _, c := range cases {
		mustSave(t, b, c.h, c.data)
	}
	for _, c := range cases {
		checkLoad(t, b, c.h, c.data)
		fi, err := b.Stat(ctx, c.h)
		if err != nil {
			t.Errorf("Stat(%s): %v", c.h, err)
			continue
		}
		if fi.Size != int64(len(c.data)) {
			t.Errorf("Stat(%s).Size = %d, want %d", c.h, fi.Size, len(c.data))
		}
		if c.h.Type != backend.Config && fi.Name != c.h.Name {
			t.Errorf("Stat(%s).Name = %q, want %q", c.h, fi.Name, c.h.Name)
		}
	}
	// The returned slice is the caller's: changing it changes nothing stored.
	got, err := b.Load(ctx, cases[2].h)
	if err != nil {
		t.Fatal(err)
	}
	got[0] ^= 0xff
	checkLoad(t, b, cases[2].h, cases[2].data)
}

func testMissing(t *testing.T, b backend.Backend) {
	ctx := context.Background()
	for _, h := range []backend.Handle{
		{Type: backend.Config},
		{Type: backend.Data, Name: RandomName()},
		{Type: backend.Snapshot, Name: RandomName()},
		{Type: backend.Lock, Name: "nonexistent"},
	} {
		if _, err := b.Load(ctx, h); err == nil || !backend.IsNotFound(err) {
			t.Errorf("Load(%s) of a missing object: err = %v, want one wrapping ErrNotFound", h, err)
		}
		if _, err := b.Stat(ctx, h); err == nil || !backend.IsNotFound(err) {
			t.Errorf("Stat(%s) of a missing object: err = %v, want one wrapping ErrNotFound", h, err)
		}
	}
	// A sibling of an existing object is still missing.
	name := RandomName()
	mustSave(t, b, backend.Handle{Type: backend.Data, Name: name}, []byte("a"))
	other := name[:2] + RandomName()[2:]
	if _, err := b.Load(ctx, backend.Handle{Type: backend.Data, Name: other}); !backend.IsNotFound(err) {
		t.Errorf("Load of a missing object next to an existing one: err = %v, want ErrNotFound", err)
	}
}

func testSaveReplaces(t *testing.T, b backend.Backend) {
	h := backend.Handle{Type: backend.Lock, Name: RandomName()}
	mustSave(t, b, h, []byte("first version, longer"))
	mustSave(t, b, h, []byte("second"))
	checkLoad(t, b, h, []byte("second"))
	got := listAll(t, b, backend.Lock)
	if len(got) != 1 || got[h.Name] != int64(len("second")) {
		t.Errorf("List after replacing = %v, want only %s with size %d", got, h.Name, len("second"))
	}
	cfg := backend.Handle{Type: backend.Config}
	mustSave(t, b, cfg, []byte("one"))
	mustSave(t, b, cfg, []byte("two!"))
	checkLoad(t, b, cfg, []byte("two!"))
}

func testRemove(t *testing.T, b backend.Backend) {
	ctx := context.Background()
	keep := backend.Handle{Type: backend.Data, Name: RandomName()}
	h := backend.Handle{Type: backend.Data, Name: keep.Name[:2] + RandomName()[2:]}
	mustSave(t, b, keep, []byte("keep"))
	mustSave(t, b, h, []byte("gone"))
	if err := b.Remove(ctx, h); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if err := b.Remove(ctx, h); err != nil {
		t.Errorf("Remove of an already removed object: %v", err)
	}
	if err := b.Remove(ctx, backend.Handle{Type: backend.Snapshot, Name: RandomName()}); err != nil {
		t.Errorf("Remove of a never saved object: %v", err)
	}
	if _, err := b.Load(ctx, h); !backend.IsNotFound(err) {
		t.Errorf("Load after Remove: err = %v, want ErrNotFound", err)
	}
	if _, err := b.Stat(ctx, h); !backend.IsNotFound(err) {
		t.Errorf("Stat after Remove: err = %v, want ErrNotFound", err)
	}
	checkLoad(t, b, keep, []byte("keep"))
	if got := listAll(t, b, backend.Data); len(got) != 1 || got[keep.Name] != 4 {
		t.Errorf("List(data) after Remove = %v, want only %s", got, keep.Name)
	}
	cfg := backend.Handle{Type: backend.Config}
	mustSave(t, b, cfg, []byte("c"))
	if err := b.Remove(ctx, cfg); err != nil {
		t.Fatalf("Remove(config): %v", err)
	}
	if got := listAll(t, b, backend.Config); len(got) != 0 {
		t.Errorf("List(config) after Remove = %v", got)
	}
}

// saveAll saves objects from several goroutines.
func saveAll(t *testing.T, b backend.Backend, objs map[backend.Handle][]byte, workers int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := make(chan backend.Handle)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for h := range ch {
				if err := b.Save(ctx, h, objs[h]); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
						cancel()
					}
					mu.Unlock()
				}
			}
		}()
	}
	for h := range objs {
		ch <- h
	}
	close(ch)
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("Save: %v", firstErr)
	}
}

func testList(t *testing.T, b backend.Backend) {
	want := map[backend.FileType]map[string]int64{}
	objs := map[backend.Handle][]byte{}
	add := func(ft backend.FileType, n int) {
		want[ft] = map[string]int64{}
		for i := 0; i < n; i++ {
			h := backend.Handle{Type: ft, Name: RandomName()}
			data := randomBytes(i % 7)
			objs[h] = data
			want[ft][h.Name] = int64(len(data))
		}
	}
	add(backend.Data, NumDataObjects)
	add(backend.Snapshot, 5)
	add(backend.Key, 1)
	add(backend.Lock, 2)
	add(backend.DataIndex, 3)
	objs[backend.Handle{Type: backend.Config}] = []byte("cfg")
	want[backend.Config] = map[string]int64{"config": 3}
	saveAll(t, b, objs, 16)
	for _, ft := range backend.AllTypes {
		got := listAll(t, b, ft)
		if len(got) != len(want[ft]) {
			t.Errorf("List(%s) returned %d objects, want %d", ft, len(got), len(want[ft]))
		}
		var diffs []string
		for name, size := range want[ft] {
			if gs, ok := got[name]; !ok {
				diffs = append(diffs, "missing "+name)
			} else if gs != size {
				diffs = append(diffs, fmt.Sprintf("%s: size %d, want %d", name, gs, size))
			}
		}
		for name := range got {
			if _, ok := want[ft][name]; !ok {
				diffs = append(diffs, "unexpected "+name)
			}
		}
		sort.Strings(diffs)
		if len(diffs) > 5 {
			diffs = append(diffs[:5], fmt.Sprintf("... and %d more", len(diffs)-5))
		}
		if len(diffs) > 0 {
			t.Errorf("List(%s): %s", ft, strings.Join(diffs, "; "))
		}
	}
}

func testListCallbackError(t *testing.T, b backend.Backend) {
	for i := 0; i < 3; i++ {
		mustSave(t, b, backend.Handle{Type: backend.Snapshot, Name: RandomName()}, []byte("s"))
	}
	stop := errors.New("stop here")
	calls := 0
	err := b.List(context.Background(), backend.Snapshot, func(backend.FileInfo) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) {
		t.Errorf("List returned %v, want the callback's error", err)
	}
	if calls != 1 {
		t.Errorf("List called the callback %d times after it failed, want 1", calls)
	}
}

func testConcurrentSaves(t *testing.T, b backend.Backend) {
	const goroutines, perGoroutine = 24, 6
	objs := map[backend.Handle][]byte{}
	for i := 0; i < goroutines*perGoroutine; i++ {
		objs[backend.Handle{Type: backend.Data, Name: RandomName()}] = randomBytes(100 + i)
	}
	shared := backend.Handle{Type: backend.Lock, Name: RandomName()}
	versions := map[string]bool{}
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*(perGoroutine+1))
	handles := make([]backend.Handle, 0, len(objs))
	for h := range objs {
		handles = append(handles, h)
	}
	for g := 0; g < goroutines; g++ {
		v := fmt.Sprintf("version %d of the shared object", g)
		versions[v] = true
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			ctx := context.Background()
			for _, h := range handles[g*perGoroutine : (g+1)*perGoroutine] {
				if err := b.Save(ctx, h, objs[h]); err != nil {
					errs <- err
				}
			}
			// Everybody also writes the same object: one complete
			// version must win.
			if err := b.Save(ctx, shared, []byte(v)); err != nil {
				errs <- err
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Save: %v", err)
	}
	for h, data := range objs {
		checkLoad(t, b, h, data)
	}
	got, err := b.Load(context.Background(), shared)
	if err != nil {
		t.Fatalf("Load(shared): %v", err)
	}
	if !versions[string(got)] {
		t.Errorf("the object saved concurrently holds %q, which no writer saved", got)
	}
	if n := len(listAll(t, b, backend.Data)); n != len(objs) {
		t.Errorf("List(data) after concurrent saves: %d objects, want %d", n, len(objs))
	}
}

func testCanceled(t *testing.T, b backend.Backend) {
	existing := backend.Handle{Type: backend.Snapshot, Name: RandomName()}
	mustSave(t, b, existing, []byte("here"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h := backend.Handle{Type: backend.Snapshot, Name: RandomName()}
	if err := b.Save(ctx, h, []byte("never")); err == nil {
		t.Error("Save with a canceled context succeeded")
	} else if !errors.Is(err, context.Canceled) {
		t.Errorf("Save with a canceled context: err = %v, want one wrapping context.Canceled", err)
	}
	if _, err := b.Stat(context.Background(), h); !backend.IsNotFound(err) {
		t.Errorf("after a canceled Save, Stat: err = %v, want ErrNotFound", err)
	}
	if _, err := b.Load(ctx, existing); err == nil {
		t.Error("Load with a canceled context succeeded")
	} else if !errors.Is(err, context.Canceled) {
		t.Errorf("Load with a canceled context: err = %v, want one wrapping context.Canceled", err)
	}
	calls := 0
	err := b.List(ctx, backend.Snapshot, func(backend.FileInfo) error { calls++; return nil })
	if err == nil {
		t.Error("List with a canceled context succeeded")
	} else if !errors.Is(err, context.Canceled) {
		t.Errorf("List with a canceled context: err = %v, want one wrapping context.Canceled", err)
	}
	if calls != 0 {
		t.Errorf("List with a canceled context called back %d times", calls)
	}
	// Cancelling while listing stops the listing.
	for i := 0; i < 20; i++ {
		mustSave(t, b, backend.Handle{Type: backend.Snapshot, Name: RandomName()}, []byte("s"))
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	calls = 0
	err = b.List(ctx2, backend.Snapshot, func(backend.FileInfo) error {
		calls++
		cancel2()
		return ctx2.Err()
	})
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Errorf("List canceled by its callback: err = %v after %d calls, want context.Canceled after 1", err, calls)
	}
}

func testHexNames(t *testing.T, b backend.Backend) {
	const hexChars = "0123456789abcdef"
	objs := map[backend.Handle][]byte{}
	for _, c := range hexChars {
		name := strings.Repeat(string(c), 64)
		objs[backend.Handle{Type: backend.Data, Name: name}] = []byte(name[:1])
		objs[backend.Handle{Type: backend.DataIndex, Name: name}] = []byte(name[:2])
	}
	// Every two-character prefix, and every character at every place.
	for i := 0; i < 16; i++ {
		name := strings.Repeat(hexChars[i:]+hexChars[:i], 4)
		objs[backend.Handle{Type: backend.Data, Name: name}] = []byte(name)
	}
	for i := 0; i < 256; i++ {
		name := fmt.Sprintf("%02x", i) + RandomName()[2:]
		objs[backend.Handle{Type: backend.Data, Name: name}] = []byte{byte(i)}
	}
	saveAll(t, b, objs, 8)
	wantData, wantIndex := 0, 0
	for h, data := range objs {
		checkLoad(t, b, h, data)
		if h.Type == backend.Data {
			wantData++
		} else {
			wantIndex++
		}
	}
	if n := len(listAll(t, b, backend.Data)); n != wantData {
		t.Errorf("List(data) = %d objects, want %d", n, wantData)
	}
	if n := len(listAll(t, b, backend.DataIndex)); n != wantIndex {
		t.Errorf("List(index) = %d objects, want %d", n, wantIndex)
	}
}
