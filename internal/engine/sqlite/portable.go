package sqlite

import (
	"context"
	"fmt"
	"strings"

	"github.com/snapdata/snapdata/internal/engine"
)

// portableType maps a declared SQLite type to a portable type, following
// SQLite's affinity rules with the common date, boolean and JSON names.
func portableType(decl string) string {
	d := strings.ToUpper(decl)
	switch {
	case strings.HasPrefix(d, "DECIMAL_TEXT"):
		return "numeric" // exact numerics as text (snapdata import)
	case strings.Contains(d, "INT"):
		return "integer"
	case strings.Contains(d, "BOOL"):
		return "boolean"
	case strings.Contains(d, "TIMESTAMP"), strings.Contains(d, "DATETIME"):
		return "timestamp"
	case strings.Contains(d, "DATE"):
		return "date"
	case strings.Contains(d, "TIME"):
		return "time"
	case strings.Contains(d, "JSON"):
		return "json"
	case strings.Contains(d, "CHAR"), strings.Contains(d, "CLOB"), strings.Contains(d, "TEXT"):
		return "text"
	case strings.Contains(d, "BLOB"), d == "":
		return "bytes"
	case strings.Contains(d, "REAL"), strings.Contains(d, "FLOA"), strings.Contains(d, "DOUB"):
		return "float"
	}
	return "numeric"
}

// Schema implements engine.RowReader.
func (e *Engine) Schema(ctx context.Context, snap engine.SnapshotReader) ([]engine.TableSchema, error) {
	m, _, _, err := loadMeta(ctx, snap)
	if err != nil {
		return nil, err
	}
	var out []engine.TableSchema
	for _, t := range m.Tables {
		ts := engine.TableSchema{Name: t.Name}
		for _, c := range t.stored() {
			ts.Columns = append(ts.Columns, engine.Column{Name: c.Name, Type: portableType(c.Decl), SourceType: c.Decl, Nullable: !c.NotNull && c.PK == 0, PrimaryKey: c.PK > 0})
		}
		out = append(out, ts)
	}
	return out, nil
}

// ReadRows implements engine.RowReader: the stored columns, without the
// rowid. Values keep SQLite's storage classes (int64, float64, string,
// []byte, nil).
func (e *Engine) ReadRows(ctx context.Context, snap engine.SnapshotReader, name string, fn func(row []any) error) error {
	m, _, _, err := loadMeta(ctx, snap)
	if err != nil {
		return err
	}
	var t *table
	for i := range m.Tables {
		if m.Tables[i].Name == name {
			t = &m.Tables[i]
		}
	}
	if t == nil {
		return fmt.Errorf("table %q is not in the snapshot", name)
	}
	// SQLite stores booleans as integers; the portable form says boolean.
	var boolCols []int
	for i, c := range t.stored() {
		if portableType(c.Decl) == "boolean" {
			boolCols = append(boolCols, i)
		}
	}
	return eachRow(ctx, snap, *t, func(vals []any) error {
		row := vals
		if t.Rowid {
			row = vals[1:]
		}
		for _, i := range boolCols {
			if n, ok := row[i].(int64); ok && (n == 0 || n == 1) {
				row[i] = n == 1
			}
		}
		return fn(row)
	}, nil)
}

var (
	_ engine.RowReader = (*Engine)(nil)
	_ engine.Importer  = (*Engine)(nil)
)
