package repository

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"sort"
	"strings"
	"time"

	"github.com/snapdata/snapdata/internal/backend"
	"github.com/snapdata/snapdata/internal/crypto"
)

// Keys: an encrypted repository has one random master key; each key file
// (keys/<id>, id = SHA-256 of the file) holds it sealed with a key derived
// from one password (Argon2id), so a repository can have several passwords
// and changing one rewrites only its key file, never data. Key changes are
// made under an exclusive lock; a new key file is read back and opened with
// its password before anything is removed, and the last key file that
// parses is never removed.

// ErrNotEncrypted is wrapped by key operations on a repository made with
// --no-encryption: it has no keys.
var ErrNotEncrypted = errors.New("the repository is not encrypted (made with --no-encryption): it has no keys or passwords")

// ErrKeyRefused is wrapped when a key change is refused by a safety rule:
// removing the last key, or the key in use without force.
var ErrKeyRefused = errors.New("key change refused")

// ErrNoSuchKey is wrapped when a key id or prefix matches no key file, or
// several.
var ErrNoSuchKey = errors.New("no such key")

// ErrNeedExclusiveLock is returned when a repository change that needs the
// exclusive lock is given none, or a shared one.
var ErrNeedExclusiveLock = errors.New("this change needs the repository's exclusive lock")

// KeyInfo describes one key file. It holds no secret.
type KeyInfo struct {
	ID       string    `json:"id"`
	Current  bool      `json:"current"` // the key the password of this process opened
	Created  time.Time `json:"created,omitzero"`
	Host     string    `json:"host,omitempty"`
	Username string    `json:"username,omitempty"`
	// Err says why the key file cannot be read (it cannot open the
	// repository with any password).
	Err string `json:"error,omitempty"`
}

// keyFileName is the name of a key file: the SHA-256 of its bytes.
func keyFileName(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// newKeyFile seals master with a key derived from password and returns the
// key file's bytes, stamped with the time, host and user.
func newKeyFile(master, password []byte, kdf crypto.KDFParams) ([]byte, error) {
	derived, err := kdf.Derive(password)
	if err != nil {
		return nil, fmt.Errorf("derive key: %w", err)
	}
	wrap, err := crypto.NewKey(derived)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	kf := keyFile{KDF: kdf, Sealed: wrap.Seal(nil, master), Created: time.Now().UTC().Truncate(time.Second), Host: host, Username: currentUser()}
	data, err := json.Marshal(kf)
	if err != nil {
		return nil, fmt.Errorf("encode key file: %w", err)
	}
	return data, nil
}

// currentUser is the login name recorded in a new key file ("" when
// unknown).
func currentUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return os.Getenv("USER")
}

// openKeyFile returns the master key secret that data holds, opened with
// password.
func openKeyFile(data, password []byte) ([]byte, error) {
	var kf keyFile
	if err := json.Unmarshal(data, &kf); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDamagedKey, err)
	}
	derived, err := kf.KDF.Derive(password)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDamagedKey, err)
	}
	wrap, err := crypto.NewKey(derived)
	if err != nil {
		return nil, err
	}
	master, err := wrap.Open(nil, kf.Sealed)
	if err != nil {
		return nil, ErrWrongPassword
	}
	return master, nil
}

// KeyID returns the id of the key file the password opened ("" for a
// repository without encryption).
func (r *Repository) KeyID() string { return r.keyName }

// keyNames lists the key files' names, sorted.
func (r *Repository) keyNames(ctx context.Context) ([]string, error) {
	var names []string
	if err := r.be.List(ctx, backend.Key, func(fi backend.FileInfo) error {
		names = append(names, fi.Name)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	sort.Strings(names)
	return names, nil
}

// Keys describes every key file, oldest first (unknown creation times
// last, then by id).
func (r *Repository) Keys(ctx context.Context) ([]KeyInfo, error) {
	if !r.Encrypted() {
		return nil, ErrNotEncrypted
	}
	names, err := r.keyNames(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]KeyInfo, 0, len(names))
	for _, n := range names {
		ki := KeyInfo{ID: n, Current: n == r.keyName}
		data, err := r.be.Load(ctx, backend.Handle{Type: backend.Key, Name: n})
		if backend.IsNotFound(err) {
			continue // removed since the listing
		}
		if err != nil {
			return nil, fmt.Errorf("load key %s: %w", shortID(n), err)
		}
		var kf keyFile
		if err := json.Unmarshal(data, &kf); err != nil {
			ki.Err = "cannot be parsed: " + err.Error()
		} else {
			ki.Created, ki.Host, ki.Username = kf.Created, kf.Host, kf.Username
		}
		out = append(out, ki)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].Created, out[j].Created
		if a.IsZero() != b.IsZero() {
			return !a.IsZero()
		}
		return a.Before(b)
	})
	return out, nil
}

// needExclusive checks that lock is an exclusive lock of r.
func (r *Repository) needExclusive(lock *Lock) error {
	if lock == nil || lock.r != r || !lock.info.Exclusive {
		return ErrNeedExclusiveLock
	}
	return nil
}

