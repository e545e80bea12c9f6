package engine

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/snapdata/snapdata/internal/dsn"
)

// The capabilities clone composes: each engine implements what it can, and
// clone refuses (exit 2) a config that asks for a capability the target's
// engine lacks.

// KeepRule selects rows of the current target that a refresh carries into
// the new copy (clone's keep_rows). Exactly one of Table and Tables is set.
type KeepRule struct {
	Table  string // one table (as the engine names it: "orders", "public.orders")
	Tables string // a glob over table names ("*" for all)
	// Where is an SQL condition evaluated on the current target.
	Where string
	// KeyAtLeast selects rows whose single-column integer primary key is
	// at least this (the old tool's 1,000,000,000 convention); 0: unused.
	KeyAtLeast int64
}

// KeepOptions say what to do with kept rows that do not fit the new copy.
type KeepOptions struct {
	OnConflict string // "fail" (default), "skip" or "overwrite": a kept row whose primary or unique key a refreshed row holds
	Orphans    string // "drop" (default), "null" or "fail": a kept row whose parent row is gone
	Logger     *slog.Logger
}

// KeptTable is what keeping rows did to one table.
type KeptTable struct {
	Table          string `json:"table"`
	Matched        int64  `json:"matched"`    // rows a rule selected
	Dependents     int64  `json:"dependents"` // rows carried because they reference a kept row
	Inserted       int64  `json:"inserted"`
	Skipped        int64  `json:"skipped,omitempty"`
	Overwritten    int64  `json:"overwritten,omitempty"`
	OrphansDropped int64  `json:"orphans_dropped,omitempty"`
	OrphansNulled  int64  `json:"orphans_nulled,omitempty"`
}

// KeepReport is what keeping rows did, per table, in the order the rows
// were inserted (foreign-key order).
type KeepReport struct {
	Tables []KeptTable `json:"tables"`
	// Unkeyed are tables a key_at_least rule matched but skipped because
	// they have no single-column integer primary key.
	Unkeyed []string `json:"unkeyed,omitempty"`
}

// RowKeeper carries rows from the current target into the new copy built
// beside it on the same server (or, for SQLite, the same directory).
type RowKeeper interface {
	// CountKept reports, without writing, the rows rules select in db
	// and the rows that depend on them (for --dry-run).
	CountKept(ctx context.Context, db *dsn.DSN, rules []KeepRule) (KeepReport, error)
	// KeepRows copies the rows rules select in from, with the rows that
	// reference them through foreign keys (transitively), into to, in
	// foreign-key order, following opts for conflicts and orphans.
	KeepRows(ctx context.Context, from, to *dsn.DSN, rules []KeepRule, opts KeepOptions) (KeepReport, error)
	// RestartKeys makes every sequence, identity and auto-increment of db
	// restart at or above atLeast and above the largest value in use.
	RestartKeys(ctx context.Context, db *dsn.DSN, atLeast int64) error
}

// Errors of keeping rows, wrapped with the table and key at fault.
var (
	ErrKeepConflict = errors.New("a kept row collides with a refreshed row")
	ErrKeepOrphan   = errors.New("a kept row's parent row is gone")
	ErrKeepRule     = errors.New("a keep_rows rule does not work on the target")
)

// Access is what a user clone creates may do on the copy.
type Access string

// The accesses a clone user can get.
const (
	AccessReadOnly  Access = "readonly"  // read every table
	AccessReadWrite Access = "readwrite" // read and write rows of every table, use sequences
	AccessOwner     Access = "owner"     // own the objects: also change the schema
)

// User is a login clone creates on the copy. Password is a secret: never
// log or print it.
type User struct {
	Name     string
	Password string
	Access   Access
}

// CredentialManager creates the copy's users and takes logins away from
// everyone else.
type CredentialManager interface {
	// CreateUsers creates each user (or, when it exists, sets its
	// password) with exactly the access asked for on database db. For
	// MySQL/MariaDB, where grants name the database, grants are made on
	// db's final name, which may differ from the database being built.
	CreateUsers(ctx context.Context, db *dsn.DSN, users []User) error
	// ResetOtherPasswords gives every login of db's server except those
	// named in keep (and the one db connects as) a random password that
	// is never returned, and returns the names of the logins it changed.
	ResetOtherPasswords(ctx context.Context, db *dsn.DSN, keep []string) ([]string, error)
	// Logins lists the logins of db's server (for plans).
	Logins(ctx context.Context, db *dsn.DSN) ([]string, error)
}

// SQLRunner runs an SQL script (a hook) on a database. name is the file
// name (or "sql" for inline statements) used in errors, which name the
// line of the statement that failed.
type SQLRunner interface {
	RunSQL(ctx context.Context, db *dsn.DSN, name string, script io.Reader) error
}

// Swapper replaces a database by a copy built beside it on the same server
// (clone's swap: true). SQLite targets are files and are swapped by a file
// rename instead.
type Swapper interface {
	// DatabaseExists reports whether db's database exists.
	DatabaseExists(ctx context.Context, db *dsn.DSN) (bool, error)
	// Swap makes target's name hold what built holds, with built's
	// label (its comment: clone's record of what the copy is), as one
	// atomic step where the engine allows. When target exists, its
	// old content moves to a new database named previous, labeled
	// previousLabel; built's name is gone afterwards. Sessions
	// connected to target are waited for (opts.Wait) or, with
	// opts.Terminate, ended. A target that does not exist is created.
	Swap(ctx context.Context, built, target *dsn.DSN, previous, previousLabel string, opts SwapOptions) error
	// Label returns db's label ("" when none).
	Label(ctx context.Context, db *dsn.DSN) (string, error)
}

// SwapOptions tune Swap.
type SwapOptions struct {
	Wait      time.Duration // how long to wait for sessions on the target to end
	Terminate bool          // end them instead of waiting
	Logger    *slog.Logger
}

// ErrSessionsRemain: sessions stayed connected to a swap's target past
// SwapOptions.Wait.
var ErrSessionsRemain = errors.New("sessions are still connected to the target (set terminate_sessions: true to end them)")
