package enginetest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/snapdata/snapdata/internal/manifest"
	"github.com/snapdata/snapdata/internal/progress"
)

// CheckCounted fails t unless p counted every row and byte of tables once
// and shows every table done: what a checksum run's progress must show.
func CheckCounted(t testing.TB, p *progress.Progress, tables []manifest.Table) {
	t.Helper()
	var rows, size int64
	for _, tb := range tables {
		rows += tb.Rows
		size += tb.Bytes
	}
	if p.Rows() != rows || p.Bytes() != size {
		t.Errorf("progress counted %d rows and %d bytes, the tables hold %d and %d", p.Rows(), p.Bytes(), rows, size)
	}
	if want := fmt.Sprintf("%d/%d tables", len(tables), len(tables)); len(tables) > 0 && !strings.Contains(p.Line(), want) {
		t.Errorf("progress line %q lacks %q", p.Line(), want)
	}
}
