// Package engine defines the contract between snapdata's core and each
// database engine (internal/engine/sqlite, postgres, mysql).
//
// An engine turns a live database into named byte streams (schema parts and
// one stream per table or table range) and back. Capabilities beyond backup
// and restore are small optional interfaces, checked with a type assertion,
// in the style of DBLab: Fingerprinter, Checksummer, Scratcher, SQLExporter,
// RowReader, SchemaDescriber, Importer and DatabaseLister.
package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/manifest"
	"github.com/snapdata/snapdata/internal/progress"
)

// StreamWriter receives the bytes of one stream. Close commits the stream
// into the snapshot being built; a stream that is never closed is dropped.
type StreamWriter interface {
	io.Writer
	Close() error
}

// Sink collects the streams of one backup. It is safe for concurrent use,
// so an engine may write many tables at once.
type Sink interface {
	// Create starts a stream. Name, Kind, Format (and Table, Part for data)
	// must be set; Size and Chunks are filled in by the sink.
	Create(ctx context.Context, s manifest.Stream) (StreamWriter, error)
}

// SnapshotReader gives an engine the streams of a stored snapshot.
type SnapshotReader interface {
	Manifest() *manifest.Snapshot
	// Open returns the plaintext bytes of a stream.
	Open(ctx context.Context, s manifest.Stream) (io.ReadCloser, error)
}

// BackupOptions tune a backup.
type BackupOptions struct {
	Jobs     int                // parallel workers; 0 means the engine's default
	Progress *progress.Progress // may be nil
	Logger   *slog.Logger       // never nil
	// RowOrder is RowOrderKey (or "", the default) or RowOrderPhysical.
	// Only engines that implement PhysicalOrderer accept RowOrderPhysical.
	RowOrder string
	// TextCopy (PostgreSQL) reads every table in COPY's text format; by
	// default a table with a date or time column is read in COPY binary
	// and printed as the same text.
	TextCopy bool
}

// Row orders of BackupOptions.RowOrder.
const (
	// RowOrderKey reads tables in primary-key order: rows that an
	// append-heavy workload adds or updates land in the last chunks.
	RowOrderKey = "key"
	// RowOrderPhysical reads tables in storage order: less work for the
	// server, but rows written into free space of earlier pages change
	// chunks all over a table.
	RowOrderPhysical = "physical"
)

// PhysicalOrderer marks an engine whose Backup accepts RowOrderPhysical.
type PhysicalOrderer interface {
	SupportsPhysicalOrder()
}

// BackupResult is what the engine reports besides its streams.
type BackupResult struct {
	EngineVersion string
	Database      string
	Tables        []manifest.Table
	Fingerprint   string            // cheap change signal, "" if none
	Meta          map[string]string // notes for the manifest (consistency mode, …)
}

// RestoreOptions tune a restore.
type RestoreOptions struct {
	Jobs         int
	Tables       []string // restore only these tables, touching no other; empty means all
	Clean        bool     // replace an existing, non-empty target (with Tables: only the chosen tables)
	NoOwner      bool
	NoPrivileges bool
	// TextCopy (PostgreSQL) loads every table in COPY's text format; by
	// default a table with a date or time column is sent in COPY binary.
	TextCopy bool
	Progress *progress.Progress
	Logger   *slog.Logger
	// Import tunes a portable import (Importer); nil means the defaults.
	Import *ImportOptions
}

// Engine is what every database engine implements.
type Engine interface {
	// Name is the dsn engine name ("sqlite", "postgres", "mysql").
	Name() string
	// Backup reads a consistent view of src and writes its streams to sink.
	// On error, no snapshot is written by the caller.
	Backup(ctx context.Context, src *dsn.DSN, opts BackupOptions, sink Sink) (*BackupResult, error)
	// Restore writes a snapshot into target. It refuses a non-empty target
	// with an error wrapping ErrTargetNotEmpty unless opts.Clean is set.
	// With opts.Tables it creates and loads only those tables (refusing
	// ones that exist unless opts.Clean, which replaces just them) and
	// leaves every other table of the target as it is. An error after
	// the target was changed wraps ErrTargetChanged.
	Restore(ctx context.Context, snap SnapshotReader, target *dsn.DSN, opts RestoreOptions) error
}

// Fingerprinter returns a cheap server-side change signal (WAL position,
// file change counter, …). Equal fingerprints mean the data did not change.
// An empty string means "unknown": the caller reads the data.
type Fingerprinter interface {
	Fingerprint(ctx context.Context, src *dsn.DSN) (string, error)
}

