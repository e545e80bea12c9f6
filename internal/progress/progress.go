// Package progress counts bytes, rows and tables of long operations and
// draws a one-line status on a terminal. Off a terminal it stays silent.
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/term"
)

// Progress counts work. A nil *Progress is valid and counts nothing, so
// engines can call it unconditionally.
type Progress struct {
	mu         sync.Mutex // guards label, unit and start
	label      string
	unit       string // what the item counter counts; "" is tables
	bytes      atomic.Int64
	rows       atomic.Int64
	tablesDone atomic.Int64
	tables     atomic.Int64
	totalBytes atomic.Int64 // estimate, 0 if unknown
	start      time.Time

	out   io.Writer
	width func() int // the terminal's columns now; 0 when unknown
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

// New returns a Progress that draws to w every interval when w is a
// terminal; otherwise it only counts.
func New(label string, w io.Writer) *Progress {
	p := &Progress{label: label, start: time.Now()}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.out = w
		fd := int(f.Fd())
		p.width = func() int {
			w, _, err := term.GetSize(fd)
			if err != nil {
				return 0
			}
			return w
		}
		p.stop = make(chan struct{})
		p.done = make(chan struct{})
		go p.loop()
	}
	return p
}

// AddBytes counts n bytes processed.
func (p *Progress) AddBytes(n int64) {
	if p != nil {
		p.bytes.Add(n)
	}
}

// Reader returns r counting the bytes read through it (r itself when p is
// nil).
func (p *Progress) Reader(r io.Reader) io.Reader {
	if p == nil {
		return r
	}
	return &reader{r: r, p: p}
}

// Writer returns w counting the bytes written through it (w itself when p
// is nil).
func (p *Progress) Writer(w io.Writer) io.Writer {
	if p == nil {
		return w
	}
	return &writer{w: w, p: p}
}

type reader struct {
	r io.Reader
	p *Progress
}

func (c *reader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.p.AddBytes(int64(n))
	return n, err
}

type writer struct {
	w io.Writer
	p *Progress
}

func (c *writer) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.p.AddBytes(int64(n))
	return n, err
}

// AddRows counts n rows processed.
func (p *Progress) AddRows(n int64) {
	if p != nil {
		p.rows.Add(n)
	}
}

// AddTables adds n to the number of tables expected.
func (p *Progress) AddTables(n int) {
	if p != nil {
		p.tables.Add(int64(n))
	}
}

// TableDone counts one finished table.
func (p *Progress) TableDone() {
	if p != nil {
		p.tablesDone.Add(1)
	}
}

// SetTotalBytes sets the expected byte count for the ETA.
func (p *Progress) SetTotalBytes(n int64) {
	if p != nil {
		p.totalBytes.Store(n)
	}
}

// Bytes returns the bytes counted so far.
func (p *Progress) Bytes() int64 {
	if p == nil {
		return 0
	}
	return p.bytes.Load()
}

// Rows returns the rows counted so far.
func (p *Progress) Rows() int64 {
	if p == nil {
		return 0
	}
	return p.rows.Load()
}

// Done stops drawing and clears the line.
func (p *Progress) Done() {
	if p == nil || p.stop == nil {
		return
	}
	p.once.Do(func() {
		close(p.stop)
		<-p.done
	})
}

func (p *Progress) loop() {
	defer close(p.done)
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	resized, stopResize := notifyResize()
	defer stopResize()
	for {
		select {
		case <-p.stop:
			fmt.Fprint(p.out, "\r\033[K")
			return
		case <-t.C:
		case <-resized: // redraw at the new width at once
		}
		// Never as wide as the terminal: a line that fills the last
		// column wraps on some terminals, and each redraw would stack.
		fmt.Fprint(p.out, "\r\033[K"+Fit(p.fields(), p.width()-1))
	}
}

// SetUnit names what AddTables and TableDone count, when it is not
// tables (a check counts objects).
func (p *Progress) SetUnit(unit string) {
	if p != nil {
		p.mu.Lock()
		p.unit = unit
		p.mu.Unlock()
	}
}

// Restart begins the next step of a long operation: a new label, the
// counters and the clock from zero, and the step's expected byte count.
func (p *Progress) Restart(label string, totalBytes int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.label = label
	p.start = time.Now()
	p.bytes.Store(0)
	p.rows.Store(0)
	p.tables.Store(0)
	p.tablesDone.Store(0)
	p.totalBytes.Store(totalBytes)
}

