package postgres

import (
	"context"
	"os"
	"testing"

	"github.com/snapdata/snapdata/internal/testsrv"
)

func TestZZDumpRich(t *testing.T) {
	pg := testsrv.Postgres(t)
	src := loadRich(t, pg)
	mem, _ := backupMem(t, New(), src, 1)
	for _, n := range []string{streamPre, streamPost, streamColumns, streamSequences} {
		b, _, err := readStream(context.Background(), mem, n)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile("/tmp/rich_"+n[strings_index(n)+1:], b, 0o644)
	}
}

func strings_index(s string) int {
	for i := range s {
		if s[i] == '/' {
			return i
		}
	}
	return -1
}
