package keeprows

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
)

// Querier is what SQL needs of a *sql.Conn or *sql.Tx.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// SQL is a Session over database/sql.
type SQL struct{ Q Querier }

// Exec runs a statement.
func (s SQL) Exec(ctx context.Context, query string) (int64, error) {
	r, err := s.Q.ExecContext(ctx, query)
	if err != nil {
		return 0, err
	}
	n, err := r.RowsAffected()
	if err != nil {
		return 0, nil
	}
	return n, nil
}

// Row returns the first row of a query as text.
func (s SQL) Row(ctx context.Context, query string) ([]string, bool, error) {
	rows, err := s.Q.QueryContext(ctx, query)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, false, rows.Err()
	}
	cols, err := rows.Columns()
	if err != nil {
		return nil, false, err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, false, err
	}
	out := make([]string, len(cols))
	for i, v := range vals {
		out[i] = Text(v)
	}
	return out, true, rows.Close()
}

// Text shows a scanned value.
func Text(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case []byte:
		return string(x)
	default:
		return fmt.Sprint(x)
	}
}

// CountOf parses the first column of a Row result.
func CountOf(row []string) (int64, error) {
	if len(row) == 0 {
		return 0, errors.New("no count")
	}
	return strconv.ParseInt(row[0], 10, 64)
}