// Checksummer recomputes per-table row counts and checksums of a live
// database, the same way Backup computes them, for verify.
type Checksummer interface {
	Checksums(ctx context.Context, target *dsn.DSN, tables []string, opts ChecksumOptions) ([]manifest.Table, error)
}

// ChecksumOptions tune a checksum run.
type ChecksumOptions struct {
	// Jobs is how many tables are read at once, where the engine can read
	// several in one consistent view; 0 means the engine's default.
	Jobs int
	// Progress, when not nil, counts the bytes and rows read and the
	// tables done.
	Progress *progress.Progress
	// Private says no one else writes to the database (verify's scratch
	// database): the sessions need not be aligned on one view, which on
	// MySQL/MariaDB would take a global read lock.
	Private bool
}

// ChecksumMatcher is implemented by a Checksummer whose checksum format
// changed over time: it recomputes the checksums of every table of a live
// database, each in the format of the same table's checksum in want (a
// snapshot's manifest tables), so older snapshots still verify. Verify uses
// it when available.
type ChecksumMatcher interface {
	ChecksumsLike(ctx context.Context, target *dsn.DSN, want []manifest.Table, opts ChecksumOptions) ([]manifest.Table, error)
}

// Scratcher creates and drops throw-away databases for verify.
type Scratcher interface {
	CreateScratch(ctx context.Context, server *dsn.DSN, name string) (*dsn.DSN, error)
	DropScratch(ctx context.Context, db *dsn.DSN) error
}

// ScratchLabeler is a Scratcher that labels its scratch databases with a
// marker (a database comment) and lists them with their markers, so that
// verify can drop the leftovers of a verify that was killed, and only
// those it can prove are its own.
type ScratchLabeler interface {
	// CreateLabeledScratch is CreateScratch that stores marker with the
	// database.
	CreateLabeledScratch(ctx context.Context, server *dsn.DSN, name, marker string) (*dsn.DSN, error)
	// ListScratch lists the databases of server whose names start with
	// prefix, with their markers ("" when none) and how many sessions
	// are connected to them.
	ListScratch(ctx context.Context, server *dsn.DSN, prefix string) ([]ScratchDB, error)
}

// ScratchDB is a database ListScratch found.
type ScratchDB struct {
	Name     string
	Marker   string
	Sessions int
}

// SQLExporter writes a snapshot as one plain SQL script that the engine's
// own client loads into an empty database.
type SQLExporter interface {
	ExportSQL(ctx context.Context, snap SnapshotReader, w io.Writer) error
}

// ExportOptions tune an SQL export; they mean what RestoreOptions'
// NoOwner and NoPrivileges mean for a restore.
type ExportOptions struct {
	NoOwner      bool // no ALTER … OWNER TO (PostgreSQL), no DEFINER= clauses (MySQL/MariaDB)
	NoPrivileges bool // no GRANT/REVOKE (PostgreSQL ACL entries)
}

// FilteredSQLExporter is an SQLExporter that can leave owners and
// privileges out of its script (export --no-owner, --no-privileges).
type FilteredSQLExporter interface {
	ExportSQLWith(ctx context.Context, snap SnapshotReader, w io.Writer, opts ExportOptions) error
}

// GlobalsStream is the name of the meta stream that holds a server's roles
// or accounts in the snapshots of an --all-databases backup.
const GlobalsStream = "globals/roles"

// GlobalsBackuper reads a server's roles (PostgreSQL) or accounts
// (MySQL/MariaDB) with their memberships, grants and password hashes, and
// writes them as the meta stream GlobalsStream. It returns notes for the
// manifest's Meta (what was stored, and what could not be).
type GlobalsBackuper interface {
	BackupGlobals(ctx context.Context, server *dsn.DSN, sink Sink, opts GlobalsBackupOptions) (map[string]string, error)
}

// GlobalsBackupOptions tune BackupGlobals.
type GlobalsBackupOptions struct {
	// NoSecrets: the repository is not encrypted, so no password hash
	// may be stored: PostgreSQL roles are stored without passwords,
	// MySQL/MariaDB accounts (whose definitions hold them) not at all.
	NoSecrets bool
	Logger    *slog.Logger // never nil
}

// GlobalsRestorer recreates the roles or accounts of a snapshot's
// GlobalsStream on the server of target: only those the server lacks. A
// role or account that exists (the one the restore connects as among them)
// is left exactly as it is, and none is ever dropped. It runs before the
// database is restored, so owners and grants find their roles.
type GlobalsRestorer interface {
	RestoreGlobals(ctx context.Context, snap SnapshotReader, target *dsn.DSN, opts GlobalsOptions) (*GlobalsReport, error)
}

