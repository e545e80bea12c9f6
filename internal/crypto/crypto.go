// Package crypto holds snapdata's encryption: AES-256-GCM for every stored
// object and Argon2id to turn a password into the key that wraps the
// repository's random master key.
package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"

	"golang.org/x/crypto/argon2"
)

// KeySize is the size of a master key and of a derived key, in bytes.
const KeySize = 32

// ErrAuth is returned when a ciphertext does not authenticate: wrong key or
// damaged bytes.
var ErrAuth = errors.New("ciphertext authentication failed")

// Key seals and opens objects. The zero Key (from Plain) does not encrypt,
// for repositories made with --no-encryption.
type Key struct {
	aead cipher.AEAD
}

// NewKey returns a Key for a 32-byte secret.
func NewKey(secret []byte) (*Key, error) {
	if len(secret) != KeySize {
		return nil, fmt.Errorf("key must be %d bytes, got %d", KeySize, len(secret))
	}
	block, err := aes.NewCipher(secret)
	if err != nil {
		return nil, fmt.Errorf("create cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("create cipher: %w", err)
	}
	return &Key{aead: aead}, nil
}

// Plain returns a Key that stores bytes as they are.
func Plain() *Key { return &Key{} }

// Encrypted reports whether the key encrypts.
func (k *Key) Encrypted() bool { return k.aead != nil }

// Overhead is the number of bytes Seal adds.
func (k *Key) Overhead() int {
	if k.aead == nil {
		return 0
	}
	return k.aead.NonceSize() + k.aead.Overhead()
}

// Seal appends nonce||ciphertext of plain to dst and returns it.
func (k *Key) Seal(dst, plain []byte) []byte {
	if k.aead == nil {
		return append(dst, plain...)
	}
	n := k.aead.NonceSize()
	start := len(dst)
	dst = append(dst, make([]byte, n)...)
	if _, err := rand.Read(dst[start : start+n]); err != nil {
		// crypto/rand never fails on supported platforms (Go 1.24+).
		panic(fmt.Sprintf("read random nonce: %v", err))
	}
	return k.aead.Seal(dst, dst[start:start+n], plain, nil)
}

// Open authenticates and decrypts sealed, appending the plaintext to dst.
func (k *Key) Open(dst, sealed []byte) ([]byte, error) {
	if k.aead == nil {
		return append(dst, sealed...), nil
	}
	n := k.aead.NonceSize()
	if len(sealed) < n+k.aead.Overhead() {
		return nil, fmt.Errorf("%w: object too short (%d bytes)", ErrAuth, len(sealed))
	}
	out, err := k.aead.Open(dst, sealed[:n], sealed[n:], nil)
	if err != nil {
		return nil, ErrAuth
	}
	return out, nil
}

// KDFParams are the Argon2id parameters stored with each key file.
type KDFParams struct {
	Algorithm string `json:"algorithm"`
	Time      uint32 `json:"time"`
	MemoryKiB uint32 `json:"memory_kib"`
	Threads   uint8  `json:"threads"`
	Salt      []byte `json:"salt"`
}

// DefaultKDF returns fresh parameters with a random salt: 64 MiB, 3 passes.
func DefaultKDF() KDFParams {
	salt := RandomBytes(16)
	return KDFParams{Algorithm: "argon2id", Time: 3, MemoryKiB: 64 * 1024, Threads: 2, Salt: salt}
}

// Derive turns a password into a key with Argon2id.
func (p KDFParams) Derive(password []byte) ([]byte, error) {
	if p.Algorithm != "argon2id" {
		return nil, fmt.Errorf("unsupported key derivation %q", p.Algorithm)
	}
	if p.Time == 0 || p.MemoryKiB < 8 || p.Threads == 0 || len(p.Salt) < 8 {
		return nil, fmt.Errorf("invalid argon2id parameters")
	}
	return argon2.IDKey(password, p.Salt, p.Time, p.MemoryKiB, p.Threads, KeySize), nil
}

// RandomBytes returns n bytes from crypto/rand.
func RandomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("read random bytes: %v", err))
	}
	return b
}
