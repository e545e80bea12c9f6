package testsrv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// writeSelfSignedCert writes server.crt and server.key for 127.0.0.1 into
// dir, owned by cred's user when not nil (a server refuses a key that
// others can read), and returns their paths.
func writeSelfSignedCert(dir string, cred *syscall.Credential) (certPath, keyPath string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("generate TLS key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", fmt.Errorf("create TLS certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", fmt.Errorf("encode TLS key: %w", err)
	}
	certPath = filepath.Join(dir, "server.crt")
	keyPath = filepath.Join(dir, "server.key")
	files := []struct {
		path  string
		block *pem.Block
	}{
		{certPath, &pem.Block{Type: "CERTIFICATE", Bytes: der}},
		{keyPath, &pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}},
	}
	for _, f := range files {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(f.block), 0o600); err != nil {
			return "", "", fmt.Errorf("write %s: %w", f.path, err)
		}
		if cred != nil {
			if err := os.Chown(f.path, int(cred.Uid), int(cred.Gid)); err != nil {
				return "", "", fmt.Errorf("chown %s: %w", f.path, err)
			}
		}
	}
	return certPath, keyPath, nil
}