// GlobalsOptions tune RestoreGlobals.
type GlobalsOptions struct {
	// DryRun plans without changing the server.
	DryRun bool
	// SourceDatabase is the snapshot's database and Database the target
	// database it is restored into: a role's settings for the first are
	// set for the second (when it exists when the roles are restored).
	SourceDatabase, Database string
	Logger                   *slog.Logger // never nil
}

// GlobalsReport says what RestoreGlobals did (or, with DryRun, would do),
// one line per role or account. It never holds a password or a hash.
type GlobalsReport struct {
	Actions []GlobalsAction
}

// GlobalsAction is what happened to one role or account.
type GlobalsAction struct {
	Name   string // role name, or 'user'@'host'
	Action string // one of the Globals* actions
	Detail string // memberships, grants, settings applied; why skipped
}

// Actions of a GlobalsAction.
const (
	GlobalsCreated = "created"
	GlobalsExists  = "exists"  // left as it is
	GlobalsSkipped = "skipped" // not restored, Detail says why
)

// ErrNoGlobals: restore --roles of a snapshot that holds no roles.
var ErrNoGlobals = errors.New("the snapshot holds no roles or accounts (only backups taken with --all-databases store them)")

// Column describes a column in the portable export.
type Column struct {
	Name       string `json:"name"`
	Type       string `json:"type"`        // portable type: integer, float, numeric, text, bytes, boolean, date, time, timestamp, timestamptz, json, uuid
	SourceType string `json:"source_type"` // the engine's own type name
	Nullable   bool   `json:"nullable"`
	PrimaryKey bool   `json:"primary_key,omitempty"`
	// Precision and Scale of a numeric column (0: unbounded), Length of a
	// text column with a declared maximum (varchar(n), char(n)).
	Precision int `json:"precision,omitempty"`
	Scale     int `json:"scale,omitempty"`
	Length    int `json:"length,omitempty"`
	// Default is a constant default; defaults that are not constants are
	// reported in the schema's NotCarried instead.
	Default *Default `json:"default,omitempty"`
	// Identity: the column takes the next value of a counter when a row
	// gives none (identity, serial, AUTO_INCREMENT, SQLite's INTEGER
	// PRIMARY KEY). TableSchema.NextIdentity is the counter's next value.
	Identity bool `json:"identity,omitempty"`
}

// Default kinds.
const (
	DefaultLiteral          = "literal"           // Value is the constant, as text
	DefaultCurrentTimestamp = "current_timestamp" // now(), CURRENT_TIMESTAMP, …
	DefaultCurrentDate      = "current_date"
	DefaultCurrentTime      = "current_time"
)

// Default is a column default that every engine can express.
type Default struct {
	Kind  string `json:"kind"`
	Value string `json:"value,omitempty"` // DefaultLiteral: the value's text (a number, a string, true or false)
}

// Index is a unique or secondary index on plain columns.
type Index struct {
	Name    string   `json:"name"`
	Columns []string `json:"columns"`
	Unique  bool     `json:"unique,omitempty"`
}

// ForeignKey is a foreign key between tables of the export.
type ForeignKey struct {
	Name       string   `json:"name"`
	Columns    []string `json:"columns"`
	RefTable   string   `json:"ref_table"` // a TableSchema.Name
	RefColumns []string `json:"ref_columns"`
	OnDelete   string   `json:"on_delete,omitempty"` // CASCADE, SET NULL, SET DEFAULT, RESTRICT; "" is NO ACTION
	OnUpdate   string   `json:"on_update,omitempty"`
}

// TableSchema is a table's portable description.
type TableSchema struct {
	Name    string   `json:"name"`
	Columns []Column `json:"columns"`
	// Schema and Table are the source's schema and bare table name where
	// the source has schemas (PostgreSQL): Name is then the qualified name
	// the snapshot knows the table by. After name mapping (the importer's
	// input) Table is empty, Name is the target's table name and Schema
	// the target schema ("" for the default one).
	Schema       string       `json:"schema,omitempty"`
	Table        string       `json:"table,omitempty"`
	Indexes      []Index      `json:"indexes,omitempty"`
	ForeignKeys  []ForeignKey `json:"foreign_keys,omitempty"`
	NextIdentity int64        `json:"next_identity,omitempty"` // 0: unknown (the importer uses max + 1)
	// Partitions are the source tables whose rows make up this one (a
	// PostgreSQL partitioned table); they are not tables of the export.
	Partitions []string `json:"partitions,omitempty"`
}

