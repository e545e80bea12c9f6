// Package dataset generates the benchmark's realistic data: an online shop
// with customers, products, orders, order items and JSON events. Values come
// from vocabularies with skewed (Zipf) distributions, so the data compresses
// like real application data does: far better than random bytes, far worse
// than pgbench's blank filler.
//
// Generation is deterministic: the same seed and size give the same rows, so
// PostgreSQL, MariaDB and SQLite get identical data.
package dataset

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Value kinds of a column.
const (
	KInt   = iota // int64
	KText         // string (may be nil for NULL)
	KMoney        // int64 cents, a DECIMAL(12,2)
	KTime         // time.Time, UTC
	KJSON         // string holding a JSON document
)

// Column is one column of a table.
type Column struct {
	Name string
	Kind int
}

// Table describes one table and how many rows it gets.
type Table struct {
	Name    string
	Columns []Column
	Rows    int64
	rowSize int // approximate bytes per row as text, for sizing
	share   float64
}

// Dataset is the set of tables for one size.
type Dataset struct {
	Seed   uint64
	Tables []*Table
}

// Table names in load order (parents first).
const (
	Customers  = "customers"
	Products   = "products"
	Orders     = "orders"
	OrderItems = "order_items"
	Events     = "events"
)

// ParseSize reads sizes like 100MB, 1GB, 512MiB, 2G.
func ParseSize(s string) (int64, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	mult := int64(1)
	for _, suf := range []struct {
		s string
		m int64
	}{{"GIB", 1 << 30}, {"MIB", 1 << 20}, {"KIB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"G", 1e9}, {"M", 1e6}, {"K", 1e3}, {"B", 1}} {
		if strings.HasSuffix(u, suf.s) {
			mult = suf.m
			u = strings.TrimSuffix(u, suf.s)
			break
		}
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(u), 64)
	if err != nil || f <= 0 {
		return 0, fmt.Errorf("size %q: expected a number with a unit such as 100MB or 1GB", s)
	}
	return int64(f * float64(mult)), nil
}

// New returns the dataset whose text form is about size bytes.
func New(size int64, seed uint64) *Dataset {
	d := &Dataset{Seed: seed, Tables: []*Table{
		{Name: Customers, rowSize: 132, share: 0.10, Columns: []Column{
			{"id", KInt}, {"name", KText}, {"email", KText}, {"phone", KText}, {"street", KText},
			{"city", KText}, {"country", KText}, {"created_at", KTime}, {"notes", KText}}},
		{Name: Products, rowSize: 351, share: 0.05, Columns: []Column{
			{"id", KInt}, {"sku", KText}, {"name", KText}, {"category", KText}, {"description", KText},
			{"price", KMoney}, {"stock", KInt}, {"created_at", KTime}}},
		{Name: Orders, rowSize: 112, share: 0.20, Columns: []Column{
			{"id", KInt}, {"customer_id", KInt}, {"status", KText}, {"currency", KText}, {"total", KMoney},
			{"shipping_address", KText}, {"created_at", KTime}, {"updated_at", KTime}}},
		{Name: OrderItems, rowSize: 29, share: 0.17, Columns: []Column{
			{"id", KInt}, {"order_id", KInt}, {"product_id", KInt}, {"quantity", KInt},
			{"unit_price", KMoney}, {"discount", KMoney}}},
		{Name: Events, rowSize: 376, share: 0.48, Columns: []Column{
			{"id", KInt}, {"customer_id", KInt}, {"type", KText}, {"occurred_at", KTime}, {"payload", KJSON}}},
	}}
	for _, t := range d.Tables {
		t.Rows = int64(float64(size) * t.share / float64(t.rowSize))
		if t.Rows < 10 {
			t.Rows = 10
		}
	}
	return d
}

// Table returns the named table.
func (d *Dataset) Table(name string) *Table {
	for _, t := range d.Tables {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// epoch is the first created_at; rows spread over three years after it.
var epoch = time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC)

const span = 3 * 365 * 24 * time.Hour

// Gen generates rows of one table. Row ids are 1-based; row i of a table is
// the same whatever else is generated (each table has its own random stream).
type Gen struct {
	d    *Dataset
	t    *Table
	rng  *rand.Rand
	zipf *rand.Zipf
	// ids of the parents at generation time, for foreign keys
	nCustomers, nProducts, nOrders int64
	// order_items: the current order and how many items it still gets
	curOrder int64
	left     int
	sb       strings.Builder
}

// NewGen returns a generator for table t whose random stream is salted with
// stream (0 for the initial load, other values for churn batches).
func (d *Dataset) NewGen(t *Table, stream uint64) *Gen {
	h := uint64(0)
	for _, c := range t.Name {
		h = h*31 + uint64(c)
	}
	rng := rand.New(rand.NewPCG(d.Seed^h, stream))
	g := &Gen{d: d, t: t, rng: rng, zipf: rand.NewZipf(rng, 1.07, 2, uint64(len(words)-1))}
	g.nCustomers = d.Table(Customers).Rows
	g.nProducts = d.Table(Products).Rows
	g.nOrders = d.Table(Orders).Rows
	return g
}

// SetParents changes the id ranges foreign keys point into (used by churn).
func (g *Gen) SetParents(customers, products, orders int64) {
	g.nCustomers, g.nProducts, g.nOrders = customers, products, orders
}

// StartOrderItems makes order_items rows point at orders from first on.
func (g *Gen) StartOrderItems(firstOrder int64) { g.curOrder = firstOrder - 1; g.left = 0 }

func (g *Gen) word() string { return words[g.zipf.Uint64()] }

func (g *Gen) sentence(min, max int) string {
	g.sb.Reset()
	n := min + g.rng.IntN(max-min+1)
	for i := 0; i < n; i++ {
		w := g.word()
		if i == 0 {
			g.sb.WriteString(strings.ToUpper(w[:1]))
			g.sb.WriteString(w[1:])
		} else {
			g.sb.WriteByte(' ')
			g.sb.WriteString(w)
		}
		if i > 0 && i < n-1 && g.rng.IntN(12) == 0 {
			g.sb.WriteByte(',')
		}
	}
	g.sb.WriteByte('.')
	return g.sb.String()
}

func (g *Gen) paragraph(sentences int) string {
	parts := make([]string, sentences)
	for i := range parts {
		parts[i] = g.sentence(5, 16)
	}
	return strings.Join(parts, " ")
}

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

// timeAt returns a timestamp that grows with id (rows are created in order)
// with some jitter, with microsecond precision.
func (g *Gen) timeAt(id, n int64) time.Time {
	frac := float64(id) / float64(n+1)
	t := epoch.Add(time.Duration(frac * float64(span)))
	t = t.Add(time.Duration(g.rng.Int64N(int64(time.Hour))))
	return t.Truncate(time.Microsecond)
}

func (g *Gen) address() string {
	return fmt.Sprintf("%d %s %s", 1+g.rng.IntN(9999), pick(g.rng, streets), pick(g.rng, streetKinds))
}

// skewed returns an id in [1,n] where low ids (old, loyal customers) are
// picked more often.
func (g *Gen) skewed(n int64) int64 {
	f := g.rng.Float64()
	return 1 + int64(f*f*float64(n-1))
}

// Row returns the values of row id. The slice is reused by the next call.
func (g *Gen) Row(id int64, out []any) []any {
	out = out[:0]
	r := g.rng
	switch g.t.Name {
	case Customers:
		first, last := pick(r, firstNames), pick(r, lastNames)
		city := pick(r, cities)
		email := strings.ToLower(fmt.Sprintf("%s.%s%d@%s", asciiFold(first), asciiFold(last), id, pick(r, emailDomains)))
		phone := fmt.Sprintf("+%d %03d %03d %04d", 1+r.IntN(60), r.IntN(1000), r.IntN(1000), r.IntN(10000))
		var notes any
		if r.IntN(4) == 0 {
			notes = g.sentence(4, 14)
		}
		out = append(out, id, first+" "+last, email, phone, g.address(), city[0], city[1], g.timeAt(id, g.t.Rows), notes)
	case Products:
		cat := pick(r, categories)
		name := strings.ToUpper(g.word()[:1]) + g.word()[1:] + " " + g.word() + " " + g.word()
		sku := fmt.Sprintf("%s-%06d-%c%c", strings.ToUpper(cat[:3]), id, 'A'+rune(r.IntN(26)), 'A'+rune(r.IntN(26)))
		price := int64(99 + r.ExpFloat64()*4000)
		out = append(out, id, sku, name, cat, g.paragraph(2+r.IntN(7)), price, int64(r.IntN(500)), g.timeAt(id, g.t.Rows))
	case Orders:
		created := g.timeAt(id, g.t.Rows)
		updated := created.Add(time.Duration(r.Int64N(int64(72 * time.Hour)))).Truncate(time.Microsecond)
		total := int64(500 + r.ExpFloat64()*9000)
		city := pick(r, cities)
		ship := fmt.Sprintf("%s, %s, %s", g.address(), city[0], city[1])
		out = append(out, id, g.skewed(g.nCustomers), pick(r, orderStatuses), pick(r, currencies), total, ship, created, updated)
	case OrderItems:
		if g.left == 0 {
			g.curOrder++
			if g.curOrder > g.nOrders {
				g.curOrder = g.nOrders
			}
			g.left = 1 + r.IntN(4)
		}
		g.left--
		qty := int64(1)
		if r.IntN(4) == 0 {
			qty = 1 + int64(r.IntN(5))
		}
		disc := int64(0)
		if r.IntN(5) == 0 {
			disc = int64(r.IntN(30)) * 100
		}
		out = append(out, id, g.curOrder, g.skewed(g.nProducts), qty, int64(99+r.ExpFloat64()*3000), disc)
	case Events:
		typ := pick(r, eventTypes)
		out = append(out, id, g.skewed(g.nCustomers), typ, g.timeAt(id, g.t.Rows), g.payload(typ))
	}
	return out
}

func (g *Gen) payload(typ string) string {
	r := g.rng
	var b strings.Builder
	b.WriteString(`{"session": "`)
	b.WriteString(strconv.FormatUint(r.Uint64(), 16))
	b.WriteString(`", "ip": "`)
	fmt.Fprintf(&b, "%d.%d.%d.%d", 10+r.IntN(200), r.IntN(256), r.IntN(256), 1+r.IntN(254))
	b.WriteString(`", "user_agent": "`)
	b.WriteString(pick(r, userAgents))
	b.WriteString(`", "referrer": "`)
	b.WriteString(pick(r, referrers))
	b.WriteString(`", "page": "/`)
	b.WriteString(pick(r, categories))
	b.WriteString("/")
	b.WriteString(g.word())
	b.WriteString("-")
	b.WriteString(g.word())
	b.WriteString(`"`)
	switch typ {
	case "search":
		b.WriteString(`, "query": "`)
		b.WriteString(g.word() + " " + g.word())
		fmt.Fprintf(&b, `", "results": %d`, r.IntN(200))
	case "add_to_cart", "remove_from_cart", "wishlist_add":
		fmt.Fprintf(&b, `, "product_id": %d, "quantity": %d`, g.skewed(g.nProducts), 1+r.IntN(3))
	case "purchase", "checkout_started":
		fmt.Fprintf(&b, `, "order_id": %d, "amount": %d.%02d, "items": [`, 1+r.Int64N(g.nOrders), r.IntN(400), r.IntN(100))
		n := 1 + r.IntN(4)
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, `{"product_id": %d, "qty": %d}`, g.skewed(g.nProducts), 1+r.IntN(3))
		}
		b.WriteString("]")
	case "review_posted":
		fmt.Fprintf(&b, `, "product_id": %d, "stars": %d, "text": "%s"`, g.skewed(g.nProducts), 1+r.IntN(5), g.sentence(6, 30))
	}
	fmt.Fprintf(&b, `, "duration_ms": %d, "viewport": {"w": %d, "h": %d}}`, r.IntN(30000), pick(r, []int{375, 390, 414, 768, 1280, 1366, 1440, 1920}), pick(r, []int{667, 844, 896, 1024, 720, 768, 900, 1080}))
	return b.String()
}

