package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/engine/enginetest"
	"github.com/snapdata/snapdata/internal/testsrv"
)

// TestOtherServerVersions runs the engine against every PostgreSQL major
// from 12 to 17 besides Debian's 15 (server programs that scripts/install-deps
// fetches; the client programs, pg_dump and psql, stay Debian's 15):
//
//   - 12, 13 and 14, which pg_dump 15 can dump: the Chinook and rich
//     databases back up (in key order, and in physical order, which 12 and 13
//     cannot do and fall back from), restore into the same server with the
//     same checksums and schema, and restore into the 15 server (an upgrade
//     by backup and restore) with the same checksums; a 15 snapshot restores
//     into them with a warning, and one that uses what they lack (a view
//     option, a key option) fails naming both versions;
//   - 16 and 17: a backup is refused with the client package to install; with
//     a stand-in for the newer pg_dump, the rest of a backup (catalog, snapshot,
//     COPY in key order and in TID ranges) works and restores; and
//     snapshots taken on 15 restore into them (in COPY binary where they did
//     on 15) with the same checksums, sequences that continue where they
//     were, and an `export --format sql` of them loads with psql.
//
// Every step also reads the server's catalog, settings and change marker on
// that version (fingerprint, the list of databases, the restore's session
// settings and column types, the checksums).
func TestOtherServerVersions(t *testing.T) {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skipf("the other PostgreSQL majors are fetched for linux/amd64 only (this is %s/%s)", runtime.GOOS, runtime.GOARCH)
	}
	base := testsrv.Postgres(t)
	e := New()
	ctx := context.Background()
	dumpMajor := base.Major() // Debian's pg_dump: the newest installed

	// Snapshots taken on Debian's server, for the newer ones.
	e.SplitThreshold = 1
	richMem, richRes := backupMem(t, e, loadRich(t, base), 2)
	e.SplitThreshold = 0
	chinookMem, chinookRes := backupMem(t, e, loadChinook(t, base), 2)

	for _, major := range testsrv.OtherPostgresMajors {
		t.Run(fmt.Sprint(major), func(t *testing.T) {
			pg := testsrv.NewPostgres(t, testsrv.PGOptions{Major: major})
			if got := query[string](t, mustDSN(t, pg.DSN("postgres")), "SHOW server_version_num"); !strings.HasPrefix(got, fmt.Sprint(major)) {
				t.Fatalf("server_version_num %s, want PostgreSQL %d", got, major)
			}
			if fp, err := e.Fingerprint(ctx, mustDSN(t, pg.DSN("postgres"))); err != nil || fp == "" {
				t.Errorf("fingerprint on PostgreSQL %d: %q, %v", major, fp, err)
			}

			// verify's scratch database: created, listed, and dropped while a
			// session is still connected to it (WITH (FORCE) from 13 on; on
			// 12 the sessions are ended first).
			scratch, err := e.CreateScratch(ctx, mustDSN(t, pg.DSN("postgres")), "scratch_check")
			if err != nil {
				t.Fatalf("create scratch on PostgreSQL %d: %v", major, err)
			}
			dbs, err := e.Databases(ctx, mustDSN(t, pg.DSN("postgres")))
			if err != nil || !contains(dbs, "scratch_check") {
				t.Errorf("databases on PostgreSQL %d: %v, %v (want scratch_check)", major, dbs, err)
			}
			held, err := pgx.Connect(ctx, scratch.Raw)
			if err != nil {
				t.Fatal(err)
			}
			defer held.Close(ctx)
			if err := e.DropScratch(ctx, scratch); err != nil {
				t.Errorf("drop scratch with a session connected on PostgreSQL %d: %v", major, err)
			}
			if n := query[int64](t, mustDSN(t, pg.DSN("postgres")), "SELECT count(*) FROM pg_database WHERE datname = 'scratch_check'"); n != 0 {
				t.Errorf("PostgreSQL %d: scratch database still there", major)
			}

			if major <= dumpMajor {
				chinook := loadChinook(t, pg)
				rich := loadRich(t, pg)
				e.SplitThreshold = 0
				mem, res := backupMem(t, e, chinook, 2)
				sameAsTextCopy(t, e, chinook, mem, res)
				dst := mustDSN(t, pg.DSN("chinook_restored"))
				restoreTo(t, e, mem, dst, engine.RestoreOptions{Jobs: 2})
				compareChecksums(t, e, res.Tables, dst)
				sameSchema(t, pg, chinook, dst)
				up := mustDSN(t, base.DSN(fmt.Sprintf("chinook_from_%d", major)))
				restoreTo(t, e, mem, up, engine.RestoreOptions{Jobs: 2})
				compareChecksums(t, e, res.Tables, up)

				e.SplitThreshold = 1
				mem, res = backupMem(t, e, rich, 3)
				dst = mustDSN(t, pg.DSN("rich_restored"))
				restoreTo(t, e, mem, dst, engine.RestoreOptions{Jobs: 2})
				compareChecksums(t, e, res.Tables, dst)
				sameSchema(t, pg, rich, dst)
				up = mustDSN(t, base.DSN(fmt.Sprintf("rich_from_%d", major)))
				restoreTo(t, e, mem, up, engine.RestoreOptions{Jobs: 2})
				compareChecksums(t, e, res.Tables, up)

				// A snapshot of the newer server restores into this older one
				// with a warning; where its schema uses what this server
				// lacks, the error says why.
				logs := &logLines{}
				dst = mustDSN(t, pg.DSN("rich_from_newer"))
				if err := e.Restore(ctx, richMem, dst, engine.RestoreOptions{Jobs: 2, Logger: slog.New(logs)}); err != nil {
					t.Fatalf("restore of a PostgreSQL %d snapshot into %d: %v", dumpMajor, major, err)
				}
				compareChecksums(t, e, richRes.Tables, dst)
				older := fmt.Sprintf("the snapshot comes from PostgreSQL %d and this server is PostgreSQL %d", dumpMajor, major)
				if len(logs.grep(older)) == 0 {
					t.Errorf("no warning of the older target: %q", logs.lines)
				}
				for _, c := range []struct{ name, sql, want string }{
					{"pre-data", "CREATE TABLE t (a int); CREATE VIEW v WITH (security_invoker = true) AS SELECT a FROM t", "security_invoker"},
					{"post-data", "CREATE TABLE t (a int, CONSTRAINT t_a_key UNIQUE NULLS NOT DISTINCT (a))", "NULLS"},
				} {
					src := newDB(t, base, "newer_"+c.name)
					exec1(t, src, c.sql)
					mem, _ := backupMem(t, e, src, 1)
					err := e.Restore(ctx, mem, mustDSN(t, pg.DSN("newer_"+c.name)), engine.RestoreOptions{Jobs: 2, Logger: testLogger(t)})
					if err == nil || !strings.Contains(err.Error(), older) || !strings.Contains(err.Error(), c.want) {
						t.Errorf("restore of a %s feature of PostgreSQL %d into %d: %v, want an error naming %q and the versions", c.name, dumpMajor, major, err, c.want)
					}
				}

				// Physical order: TID ranges from 14 on, key order before.
				logs = &logLines{}
				pmem := enginetest.NewMemory()
				pres, err := e.Backup(ctx, rich, engine.BackupOptions{Jobs: 2, RowOrder: engine.RowOrderPhysical, Logger: slog.New(logs)}, pmem)
				if err != nil {
					t.Fatalf("backup in physical order on PostgreSQL %d: %v", major, err)
				}
				pmem.Finish(pres, "postgres")
				warned := len(logs.grep("row order physical needs PostgreSQL 14")) > 0
				if warned != (major < 14) {
					t.Errorf("PostgreSQL %d: warned of key order: %v, want %v", major, warned, major < 14)
				}
				dst = mustDSN(t, pg.DSN("rich_physical"))
				restoreTo(t, e, pmem, dst, engine.RestoreOptions{Jobs: 2})
				compareChecksums(t, e, res.Tables, dst)
				e.SplitThreshold = 0
				return
			}

			// pg_dump 15 cannot dump a newer server.
			src := newDB(t, pg, "newer")
			exec1(t, src, "CREATE TABLE t (x int PRIMARY KEY)")
			_, err = e.Backup(ctx, src, engine.BackupOptions{Logger: testLogger(t)}, enginetest.NewMemory())
			want := fmt.Sprintf("pg_dump %d is older than the server (%d): install postgresql-client-%d", dumpMajor, major, major)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("backup of PostgreSQL %d with pg_dump %d: %v, want %q", major, dumpMajor, err, want)
			}

			// The rest of a backup on this server, with a stand-in for the
			// pg_dump this machine lacks: it says it is pg_dump <major> and
			// dumps the same schema from Debian's server (the rich database
			// loaded there from the same script). The data, sequences,
			// catalog and snapshot are this server's.
			rich := loadRich(t, pg)
			richBase := loadRich(t, base)
			baseURL, baseEnv, cleanup, err := pgDumpConn(richBase)
			if err != nil {
				t.Fatal(err)
			}
			defer cleanup()
			var basePW string
			for _, kv := range baseEnv {
				if v, ok := strings.CutPrefix(kv, "PGPASSWORD="); ok {
					basePW = v
				}
			}
			fake := filepath.Join(t.TempDir(), "pg_dump")
			script := fmt.Sprintf(`#!/bin/bash
if [ "$1" = --version ]; then echo 'pg_dump (PostgreSQL) %d.0'; exit 0; fi
args=()
for a in "$@"; do case "$a" in --snapshot=*|--dbname=*) ;; *) args+=("$a") ;; esac; done
PGPASSWORD='%s' exec '%s' "${args[@]}" '--dbname=%s'
`, major, basePW, filepath.Join(base.BinDir(), "pg_dump"), baseURL)
			if err := os.WriteFile(fake, []byte(script), 0o700); err != nil {
				t.Fatal(err)
			}
			ef := New()
			ef.PgDump = fake
			for _, order := range []string{engine.RowOrderKey, engine.RowOrderPhysical} {
				ef.SplitThreshold = 1
				mem := enginetest.NewMemory()
				res, err := ef.Backup(ctx, rich, engine.BackupOptions{Jobs: 3, RowOrder: order, Logger: testLogger(t)}, mem)
				if err != nil {
					t.Fatalf("backup of PostgreSQL %d in %s order: %v", major, order, err)
				}
				mem.Finish(res, "postgres")
				sameAsTextCopy(t, ef, rich, mem, res)
				if len(mem.Manifest().TableStreams("app.events_2023")) < 2 {
					t.Errorf("PostgreSQL %d, %s order: app.events_2023 was not split", major, order)
				}
				dst := mustDSN(t, pg.DSN("rich_"+order))
				restoreTo(t, e, mem, dst, engine.RestoreOptions{Jobs: 2})
				compareChecksums(t, e, res.Tables, dst)
			}

			dst := mustDSN(t, pg.DSN("chinook_restored"))
			restoreTo(t, e, chinookMem, dst, engine.RestoreOptions{Jobs: 2})
			compareChecksums(t, e, chinookRes.Tables, dst)

			logs := &logLines{}
			dst = mustDSN(t, pg.DSN("rich_restored"))
			if err := e.Restore(ctx, richMem, dst, engine.RestoreOptions{Jobs: 2, Logger: slog.New(logs)}); err != nil {
				t.Fatalf("restore into PostgreSQL %d: %v", major, err)
			}
			compareChecksums(t, e, richRes.Tables, dst)
			for _, table := range []string{"app.users", "app.events_2023", "app.events_2024"} {
				if len(logs.grep("table="+table+" format=binary")) == 0 {
					t.Errorf("PostgreSQL %d: %s not loaded in COPY binary: %q", major, table, logs.grep("table="+table+" "))
				}
			}
			if got := logs.grep("did not convert"); len(got) > 0 {
				t.Errorf("PostgreSQL %d: fell back to text: %q", major, got)
			}
			if got := query[int64](t, dst, "SELECT nextval('app.ticket_seq')"); got != 4270 {
				t.Errorf("PostgreSQL %d: ticket_seq continues at %d, want 4270", major, got)
			}
			if got := query[int64](t, dst, "INSERT INTO app.users (name) VALUES ('new') RETURNING id"); got != 5 {
				t.Errorf("PostgreSQL %d: identity continues at %d, want 5", major, got)
			}

			// export --format sql of the 15 snapshot loads into this server.
			f, err := os.Create(filepath.Join(t.TempDir(), "rich.sql"))
			if err != nil {
				t.Fatal(err)
			}
			if err := e.ExportSQL(ctx, richMem, f); err != nil {
				t.Fatalf("export sql: %v", err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			exported := newDB(t, pg, "rich_exported")
			psql(t, pg, exported, f.Name())
			compareChecksums(t, e, richRes.Tables, exported)
		})
	}
}

// sameAsTextCopy checks that a backup that read tables in COPY binary
// stored the same bytes as one that reads every table as text.
func sameAsTextCopy(t *testing.T, e *Engine, src *dsn.DSN, mem *enginetest.Memory, res *engine.BackupResult) {
	t.Helper()
	if res.Meta["copy_binary_tables"] == "0" {
		t.Errorf("%s: no table read in COPY binary", src.Database())
	}
	tmem, tres := backupMemWith(t, e, src, engine.BackupOptions{Jobs: 2, RowOrder: res.Meta["row_order"], TextCopy: true})
	if tres.Meta["copy_binary_tables"] != "0" {
		t.Errorf("%s: text copy read %s tables in binary", src.Database(), tres.Meta["copy_binary_tables"])
	}
	sameStreams(t, mem, tmem)
}