// NotCarried is a schema object (or part of one) that the portable export
// or an import could not carry over.
type NotCarried struct {
	Table  string `json:"table,omitempty"` // "" for objects outside tables (views, functions)
	Kind   string `json:"kind"`            // index, default, check, view, type, trigger, …
	Object string `json:"object"`          // its name or definition
	Reason string `json:"reason"`
}

// PortableSchema is a snapshot's portable description: its tables and what
// could not be put in the portable form.
type PortableSchema struct {
	Tables     []TableSchema `json:"tables"`
	NotCarried []NotCarried  `json:"not_carried,omitempty"`
}

// SchemaDescriber is a RowReader that also describes indexes, foreign
// keys, defaults, identity and what it could not carry.
type SchemaDescriber interface {
	PortableSchema(ctx context.Context, snap SnapshotReader) (*PortableSchema, error)
}

// ImportOptions are the options of a portable import, in
// RestoreOptions.Import.
type ImportOptions struct {
	// SQLiteDecimal is how SQLite stores exact numerics: "text" (the
	// default: exact) or "real" (floating point, sums drift).
	SQLiteDecimal string
	// Report receives what the import could not carry over.
	Report func(NotCarried)
}

// Reportf sends an item to o.Report, if any.
func (o *ImportOptions) Reportf(table, kind, object, format string, args ...any) {
	if o != nil && o.Report != nil {
		o.Report(NotCarried{Table: table, Kind: kind, Object: object, Reason: fmt.Sprintf(format, args...)})
	}
}

// RowReader decodes a snapshot's data streams into rows. Values are nil,
// int64, float64, bool, string or []byte (numeric, dates and times as
// strings in ISO/SQL form).
type RowReader interface {
	Schema(ctx context.Context, snap SnapshotReader) ([]TableSchema, error)
	ReadRows(ctx context.Context, snap SnapshotReader, table string, fn func(row []any) error) error
}

// Importer loads portable tables into a target database of this engine.
type Importer interface {
	Import(ctx context.Context, target *dsn.DSN, tables []TableSchema, rows func(table string, fn func(row []any) error) error, opts RestoreOptions) error
}

// DatabaseLister lists the user databases of a server, for --all-databases.
type DatabaseLister interface {
	Databases(ctx context.Context, server *dsn.DSN) ([]string, error)
}

// Errors engines wrap so the CLI can pick exit codes.
var (
	// ErrTargetNotEmpty: a restore target holds data and --clean was not given.
	ErrTargetNotEmpty = errors.New("restore target is not empty (use --clean to replace it)")
	// ErrRefused: a restore would destroy what the user did not name
	// (another table's partitions, views that depend on a replaced table).
	ErrRefused = errors.New("refused to protect objects that were not chosen")
	// ErrUnsupported: the engine lacks a capability.
	ErrUnsupported = errors.New("not supported by this engine")
	// ErrNoSuchTable: --table names a table the snapshot does not hold.
	ErrNoSuchTable = errors.New("no such table in the snapshot")
)

// ErrTargetChanged marks a restore error that happened after the restore
// changed its target: the target may hold part of the snapshot (or, with
// chosen tables, lack tables that --clean dropped).
var ErrTargetChanged = errors.New("the restore target was changed")

// TargetChanged wraps a restore error (nil stays nil) so that errors.Is
// finds both it and ErrTargetChanged; its message is err's.
func TargetChanged(err error) error {
	if err == nil || errors.Is(err, ErrTargetChanged) {
		return err
	}
	return &changedErr{err}
}

type changedErr struct{ err error }

func (c *changedErr) Error() string   { return c.err.Error() }
func (c *changedErr) Unwrap() []error { return []error{c.err, ErrTargetChanged} }

// NoSuchTable returns an error that says format and wraps ErrNoSuchTable
// without adding to the message.
func NoSuchTable(format string, args ...any) error {
	return noSuchTable{fmt.Errorf(format, args...)}
}

type noSuchTable struct{ error }

func (e noSuchTable) Unwrap() []error { return []error{e.error, ErrNoSuchTable} }

// Registry maps engine names to engines.
type Registry map[string]Engine

// Get returns the engine for a DSN.
func (r Registry) Get(name string) (Engine, error) {
	e, ok := r[name]
	if !ok {
		return nil, fmt.Errorf("engine %q: %w", name, ErrUnsupported)
	}
	return e, nil
}