// asciiFold maps the few accented letters in the name lists to ASCII, for
// e-mail addresses.
func asciiFold(s string) string {
	r := strings.NewReplacer("é", "e", "ë", "e", "ø", "o", "Ł", "L", "ł", "l", "ç", "c", "Å", "A", "ö", "o", "ü", "u",
		"ó", "o", "í", "i", "á", "a", "å", "a", "ã", "a", "É", "E", "Ø", "O", "Ö", "O", "Ü", "U", "ß", "ss", "ř", "r")
	return r.Replace(s)
}

// TimeLayout is how timestamps are written as text (UTC, microseconds).
const TimeLayout = "2006-01-02 15:04:05.000000"

// AppendTSV appends a row in PostgreSQL COPY text format, which MariaDB's
// LOAD DATA reads with its default field options too.
func AppendTSV(b []byte, t *Table, row []any) []byte {
	for i, v := range row {
		if i > 0 {
			b = append(b, '\t')
		}
		if v == nil {
			b = append(b, '\\', 'N')
			continue
		}
		switch t.Columns[i].Kind {
		case KInt:
			b = strconv.AppendInt(b, v.(int64), 10)
		case KMoney:
			c := v.(int64)
			b = strconv.AppendInt(b, c/100, 10)
			b = append(b, '.')
			if c%100 < 10 {
				b = append(b, '0')
			}
			b = strconv.AppendInt(b, c%100, 10)
		case KTime:
			b = v.(time.Time).AppendFormat(b, TimeLayout)
		default:
			s := v.(string)
			for j := 0; j < len(s); j++ {
				switch c := s[j]; c {
				case '\\':
					b = append(b, '\\', '\\')
				case '\t':
					b = append(b, '\\', 't')
				case '\n':
					b = append(b, '\\', 'n')
				default:
					b = append(b, c)
				}
			}
		}
	}
	return append(b, '\n')
}

// Money formats cents as a decimal string.
func Money(c int64) string { return fmt.Sprintf("%d.%02d", c/100, c%100) }
