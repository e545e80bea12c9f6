package app

import (
	"errors"
	"strings"
	"testing"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
)

// issue 18 (19): a restore that fails after changing its target says what
// the target may hold and how to retry, naming the table options.
func TestRestoreHint(t *testing.T) {
	target, err := dsn.Parse("postgres://u:secretpw@db:5432/orders")
	if err != nil {
		t.Fatal(err)
	}
	cause := engine.TargetChanged(errors.New("restore table app.users: connection reset"))
	whole := restoreHint(target, nil, cause)
	if !errors.Is(whole, engine.ErrTargetChanged) || !strings.Contains(whole.Error(), "database orders may hold part of the snapshot: run the same restore with --clean") {
		t.Errorf("whole restore: %v", whole)
	}
	some := restoreHint(target, []string{"app.users", `"Mixed Schema"."OrderItems"`}, cause)
	want := `run the same restore with --clean --table app.users --table '"Mixed Schema"."OrderItems"' to replace them`
	if !strings.Contains(some.Error(), want) || !strings.Contains(some.Error(), "the other tables were not touched") {
		t.Errorf("chosen tables: %v\nwant %s", some, want)
	}
	for _, e := range []error{whole, some} {
		if strings.Contains(e.Error(), "secretpw") {
			t.Errorf("password in %v", e)
		}
	}
}
