// Command gen loads the benchmark dataset into PostgreSQL, MariaDB or
// SQLite, and applies the churn workloads to PostgreSQL.
//
//	gen --engine pg --dsn postgres://u@127.0.0.1:5432/bench --size 1GB
//	gen --engine mysql --dsn 'u:pw@tcp(127.0.0.1:3306)/bench' --size 1GB
//	gen --engine sqlite --dsn /tmp/app.db --size 1GB
//	gen --engine pg --dsn … --size 1GB --mode churn-append --batch 1 --changed-out changed.tsv
//	gen --engine pg --dsn … --size 1GB --mode churn-update --batch 2 --changed-out changed.tsv
package main

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"
	_ "modernc.org/sqlite"

	"github.com/snapdata/snapdata/bench/dataset"
)

type options struct {
	engine, dsn, mode, changedOut string
	size                          int64
	seed, batch                   uint64
	jobs                          int
}

func main() {
	var o options
	var size string
	flag.StringVar(&o.engine, "engine", "pg", "pg, mysql or sqlite")
	flag.StringVar(&o.dsn, "dsn", "", "PostgreSQL URL, go-sql-driver/mysql DSN, or SQLite file path")
	flag.StringVar(&size, "size", "1GB", "approximate size of the data as text")
	flag.Uint64Var(&o.seed, "seed", 42, "random seed")
	flag.StringVar(&o.mode, "mode", "load", "load, churn-append (1% new rows, 0.1% updates of recent rows) or churn-update (uniform 1% updates); churn is PostgreSQL only")
	flag.Uint64Var(&o.batch, "batch", 1, "churn batch number (salts the random stream)")
	flag.StringVar(&o.changedOut, "changed-out", "", "churn: write the new and updated rows as COPY text to this file")
	flag.IntVar(&o.jobs, "jobs", 2, "tables loaded in parallel")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	n, err := dataset.ParseSize(size)
	if err != nil {
		log.Error("bad flag", "err", err)
		os.Exit(2)
	}
	o.size = n
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	start := time.Now()
	if err := run(ctx, o, log); err != nil {
		log.Error("gen failed", "engine", o.engine, "mode", o.mode, "err", err)
		os.Exit(1)
	}
	log.Info("gen done", "engine", o.engine, "mode", o.mode, "seconds", time.Since(start).Seconds())
}

func run(ctx context.Context, o options, log *slog.Logger) error {
	d := dataset.New(o.size, o.seed)
	switch {
	case o.mode == "load" && o.engine == dataset.Postgres:
		return loadPG(ctx, o, d, log)
	case o.mode == "load" && o.engine == dataset.MySQL:
		return loadMySQL(ctx, o, d, log)
	case o.mode == "load" && o.engine == dataset.SQLite:
		return loadSQLite(ctx, o, d, log)
	case strings.HasPrefix(o.mode, "churn-") && o.engine == dataset.Postgres:
		return churnPG(ctx, o, d, log)
	}
	return fmt.Errorf("unsupported combination --engine %s --mode %s", o.engine, o.mode)
}

// tsvRows writes rows [first, first+n) of table t as COPY text to w.
func tsvRows(g *dataset.Gen, t *dataset.Table, first, n int64, w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	row := make([]any, 0, len(t.Columns))
	buf := make([]byte, 0, 4096)
	for id := first; id < first+n; id++ {
		row = g.Row(id, row)
		buf = dataset.AppendTSV(buf[:0], t, row)
		if _, err := bw.Write(buf); err != nil {
			return err
		}
	}
	return bw.Flush()
}

func execAll(ctx context.Context, exec func(context.Context, string) error, stmts []string) error {
	for _, s := range stmts {
		if err := exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", strings.Join(strings.Fields(s), " "), err)
		}
	}
	return nil
}

// ---- PostgreSQL ----

func pgConnect(ctx context.Context, dsn string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse PostgreSQL DSN: %w", err)
	}
	cfg.RuntimeParams["timezone"] = "UTC"
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	return c, nil
}

