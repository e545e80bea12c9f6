package progress

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestCountsAndLine(t *testing.T) {
	var nilP *Progress
	nilP.AddBytes(1) // nil is valid and counts nothing
	nilP.Done()
	p := New("backup app", &bytes.Buffer{}) // not a terminal: no drawing
	p.start = time.Now().Add(-2 * time.Second)
	p.AddTables(3)
	p.AddBytes(3 << 20)
	p.AddRows(1500)
	p.TableDone()
	p.SetTotalBytes(9 << 20)
	line := p.Line()
	for _, want := range []string{"backup app", "3.0 MiB of ~9.0 MiB", "1500 rows", "1/3 tables", "/s", "ETA"} {
		if !strings.Contains(line, want) {
			t.Errorf("line %q lacks %q", line, want)
		}
	}
	if p.Bytes() != 3<<20 || p.Rows() != 1500 {
		t.Errorf("counts: %d bytes, %d rows", p.Bytes(), p.Rows())
	}
	// Work that counts bytes only (an export) shows no rows or tables.
	q := New("export", &bytes.Buffer{})
	q.start = time.Now().Add(-time.Second)
	q.AddBytes(1 << 20)
	if line := q.Line(); !strings.HasPrefix(line, "export: 1.0 MiB, ") || strings.Contains(line, "rows") || strings.Contains(line, "tables") || strings.Contains(line, "ETA") {
		t.Errorf("bytes-only line: %q", line)
	}
	// The next step starts from zero with its own label and total.
	p.Restart("verify: checksums", 5<<20)
	p.AddBytes(1 << 20)
	if line := p.Line(); !strings.HasPrefix(line, "verify: checksums: 1.0 MiB of ~5.0 MiB, ") || strings.Contains(line, "rows") || strings.Contains(line, "tables") {
		t.Errorf("line after Restart: %q", line)
	}
	p.Done()
}

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 5 << 30: "5.0 GiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// Reader and Writer count what passes through them once; a nil progress
// hands back the reader or writer itself.
func TestReaderAndWriter(t *testing.T) {
	p := New("copy", &bytes.Buffer{})
	defer p.Done()
	var out bytes.Buffer
	n, err := io.Copy(p.Writer(&out), p.Reader(strings.NewReader(strings.Repeat("x", 10000))))
	if err != nil || n != 10000 || out.Len() != 10000 {
		t.Fatalf("copied %d bytes (%v), wrote %d", n, err, out.Len())
	}
	if p.Bytes() != 20000 {
		t.Errorf("counted %d bytes, want 10000 read and 10000 written", p.Bytes())
	}
	var nilp *Progress
	r := strings.NewReader("x")
	if nilp.Reader(r) != io.Reader(r) || nilp.Writer(&out) != io.Writer(&out) {
		t.Error("a nil progress wraps its reader or writer")
	}
}

// Fit keeps a line within the width, dropping the least useful parts
// first (rows, rate, tables, total, ETA), then shortening the label.
func TestFit(t *testing.T) {
	f := Fields{Label: "backup postgres://backup@db.example.internal:5432/orders_production", Done: "1.2 GiB", Total: "~4.8 GiB",
		Rows: "12345678 rows", Tables: "17/69 tables", Rate: "85.3 MiB/s", ETA: "ETA 43s"}
	full := f.String()
	if got := Fit(f, 0); got != full {
		t.Errorf("Fit(0) = %q, want the whole line %q", got, full)
	}
	if got := Fit(f, 200); got != full {
		t.Errorf("Fit(200) = %q, want the whole line", got)
	}
	n := len([]rune(full)) // 138; the label is 67 columns
	all := []string{"12345678 rows", "17/69 tables", "85.3 MiB/s", "ETA 43s", "1.2 GiB of ~4.8 GiB"}
	cases := []struct {
		width      int
		keep, gone []string
	}{
		{n, append(all, f.Label), nil},
		// A long label is shortened in the middle first, to 40 columns.
		{n - 10, append(all, "backup postgres://", "…", "orders_production: 1.2 GiB"), nil},
		{n - 27, append(all, "backup postgres://b…32/orders_production: 1.2 GiB"), nil},
		// Then rows, the rate and the tables go.
		{n - 28, []string{"backup postgres://b…32/orders_production: 1.2 GiB of ~4.8 GiB", "17/69 tables", "85.3 MiB/s", "ETA 43s"}, []string{"rows"}},
		{n - 60, []string{"backup postgres://b…32/orders_production: 1.2 GiB of ~4.8 GiB, ETA 43s"}, []string{"rows", "/s", "tables"}},
		{80, []string{"backup postgres://b…32/orders_production: 1.2 GiB of ~4.8 GiB, ETA 43s"}, []string{"rows", "/s", "tables"}},
		// Then the label, down to 24 columns.
		{59, []string{"backup postgre…ers_production: 1.2 GiB of ~4.8 GiB, ETA 43s"}, []string{"rows", "/s", "tables"}},
		// Then the total and the ETA.
		{44, []string{"backup post…s_production: 1.2 GiB, ETA 43s"}, []string{"rows", "/s", "tables", "of ~"}},
		{40, []string{"backup post…s_production: 1.2 GiB"}, []string{"rows", "/s", "tables", "of ~", "ETA"}},
		{20, []string{"…"}, nil},
	}
	for _, c := range cases {
		got := Fit(f, c.width)
		if n := len([]rune(got)); n > c.width {
			t.Errorf("Fit(%d) is %d columns: %q", c.width, n, got)
		}
		for _, k := range c.keep {
			if !strings.Contains(got, k) {
				t.Errorf("Fit(%d) = %q lacks %q", c.width, got, k)
			}
		}
		for _, g := range c.gone {
			if strings.Contains(got, g) {
				t.Errorf("Fit(%d) = %q still has %q", c.width, got, g)
			}
		}
	}
	// A short line is never changed; a non-ASCII label is cut by runes.
	short := Fields{Label: "export", Done: "1.0 MiB", Rate: "9.0 MiB/s"}
	if got := Fit(short, 60); got != "export: 1.0 MiB, 9.0 MiB/s" {
		t.Errorf("short line: %q", got)
	}
	wide := Fields{Label: "backup " + strings.Repeat("é", 80), Done: "1 B", Rate: "1 B/s"}
	if got := Fit(wide, 60); len([]rune(got)) > 60 || !utf8.ValidString(got) || !strings.Contains(got, "é…é") || !strings.HasSuffix(got, "é: 1 B, 1 B/s") {
		t.Errorf("non-ASCII label: %q", got)
	}
}