// Line renders the current status in full.
func (p *Progress) Line() string { return Fit(p.fields(), 0) }

// Fields is one status line in parts, so that it can be fitted to a
// width: Fit drops the least useful parts first.
type Fields struct {
	Label  string // "backup orders"
	Done   string // "3.0 MiB"
	Total  string // "~9.0 MiB", or ""
	Rows   string // "1500 rows", or ""
	Tables string // "1/3 tables", or ""
	Rate   string // "1.5 MiB/s"
	ETA    string // "ETA 4s", or ""
}

// A label is shortened to roomyLabel columns before any part goes, and to
// minLabel before the total and the ETA go.
const (
	roomyLabel = 40
	minLabel   = 24
)

// dropOrder lists the ways to shorten a line, least useful part first:
// a long label to roomyLabel columns; rows, rate and tables; the label to
// minLabel; the total and the ETA; the label to its first column.
var dropOrder = []func(f *Fields, width int){
	func(f *Fields, width int) {
		f.Label = shorten(f.Label, columns(f.Label)-(columns(f.String())-width), roomyLabel)
	},
	func(f *Fields, _ int) { f.Rows = "" },
	func(f *Fields, _ int) { f.Rate = "" },
	func(f *Fields, _ int) { f.Tables = "" },
	func(f *Fields, width int) {
		f.Label = shorten(f.Label, columns(f.Label)-(columns(f.String())-width), minLabel)
	},
	func(f *Fields, _ int) { f.Total = "" },
	func(f *Fields, _ int) { f.ETA = "" },
	func(f *Fields, width int) {
		f.Label = shorten(f.Label, columns(f.Label)-(columns(f.String())-width), 1)
	},
}

// shorten cuts the middle of s to want columns (at least floor), keeping
// its start (the operation) and its end (the database name) around a "…";
// s itself when it is not longer.
func shorten(s string, want, floor int) string {
	r := []rune(s)
	want = max(want, floor)
	if len(r) <= want {
		return s
	}
	if want <= 1 {
		return "…"
	}
	head := (want - 1) / 2
	tail := want - 1 - head
	return string(r[:head]) + "…" + string(r[len(r)-tail:])
}

func (f Fields) String() string {
	s := f.Label + ": " + f.Done
	if f.Total != "" {
		s += " of " + f.Total
	}
	for _, part := range []string{f.Rows, f.Tables, f.Rate, f.ETA} {
		if part != "" {
			s += ", " + part
		}
	}
	return s
}

// Fit renders f in at most width columns (any width when width <= 0),
// shortening it in dropOrder until it fits; as a last resort it cuts the
// line.
func Fit(f Fields, width int) string {
	if width <= 0 {
		return f.String()
	}
	s := f.String()
	for _, drop := range dropOrder {
		if columns(s) <= width {
			return s
		}
		drop(&f, width)
		s = f.String()
	}
	if r := []rune(s); len(r) > width {
		s = string(r[:width])
	}
	return s
}

// columns counts the columns a line takes: one per rune (the labels and
// units drawn here hold no wide characters but user-given names).
func columns(s string) int { return utf8.RuneCountInString(s) }

// fields renders the current status in parts.
func (p *Progress) fields() Fields {
	p.mu.Lock()
	label, unit, start := p.label, p.unit, p.start
	p.mu.Unlock()
	if unit == "" {
		unit = "tables"
	}
	el := time.Since(start).Seconds()
	b := p.bytes.Load()
	rate := 0.0
	if el > 0 {
		rate = float64(b) / el
	}
	f := Fields{Label: label, Done: Bytes(b)}
	tot := p.totalBytes.Load()
	if tot > 0 {
		f.Total = "~" + Bytes(tot)
	}
	// Rows and tables only where the work counts them (a restore does;
	// an export counts bytes only).
	if r := p.rows.Load(); r > 0 {
		f.Rows = fmt.Sprintf("%d rows", r)
	}
	if n := p.tables.Load(); n > 0 {
		f.Tables = fmt.Sprintf("%d/%d %s", p.tablesDone.Load(), n, unit)
	}
	f.Rate = Bytes(int64(rate)) + "/s"
	if tot > 0 && rate > 0 && b < tot {
		eta := time.Duration(float64(tot-b)/rate) * time.Second
		f.ETA = fmt.Sprintf("ETA %s", eta.Round(time.Second))
	}
	return f
}

// Bytes formats a byte count for people.
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
