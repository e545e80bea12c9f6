package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
)

// Import creates the portable tables in target and loads their rows, then
// creates their unique and secondary indexes and foreign keys and moves
// each AUTO_INCREMENT past the rows loaded. Existing tables are refused
// (ErrTargetNotEmpty) unless opts.Clean, which drops them first.
// TIMESTAMPTZ values are stored in UTC in DATETIME(6); numeric as
// DECIMAL(p,s) (DECIMAL(65,30) without a precision); text as VARCHAR(n)
// with a length, LONGTEXT without (VARCHAR(255) when indexed); text
// compares binary (utf8mb4_bin). What cannot be carried is sent to
// opts.Import.Report.
func (e *Engine) Import(ctx context.Context, target *dsn.DSN, tables []engine.TableSchema, rows func(table string, fn func(row []any) error) error, opts engine.RestoreOptions) error {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	rep := opts.Import
	var unmapped []string
	for _, t := range tables {
		for _, c := range t.Columns {
			if _, ok := mariadbType(c, false); !ok {
				unmapped = append(unmapped, fmt.Sprintf("%s.%s (%s)", t.Name, c.Name, c.Type))
			}
		}
	}
	if len(unmapped) > 0 {
		return fmt.Errorf("cannot map column types to MariaDB: %s: %w", strings.Join(unmapped, ", "), engine.ErrUnsupported)
	}
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = t.Name
	}
	o := opts
	o.Tables = names
	if err := prepareTarget(ctx, target, dbMeta{Charset: "utf8mb4"}, o, log); err != nil {
		return err
	}
	db, err := open(ctx, target, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	c, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", target, err)
	}
	defer c.Close()
	for _, q := range []string{"SET SESSION foreign_key_checks = 0", "SET SESSION unique_checks = 0"} {
		if _, err := c.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("preparing import session: %w", err)
		}
	}
	for _, t := range tables {
		if err := createImportTable(ctx, c, t, tables, rep); err != nil {
			return err
		}
		if err := importRows(ctx, c, t, rows, opts); err != nil {
			// On a fresh connection: an interrupted load may have cost
			// this one.
			c.Close()
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			if derr := defaultStatsRecalc(cctx, db, t.Name); derr != nil {
				log.Warn("table left with STATS_AUTO_RECALC = 0 after the failed import; run ALTER TABLE … STATS_AUTO_RECALC = DEFAULT", "table", t.Name, "error", derr)
			}
			cancel()
			return engine.TargetChanged(fmt.Errorf("importing table %s: %w", t.Name, err))
		}
		if err := releaseStatsRecalc(ctx, c, t.Name); err != nil {
			return err
		}
		opts.Progress.TableDone()
	}
	if err := myPostLoad(ctx, c, tables, rep); err != nil {
		return engine.TargetChanged(err)
	}
	return nil
}

// keyedColumns are the columns of t used in a key, index or foreign key.
func keyedColumns(t engine.TableSchema, all []engine.TableSchema) map[string]bool {
	k := map[string]bool{}
	for _, ix := range t.Indexes {
		for _, c := range ix.Columns {
			k[c] = true
		}
	}
	for _, fk := range t.ForeignKeys {
		for _, c := range fk.Columns {
			k[c] = true
		}
	}
	for _, o := range all {
		for _, fk := range o.ForeignKeys {
			if fk.RefTable == t.Name {
				for _, c := range fk.RefColumns {
					k[c] = true
				}
			}
		}
	}
	return k
}

func myDefault(c engine.Column) string {
	d := c.Default
	if d == nil {
		return ""
	}
	switch d.Kind {
	case engine.DefaultCurrentTimestamp:
		switch c.Type {
		case "timestamp", "timestamptz":
			return "CURRENT_TIMESTAMP(6)"
		case "date":
			return "(CURRENT_DATE)"
		}
		return ""
	case engine.DefaultCurrentDate:
		if c.Type == "date" {
			return "(CURRENT_DATE)"
		}
		return ""
	case engine.DefaultCurrentTime:
		if c.Type == "time" {
			return "(CURRENT_TIME)"
		}
		return ""
	case engine.DefaultLiteral:
		switch c.Type {
		case "integer", "float", "numeric":
			if myNumLitRE.MatchString(d.Value) {
				return d.Value
			}
			return ""
		case "boolean":
			switch strings.ToLower(d.Value) {
			case "1", "true", "t":
				return "1"
			case "0", "false", "f":
				return "0"
			}
			return ""
		case "json":
			return "(" + quoteString(d.Value) + ")"
		}
		if c.Length == 0 && (c.Type == "text" || c.Type == "bytes") {
			return "(" + quoteString(d.Value) + ")" // LONGTEXT takes expression defaults only
		}
		return quoteString(d.Value)
	}
	return ""
}

