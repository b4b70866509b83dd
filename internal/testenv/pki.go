package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI returns a CA certificate (PEM) and a server certificate it signed
// for 127.0.0.1, valid for an hour either side of now, for brokers
// (kfake.TLS, mosquitto) that tests reach over TLS.
func PKI(t testing.TB) (caPEM []byte, server tls.Certificate) {
	t.Helper()
	ca := newTestCA(t)
	return ca.pem, ca.sign(t, 2, x509.ExtKeyUsageServerAuth)
}

// PKIFiles names the PEM files WritePKI wrote: the CA's certificate, a
// server certificate for 127.0.0.1 and a client certificate, each with
// its key (PKCS #8).
type PKIFiles struct {
	CA, ServerCert, ServerKey, ClientCert, ClientKey string
}

// WritePKI writes a test CA, a server and a client certificate it signed
// (valid as PKI's) as PEM files into dir. The files are readable by all,
// so that mosquitto can read them after it dropped its privileges: these
// are test keys.
func WritePKI(t testing.TB, dir string) PKIFiles {
	t.Helper()
	ca := newTestCA(t)
	p := PKIFiles{
		CA:         filepath.Join(dir, "ca.pem"),
		ServerCert: filepath.Join(dir, "server.pem"),
		ServerKey:  filepath.Join(dir, "server-key.pem"),
		ClientCert: filepath.Join(dir, "client.pem"),
		ClientKey:  filepath.Join(dir, "client-key.pem"),
	}
	writeFile(t, p.CA, ca.pem)
	writeKeyPair(t, p.ServerCert, p.ServerKey, ca.sign(t, 2, x509.ExtKeyUsageServerAuth))
	writeKeyPair(t, p.ClientCert, p.ClientKey, ca.sign(t, 3, x509.ExtKeyUsageClientAuth))
	return p
}

// CertPool returns a pool that trusts the CA of p.
func (p PKIFiles) CertPool(t testing.TB) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(p.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("%s: no certificate", p.CA)
	}
	return pool
}

// testCA is a self-signed CA that signs the tests' certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
	now  time.Time
}

func newTestCA(t testing.TB) testCA {
	t.Helper()
	key := genKey(t)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kelvin test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), now: now}
}

// sign returns a certificate the CA signed for usage; a server
// certificate is for 127.0.0.1.
func (ca testCA) sign(t testing.TB, serial int64, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key := genKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "kelvin test"},
		NotBefore:    ca.now.Add(-time.Hour),
		NotAfter:     ca.now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	if usage == x509.ExtKeyUsageServerAuth {
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func genKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// writeKeyPair writes c's leaf certificate and its key as PEM files.
func writeKeyPair(t testing.TB, certFile, keyFile string, c tls.Certificate) {
	t.Helper()
	keyDER, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}))
	writeFile(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
