package keeprows

import (
	"fmt"
	"testing"
)

func TestOrderParentsFirst(t *testing.T) {
	fk := func(parent string) FK { return FK{Cols: []string{"x"}, Parent: parent, ParentCols: []string{"id"}} }
	tables := []*Table{
		{Name: "lines", FKs: []FK{fk("orders")}},
		{Name: "orders", FKs: []FK{fk("customers")}},
		{Name: "employees", FKs: []FK{fk("employees")}},
		{Name: "cb", FKs: []FK{fk("ca")}},
		{Name: "customers"},
		{Name: "ca", FKs: []FK{fk("cb"), fk("customers")}},
	}
	sccs, cyclic := order(tables)
	pos := map[string]int{}
	var got []string
	for i, scc := range sccs {
		names := ""
		for _, t := range scc {
			pos[t.Name] = i
			names += t.Name + " "
		}
		got = append(got, fmt.Sprintf("%s%v", names, cyclic[i]))
	}
	if len(sccs) != 5 {
		t.Fatalf("components %v, want 5", got)
	}
	for _, e := range [][2]string{{"customers", "orders"}, {"orders", "lines"}, {"customers", "ca"}} {
		if pos[e[0]] >= pos[e[1]] {
			t.Errorf("%s after %s: %v", e[0], e[1], got)
		}
	}
	if pos["ca"] != pos["cb"] || !cyclic[pos["ca"]] || !cyclic[pos["employees"]] || cyclic[pos["orders"]] {
		t.Errorf("cycles: %v", got)
	}
}

func TestCatalogMatch(t *testing.T) {
	cat := &Catalog{Tables: []*Table{{Name: "public.orders"}, {Name: "public.order_lines"}, {Name: "app.users"}},
		Aliases: map[string]string{"orders": "public.orders", "order_lines": "public.order_lines", "users": "app.users"}}
	for glob, want := range map[string]int{"*": 3, "order*": 2, "public.*": 2, "app.users": 1, "nope": 0} {
		if got := len(cat.Match(glob)); got != want {
			t.Errorf("Match(%q) = %d tables, want %d", glob, got, want)
		}
	}
	if cat.Lookup("orders") == nil || cat.Lookup("app.users") == nil || cat.Lookup("x") != nil {
		t.Error("Lookup")
	}
}
