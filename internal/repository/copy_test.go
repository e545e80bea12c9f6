package repository

import (
	"bytes"
	"context"
	"testing"

	"github.com/snapdata/snapdata/internal/backend"
)

// A prune of the destination between the copy's chunk uploads and its
// manifest (its lock wrongly taken for dead) removes the chunks just
// copied, which no manifest references yet: the copy sees the prune marker
// change, stores them again and writes a complete snapshot.
func TestCopyPruneOfDestinationDuringCopy(t *testing.T) {
	for _, same := range []bool{false, true} {
		name := "different-keys"
		if same {
			name = "same-keys"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			src, _ := newRepo(t, InitOptions{ChunkAvgBits: 14})
			data := text(7, 600<<10)
			snap := commit(t, src, "s", map[string][]byte{"a": data})
			opts := InitOptions{ChunkAvgBits: 14}
			if same {
				p := src.Params()
				opts = InitOptions{CopyParams: &p}
			}
			dst, dir := newRepo(t, opts)
			pruned := 0
			res, err := Copy(ctx, src, dst, CopyOptions{afterChunks: func() {
				if pruned > 0 {
					return
				}
				rep, err := otherProcess(t, dir).Prune(ctx, false)
				if err != nil {
					t.Fatal(err)
				}
				pruned = rep.RemovedObjects
			}})
			if err != nil {
				t.Fatal(err)
			}
			if pruned == 0 {
				t.Fatal("the prune removed nothing: the test did not race the copy")
			}
			if len(res.Copied) != 1 || int(res.ChunksUploaded) < 2*pruned-1 {
				t.Errorf("copy after a prune: %+v (prune removed %d)", res, pruned)
			}
			rep, err := dst.Check(ctx, true, nil)
			if err != nil || !rep.OK() {
				t.Fatalf("check after the copy: %v %+v", err, rep)
			}
			got, err := dst.List(ctx)
			if err != nil || len(got) != 1 {
				t.Fatalf("destination snapshots: %v %v", got, err)
			}
			if b := readStream(t, dst, got[0].Streams[0]); !bytes.Equal(b, data) {
				t.Errorf("the copied stream differs from the source's")
			}
			if got[0].Meta[MetaCopiedFrom] != snap.ID {
				t.Errorf("copied_from = %q, want %s", got[0].Meta[MetaCopiedFrom], snap.ID)
			}
		})
	}
}

// A destination with the source's parameters but without the column filter
// gets the filtered chunks decompressed and stored row by row (older
// releases open it), under the same ids.
func TestCopySameParamsIntoRepositoryWithoutColumns(t *testing.T) {
	ctx := context.Background()
	src, _ := newRepo(t, InitOptions{ChunkAvgBits: 14})
	data := text(9, 300<<10)
	commit(t, src, "s", map[string][]byte{"a": data})
	p := src.Params()
	dst, _ := newRepo(t, InitOptions{CopyParams: &p, NoColumns: true})
	if dst.Params().Version != formatVersionChunker || dst.Params().Columns {
		t.Fatalf("destination params: %+v", dst.Params())
	}
	res, err := Copy(ctx, src, dst, CopyOptions{})
	if err != nil || len(res.Copied) != 1 || !res.SameKeys {
		t.Fatalf("copy: %+v %v", res, err)
	}
	filtered := 0
	if err := dst.be.List(ctx, backend.Data, func(fi backend.FileInfo) error {
		obj, err := dst.be.Load(ctx, backend.Handle{Type: backend.Data, Name: fi.Name})
		if err != nil {
			return err
		}
		b, err := dst.key.Open(nil, obj)
		if err != nil {
			return err
		}
		if b[0] == blobColumns {
			filtered++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if filtered > 0 {
		t.Errorf("%d chunks in the column filter's form in a repository without it", filtered)
	}
	got, err := dst.List(ctx)
	if err != nil || len(got) != 1 {
		t.Fatal(got, err)
	}
	if b := readStream(t, dst, got[0].Streams[0]); !bytes.Equal(b, data) {
		t.Error("the copied stream differs")
	}
	if rep, err := dst.Check(ctx, true, nil); err != nil || !rep.OK() {
		t.Fatalf("check: %v %+v", err, rep)
	}
}
