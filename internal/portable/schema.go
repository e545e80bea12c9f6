package portable

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/snapdata/snapdata/internal/engine"
)

// FormatVersion is the version of schema.json that Export writes.
//
//   - 1: a JSON list of tables, each with its columns (name, portable type,
//     source type, nullable, primary key).
//   - 2: an object {"format_version": 2, "tables": [...], "not_carried":
//     [...]}; columns add precision, scale, length, a constant default and
//     identity; tables add their source schema, unique and secondary
//     indexes, foreign keys, the identity's next value and the partitions
//     whose rows they hold.
//
// Open reads both.
const FormatVersion = 2

type schemaFile struct {
	FormatVersion int `json:"format_version"`
	engine.PortableSchema
}

// describe returns the portable schema of a snapshot: the engine's full
// description where it has one, its table list otherwise.
func describe(ctx context.Context, eng engine.Engine, rr engine.RowReader, snap engine.SnapshotReader) (*engine.PortableSchema, error) {
	if d, ok := eng.(engine.SchemaDescriber); ok {
		return d.PortableSchema(ctx, snap)
	}
	tables, err := rr.Schema(ctx, snap)
	if err != nil {
		return nil, err
	}
	return &engine.PortableSchema{Tables: tables}, nil
}

// decodeSchema reads schema.json in either format.
func (a *Archive) decodeSchema(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '[' {
		a.Version = 1
		if err := json.Unmarshal(b, &a.Schema); err != nil {
			return fmt.Errorf("%s: %w", SchemaFile, err)
		}
		if a.Schema == nil {
			a.Schema = []engine.TableSchema{}
		}
		return nil
	}
	var f schemaFile
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("%s: %w", SchemaFile, err)
	}
	if f.FormatVersion < 2 || f.FormatVersion > FormatVersion {
		return fmt.Errorf("%s has format version %d; this snapdata reads versions 1 to %d", SchemaFile, f.FormatVersion, FormatVersion)
	}
	a.Version = f.FormatVersion
	a.Schema = f.Tables
	if a.Schema == nil {
		a.Schema = []engine.TableSchema{}
	}
	a.NotCarried = f.NotCarried
	return nil
}