func createImportTable(ctx context.Context, c *sql.Conn, t engine.TableSchema, all []engine.TableSchema, rep *engine.ImportOptions) error {
	keyed := keyedColumns(t, all)
	var plain, withDef, pk []string
	firstOfKey := map[string]bool{}
	for _, ix := range t.Indexes {
		if len(ix.Columns) > 0 {
			firstOfKey[ix.Columns[0]] = true
		}
	}
	for _, col := range t.Columns {
		if col.PrimaryKey && len(pk) == 0 {
			firstOfKey[col.Name] = true
		}
		if col.PrimaryKey {
			pk = append(pk, quoteIdent(col.Name))
		}
	}
	// InnoDB counts a VARCHAR's full width (4 bytes a character in
	// utf8mb4) against its 65,535-byte row limit: the widest unindexed
	// VARCHARs become LONGTEXT until the table fits.
	long := map[string]bool{}
	for {
		width, widest := 0, -1
		for i, col := range t.Columns {
			if col.Type == "text" && col.Length > 0 && col.Length <= maxVarchar && !long[col.Name] {
				width += 4*col.Length + 2
				if !keyed[col.Name] && !col.PrimaryKey && (widest < 0 || col.Length > t.Columns[widest].Length) {
					widest = i
				}
			}
		}
		if width <= 60000 || widest < 0 {
			break
		}
		long[t.Columns[widest].Name] = true
		rep.Reportf(t.Name, "column type", t.Columns[widest].Name+" "+t.Columns[widest].SourceType, "stored as LONGTEXT: the table's VARCHARs exceed InnoDB's row size")
	}
	for _, col := range t.Columns {
		if long[col.Name] {
			col.Length = 0
		}
		typ, _ := mariadbType(col, keyed[col.Name])
		if (keyed[col.Name] || col.PrimaryKey) && col.Length == 0 && (col.Type == "text" || col.Type == "bytes") {
			rep.Reportf(t.Name, "column type", col.Name+" "+col.SourceType, "stored as %s to be indexable: longer values are refused", typ)
		}
		if col.Type == "numeric" && typ == "DECIMAL(65,30)" {
			rep.Reportf(t.Name, "column type", col.Name+" "+col.SourceType, "a numeric without precision (or beyond 65,30) is stored as DECIMAL(65,30)")
		}
		d := quoteIdent(col.Name) + " " + typ
		if !col.Nullable || col.PrimaryKey {
			d += " NOT NULL"
		}
		if col.Identity {
			if firstOfKey[col.Name] {
				d += " AUTO_INCREMENT"
			} else {
				rep.Reportf(t.Name, "identity", col.Name, "MariaDB's AUTO_INCREMENT needs the column to lead a key; this one does not")
			}
		}
		plain = append(plain, d)
		if def := myDefault(col); def != "" && !col.Identity {
			d += " DEFAULT " + def
		} else if col.Default != nil && !col.Identity {
			rep.Reportf(t.Name, "default", col.Name, "default %q cannot be written for a %s column", col.Default.Value, col.Type)
		}
		withDef = append(withDef, d)
	}
	if len(pk) > 0 {
		plain = append(plain, "PRIMARY KEY ("+strings.Join(pk, ", ")+")")
		withDef = append(withDef, "PRIMARY KEY ("+strings.Join(pk, ", ")+")")
	}
	// AUTO_INCREMENT needs a key at creation: an identity column that
	// leads only a secondary index gets that index now.
	for _, ix := range t.Indexes {
		for _, col := range t.Columns {
			if col.Identity && len(ix.Columns) > 0 && col.Name == ix.Columns[0] && (len(pk) == 0 || quoteIdent(col.Name) != pk[0]) {
				k := "KEY " + quoteIdent(ix.Name) + " (" + myIdentJoin(ix.Columns) + ")"
				if ix.Unique {
					k = "UNIQUE " + k
				}
				plain = append(plain, k)
				withDef = append(withDef, k)
			}
		}
	}
	// Created without automatic statistics recalculation, which would
	// run again and again while the table fills (see holdStatsRecalc);
	// the default comes back and one ANALYZE runs once it is loaded.
	create := func(defs []string) error {
		q := "CREATE TABLE " + quoteIdent(t.Name) + " (\n  " + strings.Join(defs, ",\n  ") + "\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin STATS_AUTO_RECALC=0"
		_, err := c.ExecContext(ctx, q)
		return err
	}
	if err := create(withDef); err != nil {
		if strings.Join(withDef, "") == strings.Join(plain, "") {
			return fmt.Errorf("creating table %s: %w", t.Name, err)
		}
		if err2 := create(plain); err2 != nil {
			return fmt.Errorf("creating table %s: %w", t.Name, err2)
		}
		for _, col := range t.Columns {
			if def := myDefault(col); def != "" && !col.Identity {
				rep.Reportf(t.Name, "default", col.Name+" DEFAULT "+def, "MariaDB refused the defaults of this table: %v", err)
			}
		}
	}
	return nil
}

