package repository

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/snapdata/snapdata/internal/backend"
	"github.com/snapdata/snapdata/internal/backend/local"
	"github.com/snapdata/snapdata/internal/backend/s3"
	"github.com/snapdata/snapdata/internal/testsrv"
)

// locations returns, per backend kind, a function that makes a fresh empty
// location and returns an opener of it: each call of the opener is a new
// backend on the same location, as another process would have.
func locations(t *testing.T) map[string]func() func() backend.Backend {
	return map[string]func() func() backend.Backend{
		"local": func() func() backend.Backend {
			dir := filepath.Join(t.TempDir(), "repo")
			return func() backend.Backend { return local.New(dir) }
		},
		"s3": func() func() backend.Backend {
			srv := testsrv.S3(t)
			srv.SetEnv(t)
			url := srv.URL(srv.NewBucket(t), fmt.Sprintf("r%d", s3Prefix.Add(1)))
			return func() backend.Backend {
				b, err := s3.New(context.Background(), url)
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
		},
	}
}

// opens fails the test unless password opens the repository.
func opens(t *testing.T, open func() backend.Backend, password string) *Repository {
	t.Helper()
	r, err := Open(context.Background(), open(), []byte(password), nil)
	if err != nil {
		t.Fatalf("open with %q: %v", password, err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// refuses fails the test unless password is refused as wrong.
func refuses(t *testing.T, open func() backend.Backend, password string) {
	t.Helper()
	r, err := Open(context.Background(), open(), []byte(password), nil)
	if err == nil {
		r.Close()
		t.Fatalf("password %q still opens the repository", password)
	}
	if !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("open with %q: %v, want a wrong password", password, err)
	}
}

func exclusive(t *testing.T, r *Repository) *Lock {
	t.Helper()
	l, err := r.Lock(context.Background(), true, "test", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Unlock() })
	return l
}

// Add a key, open with either password; passwd makes the old password
// fail and the new one work; the last key and the key in use are not
// removed; data stays readable throughout.
func TestKeysAddPasswdRemove(t *testing.T) {
	ctx := context.Background()
	for name, mk := range locations(t) {
		t.Run(name, func(t *testing.T) {
			open := mk()
			r, err := Init(ctx, open(), InitOptions{Password: []byte("alpha"), KDF: fastKDF(), ChunkAvgBits: 14}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			data := text(51, 100<<10)
			snap := commit(t, r, "s", map[string][]byte{"a": data})
			first := r.KeyID()
			if first == "" {
				t.Fatal("init recorded no key id")
			}

			lock := exclusive(t, r)
			beta, err := r.AddKey(ctx, lock, []byte("beta"), fastKDF())
			if err != nil {
				t.Fatal(err)
			}
			opens(t, open, "alpha")
			rb := opens(t, open, "beta")
			if rb.KeyID() != beta {
				t.Fatalf("beta opened key %s, want %s", rb.KeyID(), beta)
			}
			keys, err := r.Keys(ctx)
			if err != nil || len(keys) != 2 {
				t.Fatalf("keys %+v, %v", keys, err)
			}
			for _, k := range keys {
				if k.Current != (k.ID == first) || k.Created.IsZero() || k.Host == "" || k.Err != "" {
					t.Errorf("key %+v (current should be %s)", k, first[:8])
				}
			}
			lock.Unlock()

			// passwd from beta to gamma: alpha is untouched.
			lb := exclusive(t, rb)
			gamma, err := rb.ChangePassword(ctx, lb, []byte("gamma"), fastKDF())
			if err != nil {
				t.Fatal(err)
			}
			lb.Unlock()
			refuses(t, open, "beta")
			rg := opens(t, open, "gamma")
			if rg.KeyID() != gamma {
				t.Fatalf("gamma opened %s, want %s", rg.KeyID(), gamma)
			}
			opens(t, open, "alpha")
			if got := readStream(t, rg, snap.Streams[0]); string(got) != string(data) {
				t.Fatal("data does not read back with the new password")
			}

			lg := exclusive(t, rg)
			// The key in use needs force; another key may go.
			if err := rg.RemoveKey(ctx, lg, gamma, false); !errors.Is(err, ErrKeyRefused) {
				t.Fatalf("remove the key in use without force: %v", err)
			}
			if err := rg.RemoveKey(ctx, lg, first, false); err != nil {
				t.Fatal(err)
			}
			refuses(t, open, "alpha")
			// The last key, even with force.
			if err := rg.RemoveKey(ctx, lg, gamma, true); !errors.Is(err, ErrKeyRefused) {
				t.Fatalf("remove the last key: %v", err)
			}
			opens(t, open, "gamma")
			if _, err := rg.ResolveKey(ctx, "ffffffffff"); !errors.Is(err, ErrNoSuchKey) {
				t.Fatalf("resolve an unknown key: %v", err)
			}
			if id, err := rg.ResolveKey(ctx, gamma[:8]); err != nil || id != gamma {
				t.Fatalf("resolve %s: %s, %v", gamma[:8], id, err)
			}
			lg.Unlock()
			checkHealthy(t, rg)
		})
	}
}

// failingKeyRemove is a backend whose removal of key files fails, as if
// the process died right after the new key was stored.
type failingKeyRemove struct{ backend.Backend }

func (f failingKeyRemove) Remove(ctx context.Context, h backend.Handle) error {
	if h.Type == backend.Key {
		return errors.New("simulated crash")
	}
	return f.Backend.Remove(ctx, h)
}

// A passwd interrupted between adding the new key and removing the old one
// leaves both passwords working.
func TestPasswdInterruptedLeavesBothKeys(t *testing.T) {
	ctx := context.Background()
	r, dir := newRepo(t, InitOptions{})
	r.Close()
	open := func() backend.Backend { return local.New(dir) }
	cr, err := Open(ctx, failingKeyRemove{open()}, []byte("correct horse"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cr.Close()
	l := exclusive(t, cr)
	if _, err := cr.ChangePassword(ctx, l, []byte("new horse"), fastKDF()); err == nil {
		t.Fatal("passwd reports success though the old key could not be removed")
	}
	l.Unlock()
	opens(t, open, "correct horse")
	opens(t, open, "new horse")
	keys, err := opens(t, open, "new horse").Keys(ctx)
	if err != nil || len(keys) != 2 {
		t.Fatalf("keys after an interrupted passwd: %+v, %v", keys, err)
	}
}

// A key file that does not open with its password once stored is removed
// again and add fails; key changes need the exclusive lock; a repository
// without encryption has no keys.
func TestKeyChangesAreGuarded(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepo(t, InitOptions{})
	defer r.Close()
	shared, err := r.Lock(ctx, false, "test", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.AddKey(ctx, shared, []byte("x"), fastKDF()); !errors.Is(err, ErrNeedExclusiveLock) {
		t.Fatalf("add key under a shared lock: %v", err)
	}
	if _, err := r.AddKey(ctx, nil, []byte("x"), fastKDF()); !errors.Is(err, ErrNeedExclusiveLock) {
		t.Fatalf("add key without a lock: %v", err)
	}
	shared.Unlock()

	// A backend that damages key files on their way to storage.
	dr, err := Open(ctx, damagingKeySave{r.be}, []byte("correct horse"), nil)
	if err != nil {
		t.Fatal(err)
	}
	l := exclusive(t, dr)
	if _, err := dr.AddKey(ctx, l, []byte("other"), fastKDF()); err == nil {
		t.Fatal("a key that does not open was accepted")
	}
	l.Unlock()
	if keys, err := r.Keys(ctx); err != nil || len(keys) != 1 {
		t.Fatalf("a damaged new key was left behind: %+v, %v", keys, err)
	}

	plain, _ := newRepo(t, InitOptions{NoEncryption: true})
	defer plain.Close()
	if _, err := plain.Keys(ctx); !errors.Is(err, ErrNotEncrypted) {
		t.Fatalf("keys of a plain repository: %v", err)
	}
	pl := exclusive(t, plain)
	if _, err := plain.AddKey(ctx, pl, []byte("x"), fastKDF()); !errors.Is(err, ErrNotEncrypted) {
		t.Fatalf("add a key to a plain repository: %v", err)
	}
}

// damagingKeySave flips a byte of the sealed master key in every key file
// it stores.
type damagingKeySave struct{ backend.Backend }

func (d damagingKeySave) Save(ctx context.Context, h backend.Handle, data []byte) error {
	if h.Type == backend.Key {
		data = append([]byte(nil), data...)
		i := len(data) - 100 // inside the sealed key's base64, before the metadata
		data[i] ^= 0x01
	}
	return d.Backend.Save(ctx, h, data)
}
