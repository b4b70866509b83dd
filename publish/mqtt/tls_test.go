package mqtt

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
	"strings"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/internal/testenv"
)

// pki is a test CA with a server certificate for 127.0.0.1 and a client
// certificate, written as PEM files.
type pki struct {
	CA, ServerCert, ServerKey, ClientCert, ClientKey string
}

func newPKI(t *testing.T, dir string) pki {
	t.Helper()
	now := time.Now()
	caKey := genKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kelvin test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	p := pki{
		CA:         filepath.Join(dir, "ca.pem"),
		ServerCert: filepath.Join(dir, "server.pem"),
		ServerKey:  filepath.Join(dir, "server-key.pem"),
		ClientCert: filepath.Join(dir, "client.pem"),
		ClientKey:  filepath.Join(dir, "client-key.pem"),
	}
	writePEM(t, p.CA, "CERTIFICATE", caDER)
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage, certFile, keyFile string) {
		key := genKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		}
		if usage == x509.ExtKeyUsageServerAuth {
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		writePEM(t, certFile, "CERTIFICATE", der)
		writePEM(t, keyFile, "PRIVATE KEY", keyDER)
	}
	leaf(2, "127.0.0.1", x509.ExtKeyUsageServerAuth, p.ServerCert, p.ServerKey)
	leaf(3, "kelvin-agent", x509.ExtKeyUsageClientAuth, p.ClientCert, p.ClientKey)
	return p
}

func genKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// writePEM writes a PEM file that mosquitto can read once it dropped its
// privileges: these are test keys.
func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestTLS(t *testing.T) {
	p := newPKI(t, readableDir(t))
	tlsPort := testenv.FreePort(t)
	m := testenv.StartMosquitto(t,
		fmt.Sprintf("listener %d 127.0.0.1", tlsPort),
		"cafile "+p.CA,
		"certfile "+p.ServerCert,
		"keyfile "+p.ServerKey,
		"require_certificate true",
	)
	sub := subscribe(t, m.URL, "kelvin/t1/air", 1)

	t.Run("client certificate", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.URL = fmt.Sprintf("ssl://127.0.0.1:%d", tlsPort)
		cfg.TLS = TLSConfig{CA: p.CA, Cert: p.ClientCert, Key: p.ClientKey}
		c := start(t, cfg, "t1")
		c.waitConnected(t)
		c.publish(t, testReadings("t1", 1))
		got := sub.wait(t, "the reading", func(ms []msg) bool { return len(ms) == 1 })
		if seqOf(t, got[0].Payload) != 1 {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("no client certificate", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.URL = fmt.Sprintf("mqtts://127.0.0.1:%d", tlsPort)
		cfg.TLS = TLSConfig{CA: p.CA}
		c := start(t, cfg, "t2")
		testenv.WaitFor(t, "an error in Status", func() bool { return c.Status().LastError != "" })
		st := c.Status()
		t.Logf("LastError: %s", st.LastError)
		if st.Connected || !strings.Contains(st.LastError, "certificate required") {
			t.Errorf("Status = %+v, want a certificate error", st)
		}
	})
	t.Run("unknown CA", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.URL = fmt.Sprintf("tls://127.0.0.1:%d", tlsPort)
		cfg.TLS = TLSConfig{Cert: p.ClientCert, Key: p.ClientKey} // system roots
		c := start(t, cfg, "t3")
		testenv.WaitFor(t, "an error in Status", func() bool { return c.Status().LastError != "" })
		st := c.Status()
		t.Logf("LastError: %s", st.LastError)
		if st.Connected || !strings.Contains(st.LastError, "certificate signed by unknown authority") {
			t.Errorf("Status = %+v, want an unknown authority error", st)
		}
	})
}