func pgExec(c *pgx.Conn) func(context.Context, string) error {
	return func(ctx context.Context, s string) error { _, err := c.Exec(ctx, s); return err }
}

// pgCopyIn streams generated rows into table t with COPY FROM STDIN.
func pgCopyIn(ctx context.Context, dsn string, d *dataset.Dataset, t *dataset.Table, stream uint64, first, n int64, setup func(*dataset.Gen)) error {
	c, err := pgConnect(ctx, dsn)
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	g := d.NewGen(t, stream)
	if setup != nil {
		setup(g)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tsvRows(g, t, first, n, pw)) }()
	cols := make([]string, len(t.Columns))
	for i, col := range t.Columns {
		cols[i] = col.Name
	}
	_, err = c.PgConn().CopyFrom(ctx, pr, fmt.Sprintf("COPY %s (%s) FROM STDIN", t.Name, strings.Join(cols, ", ")))
	pr.CloseWithError(errors.New("copy ended"))
	if err != nil {
		return fmt.Errorf("copy into %s: %w", t.Name, err)
	}
	return nil
}

func loadPG(ctx context.Context, o options, d *dataset.Dataset, log *slog.Logger) error {
	c, err := pgConnect(ctx, o.dsn)
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	if err := execAll(ctx, pgExec(c), dataset.Schema(dataset.Postgres)); err != nil {
		return err
	}
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(o.jobs)
	for _, t := range d.Tables {
		eg.Go(func() error {
			start := time.Now()
			err := pgCopyIn(ectx, o.dsn, d, t, 0, 1, t.Rows, nil)
			log.Info("loaded", "table", t.Name, "rows", t.Rows, "seconds", time.Since(start).Seconds())
			return err
		})
	}
	if err := eg.Wait(); err != nil {
		return err
	}
	if err := execAll(ctx, pgExec(c), dataset.PostData(dataset.Postgres)); err != nil {
		return err
	}
	// Steady state: hint bits set, statistics gathered, visibility map built.
	return execAll(ctx, pgExec(c), []string{"VACUUM (FREEZE, ANALYZE)"})
}

// churnUpdates are the UPDATE statements of the churn workloads: each
// changes what an application would change in such a row.
var churnUpdates = map[string]string{
	dataset.Customers:  `UPDATE customers SET phone = '+1 555 ' || lpad((id * 7919 % 10000)::text, 4, '0'), notes = coalesce(notes || ' ', '') || 'Prefers e-mail contact.' WHERE id = ANY($1)`,
	dataset.Products:   `UPDATE products SET stock = greatest(stock - 1, 0), price = round(price * 1.05, 2) WHERE id = ANY($1)`,
	dataset.Orders:     `UPDATE orders SET status = CASE status WHEN 'pending' THEN 'paid' WHEN 'paid' THEN 'shipped' ELSE 'delivered' END, updated_at = updated_at + interval '1 day 3 hours' WHERE id = ANY($1)`,
	dataset.OrderItems: `UPDATE order_items SET quantity = quantity + 1 WHERE id = ANY($1)`,
	dataset.Events:     `UPDATE events SET payload = payload || jsonb_build_object('processed', true, 'processed_by', 'worker-' || (id % 7)) WHERE id = ANY($1)`,
}

