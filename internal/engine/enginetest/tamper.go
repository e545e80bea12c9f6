package enginetest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/snapdata/snapdata/internal/backend/local"
	"github.com/snapdata/snapdata/internal/repository"
)

// TamperLatest saves a copy of the latest snapshot of the local repository
// at dir whose manifest says table moreRows has one row more and table
// badChecksum another checksum (either name may be ""), and returns the
// copy's id: a manifest that no longer matches its data, for verify to
// catch.
func TamperLatest(t testing.TB, dir, password, moreRows, badChecksum string) string {
	t.Helper()
	ctx := context.Background()
	repo, err := repository.Open(ctx, local.New(dir), []byte(password), nil)
	if err != nil {
		t.Fatalf("open repository %s: %v", dir, err)
	}
	defer repo.Close()
	s, err := repo.Find(ctx, "latest", "")
	if err != nil {
		t.Fatalf("find the latest snapshot: %v", err)
	}
	want, found := 0, 0
	for _, name := range []string{moreRows, badChecksum} {
		if name != "" {
			want++
		}
	}
	for i := range s.Tables {
		switch name := s.Tables[i].Name; {
		case name == moreRows:
			s.Tables[i].Rows++
			found++
		case name == badChecksum:
			s.Tables[i].Checksum = strings.Repeat("0", len(s.Tables[i].Checksum))
			found++
		}
	}
	if found != want {
		t.Fatalf("the latest snapshot lacks table %s or %s", moreRows, badChecksum)
	}
	s.Time = s.Time.Add(time.Second)
	id, err := repo.SaveManifest(ctx, s)
	if err != nil {
		t.Fatalf("save the tampered manifest: %v", err)
	}
	return id
}