func myIdentJoin(cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = quoteIdent(c)
	}
	return strings.Join(q, ", ")
}

// myPostLoad creates the indexes, then the foreign keys, then sets each
// AUTO_INCREMENT to the next value of the source (when above the rows').
func myPostLoad(ctx context.Context, c *sql.Conn, tables []engine.TableSchema, rep *engine.ImportOptions) error {
	have := map[string]bool{}
	for _, t := range tables {
		have[t.Name] = true
	}
	fkNames := map[string]bool{}
	for _, t := range tables {
		var adds []string
		idxNames := map[string]bool{"PRIMARY": true}
		for _, ix := range t.Indexes {
			if len(ix.Columns) == 0 {
				continue
			}
			if lead := ix.Columns[0]; isIdentity(t, lead) && !isFirstPK(t, lead) {
				idxNames[ix.Name] = true
				continue // created with the table
			}
			name := uniqueName(ix.Name, idxNames, 64)
			k := "ADD INDEX "
			if ix.Unique {
				k = "ADD UNIQUE INDEX "
			}
			adds = append(adds, k+quoteIdent(name)+" ("+myIdentJoin(ix.Columns)+")")
		}
		if len(adds) > 0 {
			q := "ALTER TABLE " + quoteIdent(t.Name) + " " + strings.Join(adds, ", ")
			if _, err := c.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("creating the indexes of %s: %w", t.Name, err)
			}
		}
	}
	for _, t := range tables {
		var adds []string
		for _, fk := range t.ForeignKeys {
			if !have[fk.RefTable] {
				rep.Reportf(t.Name, "foreign key", fk.Name, "references %s, which is not imported", fk.RefTable)
				continue
			}
			name := fk.Name
			if name == "" {
				name = t.Name + "_" + strings.Join(fk.Columns, "_") + "_fk"
			}
			name = uniqueName(name, fkNames, 64)
			a := "ADD CONSTRAINT " + quoteIdent(name) + " FOREIGN KEY (" + myIdentJoin(fk.Columns) + ") REFERENCES " +
				quoteIdent(fk.RefTable) + " (" + myIdentJoin(fk.RefColumns) + ")"
			if fk.OnDelete != "" {
				a += " ON DELETE " + fk.OnDelete
			}
			if fk.OnUpdate != "" {
				a += " ON UPDATE " + fk.OnUpdate
			}
			adds = append(adds, a)
		}
		if len(adds) > 0 {
			q := "ALTER TABLE " + quoteIdent(t.Name) + " " + strings.Join(adds, ", ")
			if _, err := c.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("creating the foreign keys of %s: %w", t.Name, err)
			}
		}
	}
	for _, t := range tables {
		if t.NextIdentity <= 1 {
			continue
		}
		for _, col := range t.Columns {
			if col.Identity {
				// InnoDB keeps the counter at least max + 1 by itself.
				q := "ALTER TABLE " + quoteIdent(t.Name) + " AUTO_INCREMENT = " + strconv.FormatInt(t.NextIdentity, 10)
				if _, err := c.ExecContext(ctx, q); err != nil {
					return fmt.Errorf("setting the AUTO_INCREMENT of %s: %w", t.Name, err)
				}
			}
		}
	}
	return nil
}

func isIdentity(t engine.TableSchema, col string) bool {
	for _, c := range t.Columns {
		if c.Name == col {
			return c.Identity
		}
	}
	return false
}

func isFirstPK(t engine.TableSchema, col string) bool {
	for _, c := range t.Columns {
		if c.PrimaryKey {
			return c.Name == col
		}
	}
	return false
}

// uniqueName returns name, or name with a numeric suffix, not in used
// (and marks it used), within max bytes.
func uniqueName(name string, used map[string]bool, max int) string {
	n := name
	if len(n) > max {
		n = n[:max]
	}
	for i := 2; used[strings.ToLower(n)]; i++ {
		suf := "_" + strconv.Itoa(i)
		base := name
		if len(base)+len(suf) > max {
			base = base[:max-len(suf)]
		}
		n = base + suf
	}
	used[strings.ToLower(n)] = true
	return n
}