func churnPG(ctx context.Context, o options, d *dataset.Dataset, log *slog.Logger) error {
	c, err := pgConnect(ctx, o.dsn)
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	maxID := map[string]int64{}
	for _, t := range d.Tables {
		var m int64
		if err := c.QueryRow(ctx, "SELECT coalesce(max(id), 0) FROM "+t.Name).Scan(&m); err != nil {
			return fmt.Errorf("max id of %s: %w", t.Name, err)
		}
		maxID[t.Name] = m
	}
	appendMode := o.mode == "churn-append"
	if !appendMode && o.mode != "churn-update" {
		return fmt.Errorf("unknown mode %q", o.mode)
	}
	updated := map[string][]int64{}
	newMax := map[string]int64{}
	for k, v := range maxID {
		newMax[k] = v
	}
	for _, t := range d.Tables {
		m := maxID[t.Name]
		rng := newRand(o.seed, o.batch, t.Name)
		if appendMode {
			k := max(1, m/100)
			newMax[t.Name] = m + k
			u := max(1, m/1000)
			lo := m - max(1, m/50) // updates hit the most recent 2 % of rows
			updated[t.Name] = pickIDs(rng, lo+1, m, u)
		} else {
			updated[t.Name] = pickIDs(rng, 1, m, max(1, m/100))
		}
	}
	start := time.Now()
	if appendMode {
		// Parents first, so foreign keys of new rows point at rows that exist.
		for _, t := range d.Tables {
			k := newMax[t.Name] - maxID[t.Name]
			setup := func(g *dataset.Gen) {
				g.SetParents(newMax[dataset.Customers], newMax[dataset.Products], newMax[dataset.Orders])
				if t.Name == dataset.OrderItems {
					g.StartOrderItems(maxID[dataset.Orders] + 1)
				}
			}
			if err := pgCopyIn(ctx, o.dsn, d, t, 1000+o.batch, maxID[t.Name]+1, k, setup); err != nil {
				return err
			}
		}
	}
	for _, t := range d.Tables {
		if _, err := c.Exec(ctx, churnUpdates[t.Name], updated[t.Name]); err != nil {
			return fmt.Errorf("churn update of %s: %w", t.Name, err)
		}
	}
	total := int64(0)
	for _, t := range d.Tables {
		total += newMax[t.Name] - maxID[t.Name] + int64(len(updated[t.Name]))
	}
	log.Info("churn applied", "mode", o.mode, "rows", total, "seconds", time.Since(start).Seconds())
	if o.changedOut == "" {
		return nil
	}
	f, err := os.Create(o.changedOut)
	if err != nil {
		return fmt.Errorf("create %s: %w", o.changedOut, err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	for _, t := range d.Tables {
		ids := updated[t.Name]
		var sb strings.Builder
		sb.WriteString("'{")
		for i, id := range ids {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(strconv.FormatInt(id, 10))
		}
		sb.WriteString("}'::bigint[]")
		q := fmt.Sprintf("COPY (SELECT * FROM %s WHERE id > %d OR id = ANY(%s) ORDER BY id) TO STDOUT", t.Name, maxID[t.Name], sb.String())
		if _, err := c.PgConn().CopyTo(ctx, bw, q); err != nil {
			f.Close()
			return fmt.Errorf("copy changed rows of %s: %w", t.Name, err)
		}
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", o.changedOut, err)
	}
	return f.Close()
}

// ---- MariaDB ----

func loadMySQL(ctx context.Context, o options, d *dataset.Dataset, log *slog.Logger) error {
	cfg, err := mysql.ParseDSN(o.dsn)
	if err != nil {
		return fmt.Errorf("parse MySQL DSN: %w", err)
	}
	cfg.ParseTime = false
	cfg.MultiStatements = false
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return fmt.Errorf("open MariaDB: %w", err)
	}
	defer db.Close()
	mexec := func(ctx context.Context, s string) error { _, err := db.ExecContext(ctx, s); return err }
	if err := execAll(ctx, mexec, dataset.Schema(dataset.MySQL)); err != nil {
		return err
	}
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(o.jobs)
	for _, t := range d.Tables {
		eg.Go(func() error {
			start := time.Now()
			g := d.NewGen(t, 0)
			pr, pw := io.Pipe()
			go func() { pw.CloseWithError(tsvRows(g, t, 1, t.Rows, pw)) }()
			name := "gen_" + t.Name
			mysql.RegisterReaderHandler(name, func() io.Reader { return pr })
			defer mysql.DeregisterReaderHandler(name)
			conn, err := db.Conn(ectx)
			if err != nil {
				return err
			}
			defer conn.Close()
			for _, s := range []string{"SET foreign_key_checks = 0", "SET unique_checks = 0", "SET time_zone = '+00:00'"} {
				if _, err := conn.ExecContext(ectx, s); err != nil {
					return fmt.Errorf("%s: %w", s, err)
				}
			}
			q := fmt.Sprintf(`LOAD DATA LOCAL INFILE 'Reader::%s' INTO TABLE %s CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\t' ESCAPED BY '\\' LINES TERMINATED BY '\n'`, name, t.Name)
			_, err = conn.ExecContext(ectx, q)
			pr.CloseWithError(errors.New("load ended"))
			if err != nil {
				return fmt.Errorf("load data into %s: %w", t.Name, err)
			}
			log.Info("loaded", "table", t.Name, "rows", t.Rows, "seconds", time.Since(start).Seconds())
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		return err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET foreign_key_checks = 0"); err != nil {
		return err
	}
	cexec := func(ctx context.Context, s string) error { _, err := conn.ExecContext(ctx, s); return err }
	if err := execAll(ctx, cexec, dataset.PostData(dataset.MySQL)); err != nil {
		return err
	}
	return execAll(ctx, cexec, []string{"ANALYZE TABLE customers, products, orders, order_items, events"})
}

// ---- SQLite ----

func loadSQLite(ctx context.Context, o options, d *dataset.Dataset, log *slog.Logger) error {
	db, err := sql.Open("sqlite", o.dsn)
	if err != nil {
		return fmt.Errorf("open SQLite: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	sexec := func(ctx context.Context, s string) error { _, err := db.ExecContext(ctx, s); return err }
	if err := execAll(ctx, sexec, []string{"PRAGMA journal_mode = OFF", "PRAGMA synchronous = OFF", "PRAGMA cache_size = -262144"}); err != nil {
		return err
	}
	if err := execAll(ctx, sexec, dataset.Schema(dataset.SQLite)); err != nil {
		return err
	}
	for _, t := range d.Tables {
		start := time.Now()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		ph := strings.TrimSuffix(strings.Repeat("?, ", len(t.Columns)), ", ")
		st, err := tx.PrepareContext(ctx, fmt.Sprintf("INSERT INTO %s VALUES (%s)", t.Name, ph))
		if err != nil {
			tx.Rollback()
			return fmt.Errorf("prepare insert into %s: %w", t.Name, err)
		}
		g := d.NewGen(t, 0)
		row := make([]any, 0, len(t.Columns))
		for id := int64(1); id <= t.Rows; id++ {
			row = g.Row(id, row)
			for i, v := range row {
				switch t.Columns[i].Kind {
				case dataset.KMoney:
					row[i] = float64(v.(int64)) / 100
				case dataset.KTime:
					row[i] = v.(time.Time).Format(dataset.TimeLayout)
				}
			}
			if _, err := st.ExecContext(ctx, row...); err != nil {
				tx.Rollback()
				return fmt.Errorf("insert into %s: %w", t.Name, err)
			}
		}
		st.Close()
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("commit %s: %w", t.Name, err)
		}
		log.Info("loaded", "table", t.Name, "rows", t.Rows, "seconds", time.Since(start).Seconds())
	}
	return execAll(ctx, sexec, append(dataset.PostData(dataset.SQLite), "ANALYZE"))
}

func newRand(seed, batch uint64, table string) *rand.Rand {
	h := uint64(0)
	for _, c := range table {
		h = h*131 + uint64(c)
	}
	return rand.New(rand.NewPCG(seed^h, 7777+batch))
}

// pickIDs returns n distinct ids from [lo, hi], sorted.
func pickIDs(r *rand.Rand, lo, hi, n int64) []int64 {
	if lo < 1 {
		lo = 1
	}
	if span := hi - lo + 1; n > span {
		n = span
	}
	seen := make(map[int64]struct{}, n)
	out := make([]int64, 0, n)
	for int64(len(out)) < n {
		id := lo + r.Int64N(hi-lo+1)
		if _, ok := seen[id]; ok {
			continue
		}
		seen[id] = struct{}{}
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}