// AddKey stores a new key file for password (kdf nil: crypto.DefaultKDF)
// and returns its id. The key file is read back and opened with password
// before AddKey returns; one that does not open is removed again. The
// caller holds the exclusive lock.
func (r *Repository) AddKey(ctx context.Context, lock *Lock, password []byte, kdf *crypto.KDFParams) (string, error) {
	if !r.Encrypted() {
		return "", ErrNotEncrypted
	}
	if err := r.needExclusive(lock); err != nil {
		return "", err
	}
	if len(password) == 0 {
		return "", errors.New("add key: an empty password is not allowed")
	}
	k := crypto.DefaultKDF()
	if kdf != nil {
		k = *kdf
	}
	data, err := newKeyFile(r.master, password, k)
	if err != nil {
		return "", fmt.Errorf("add key: %w", err)
	}
	name := keyFileName(data)
	h := backend.Handle{Type: backend.Key, Name: name}
	if err := r.be.Save(ctx, h, data); err != nil {
		return "", fmt.Errorf("add key: save keys/%s: %w", shortID(name), err)
	}
	if err := r.verifyKey(ctx, name, password); err != nil {
		if rerr := r.be.Remove(context.WithoutCancel(ctx), h); rerr != nil {
			err = fmt.Errorf("%w (and removing it again failed: %w)", err, rerr)
		}
		return "", fmt.Errorf("add key: %w", err)
	}
	return name, nil
}

// verifyKey reads key file name back from storage and checks that password
// opens it to this repository's master key.
func (r *Repository) verifyKey(ctx context.Context, name string, password []byte) error {
	data, err := r.be.Load(ctx, backend.Handle{Type: backend.Key, Name: name})
	if err != nil {
		return fmt.Errorf("read keys/%s back: %w", shortID(name), err)
	}
	if keyFileName(data) != name {
		return fmt.Errorf("keys/%s read back does not match what was written", shortID(name))
	}
	master, err := openKeyFile(data, password)
	if err != nil {
		return fmt.Errorf("keys/%s read back does not open with its password: %w", shortID(name), err)
	}
	if subtle.ConstantTimeCompare(master, r.master) != 1 {
		return fmt.Errorf("keys/%s read back holds another master key", shortID(name))
	}
	return nil
}

// ResolveKey maps a key id or unique id prefix to the key file's name.
func (r *Repository) ResolveKey(ctx context.Context, ref string) (string, error) {
	if !r.Encrypted() {
		return "", ErrNotEncrypted
	}
	names, err := r.keyNames(ctx)
	if err != nil {
		return "", err
	}
	var match []string
	if ref != "" {
		for _, n := range names {
			if strings.HasPrefix(n, strings.ToLower(ref)) {
				match = append(match, n)
			}
		}
	}
	switch len(match) {
	case 0:
		return "", fmt.Errorf("%w: no key has id %q ('snapdata key list' shows them)", ErrNoSuchKey, ref)
	case 1:
		return match[0], nil
	}
	return "", fmt.Errorf("%w: key id prefix %q matches %d keys; give more of it", ErrNoSuchKey, ref, len(match))
}

// CheckRemoveKey says whether key file id (a full name, see ResolveKey)
// may be removed: never the last key file that parses (ErrKeyRefused),
// nor the key in use (KeyID) unless force.
func (r *Repository) CheckRemoveKey(ctx context.Context, id string, force bool) error {
	keys, err := r.Keys(ctx)
	if err != nil {
		return err
	}
	found, others := false, 0
	for _, k := range keys {
		switch {
		case k.ID == id:
			found = true
		case k.Err == "":
			others++
		}
	}
	if !found {
		return fmt.Errorf("%w: no key has id %q", ErrNoSuchKey, id)
	}
	if others == 0 {
		return fmt.Errorf("%w: keys/%s is the repository's last key: without it no password opens the repository; add another first ('snapdata key add')", ErrKeyRefused, shortID(id))
	}
	if id == r.keyName && !force {
		return fmt.Errorf("%w: keys/%s is the key this password opened; to change this password run 'snapdata key passwd', or remove it with --force (another password must then open the repository)", ErrKeyRefused, shortID(id))
	}
	return nil
}

// RemoveKey removes key file id after CheckRemoveKey allowed it. The
// caller holds the exclusive lock.
func (r *Repository) RemoveKey(ctx context.Context, lock *Lock, id string, force bool) error {
	if !r.Encrypted() {
		return ErrNotEncrypted
	}
	if err := r.needExclusive(lock); err != nil {
		return err
	}
	if err := r.CheckRemoveKey(ctx, id, force); err != nil {
		return err
	}
	if err := r.be.Remove(ctx, backend.Handle{Type: backend.Key, Name: id}); err != nil {
		return fmt.Errorf("remove keys/%s: %w", shortID(id), err)
	}
	if id == r.keyName {
		r.keyName = ""
	}
	return nil
}

// ChangePassword replaces the key in use by a key for newPassword: it adds
// the new key (verified as AddKey does), then removes the old one. A crash
// or failure between the two leaves both keys working, never none; the
// error then says so. It returns the new key's id. The caller holds the
// exclusive lock.
func (r *Repository) ChangePassword(ctx context.Context, lock *Lock, newPassword []byte, kdf *crypto.KDFParams) (string, error) {
	old := r.keyName
	if old == "" {
		return "", fmt.Errorf("%w: the key this process opened the repository with was removed; open it again", ErrKeyRefused)
	}
	name, err := r.AddKey(ctx, lock, newPassword, kdf)
	if err != nil {
		return "", err
	}
	r.keyName = name
	if err := r.be.Remove(ctx, backend.Handle{Type: backend.Key, Name: old}); err != nil {
		return name, fmt.Errorf("the new key keys/%s is stored and works, but removing the old key keys/%s failed, so the old password still works too: %w; run 'snapdata key remove %s'",
			shortID(name), shortID(old), err, shortID(old))
	}
	return name, nil
}
