package mqtt

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kelvin-gw/kelvin/internal/testenv"
)

func TestTLS(t *testing.T) {
	p := testenv.WritePKI(t, readableDir(t))
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
