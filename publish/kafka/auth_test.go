//go:build !nokafka

package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/kelvin-gw/kelvin/internal/testenv"
	"github.com/kelvin-gw/kelvin/reading"
)

func TestSASL(t *testing.T) {
	t.Parallel()
	for _, mech := range []string{MechanismPlain, MechanismSCRAMSHA256, MechanismSCRAMSHA512} {
		t.Run(mech, func(t *testing.T) {
			t.Parallel()
			c := startCluster(t, kfake.NumBrokers(1), kfake.EnableSASL(),
				kfake.Superuser(mech, "kelvin", "s3cret pass"),
				kfake.Superuser(MechanismPlain, "reader", "reader"),
				kfake.SeedTopics(1, testTopic))
			passFile := writeFile(t, "password", "wrong\n")
			cfg := testConfig(c.ListenAddrs())
			cfg.SASL = SASLConfig{Mechanism: strings.ToLower(mech), Username: "kelvin", PasswordFile: passFile}
			o := newTestOutput(t, cfg)
			ctx := context.Background()
			batch := readings("air", reading.Temperature, 1, 5)

			// A wrong password: failed, with the broker's message.
			err := o.Publish(ctx, batch)
			if err == nil {
				t.Fatal("publish with a wrong password succeeded")
			}
			t.Logf("wrong password: %v", err)
			st := o.Status()
			if st.State != stateFailed || st.Connected || !strings.Contains(st.LastError, "SASL authentication") {
				t.Errorf("status with a wrong password: %+v", st)
			}
			// It stays failed while the cause stays.
			if err := o.Publish(ctx, batch); err == nil || o.Status().State != stateFailed {
				t.Errorf("second publish with a wrong password: %v, %+v", err, o.Status())
			}

			// The password file is fixed: the next Publish goes through.
			must(t, os.WriteFile(passFile, []byte("s3cret pass\n"), 0o600))
			must(t, o.Publish(ctx, batch))
			if st := o.Status(); st.State != stateConnected || st.Sent != uint64(len(batch)) {
				t.Errorf("status after fixing the password: %+v", st)
			}
			recs := consume(t, c.ListenAddrs(), testTopic, len(batch),
				kgo.SASL(plain.Auth{User: "reader", Pass: "reader"}.AsMechanism()))
			if len(recs) != len(batch) {
				t.Errorf("consumed %d records, want %d", len(recs), len(batch))
			}
		})
	}
}

// TestSASLBrokerMessage has kfake answer a wrong PLAIN password as Apache
// Kafka does, with SASL_AUTHENTICATION_FAILED and a message (kfake itself
// just hangs up): the state is failed and shows the broker's message.
func TestSASLBrokerMessage(t *testing.T) {
	t.Parallel()
	c := startCluster(t, kfake.NumBrokers(1), kfake.EnableSASL(),
		kfake.Superuser(MechanismPlain, "kelvin", "right"), kfake.SeedTopics(1, testTopic))
	const brokerMsg = "Authentication failed: Invalid username or password"
	c.ControlKey(int16(kmsg.SASLAuthenticate), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		auth := req.(*kmsg.SASLAuthenticateRequest).SASLAuthBytes
		if parts := strings.Split(string(auth), "\x00"); len(parts) == 3 && parts[2] == "right" {
			return nil, nil, false // kfake authenticates
		}
		resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		resp.ErrorMessage = kmsg.StringPtr(brokerMsg)
		return resp, nil, true
	})
	cfg := testConfig(c.ListenAddrs())
	cfg.SASL = SASLConfig{Mechanism: MechanismPlain, Username: "kelvin", PasswordFile: writeFile(t, "password", "wrong")}
	o := newTestOutput(t, cfg)
	err := o.Publish(context.Background(), readings("air", reading.Temperature, 1, 5))
	if !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("publish: %v, want SASL_AUTHENTICATION_FAILED", err)
	}
	t.Logf("wrong password: %v", err)
	if st := o.Status(); st.State != stateFailed || !strings.Contains(st.LastError, brokerMsg) {
		t.Errorf("status %+v, want failed with the broker's message", st)
	}
}

func TestTLS(t *testing.T) {
	t.Parallel()
	caPEM, serverCert := testenv.PKI(t)
	caFile := writeFile(t, "ca.pem", string(caPEM))
	c := startCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, testTopic),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{serverCert}, MinVersion: tls.VersionTLS12}))
	ctx := context.Background()
	batch := readings("air", reading.Temperature, 1, 5)

	t.Run("trusted CA", func(t *testing.T) {
		cfg := testConfig(c.ListenAddrs())
		cfg.TLS = &TLSConfig{CA: caFile}
		o := newTestOutput(t, cfg)
		must(t, o.Publish(ctx, batch))
		if st := o.Status(); st.State != stateConnected {
			t.Errorf("status %+v", st)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(caPEM)
		recs := consume(t, c.ListenAddrs(), testTopic, len(batch), kgo.DialTLSConfig(&tls.Config{RootCAs: pool}))
		if len(recs) != len(batch) {
			t.Errorf("consumed %d records, want %d", len(recs), len(batch))
		}
	})
	t.Run("unknown CA", func(t *testing.T) {
		cfg := testConfig(c.ListenAddrs())
		cfg.TLS = &TLSConfig{} // system roots: the test CA is not among them
		o := newTestOutput(t, cfg)
		err := o.Publish(ctx, batch)
		if err == nil {
			t.Fatal("publish to an untrusted broker succeeded")
		}
		t.Logf("untrusted broker: %v", err)
		if st := o.Status(); st.State != stateFailed || !strings.Contains(st.LastError, "certificate") {
			t.Errorf("status %+v", st)
		}
	})
}

// TestTopicAuthorization: a user the cluster's ACLs do not let write the
// topic fails with TOPIC_AUTHORIZATION_FAILED, and recovers once an
// administrator grants the ACL.
func TestTopicAuthorization(t *testing.T) {
	t.Parallel()
	c := startCluster(t, kfake.NumBrokers(1), kfake.EnableSASL(), kfake.EnableACLs(),
		kfake.Superuser(MechanismPlain, "admin", "admin"),
		kfake.User(MechanismPlain, "kelvin", "pw", kfake.ACL{
			Resource: kmsg.ACLResourceTypeCluster, Name: "kafka-cluster", Pattern: kmsg.ACLResourcePatternTypeLiteral,
			Operation: kmsg.ACLOperationIdempotentWrite, Allow: true,
		}),
		kfake.SeedTopics(1, testTopic))
	cfg := testConfig(c.ListenAddrs())
	cfg.SASL = SASLConfig{Mechanism: MechanismPlain, Username: "kelvin", PasswordFile: writeFile(t, "password", "pw")}
	o := newTestOutput(t, cfg)
	ctx := context.Background()
	batch := readings("air", reading.Temperature, 1, 5)

	err := o.Publish(ctx, batch)
	if !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("publish without the ACL: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	t.Logf("without the ACL: %v", err)
	if st := o.Status(); st.State != stateFailed || !strings.Contains(st.LastError, "TOPIC_AUTHORIZATION_FAILED") {
		t.Errorf("status %+v", st)
	}

	admin, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.SASL(plain.Auth{User: "admin", Pass: "admin"}.AsMechanism()))
	must(t, err)
	defer admin.Close()
	req := kmsg.NewPtrCreateACLsRequest()
	for _, op := range []kmsg.ACLOperation{kmsg.ACLOperationWrite, kmsg.ACLOperationDescribe} {
		cr := kmsg.NewCreateACLsRequestCreation()
		cr.ResourceType, cr.ResourceName, cr.ResourcePatternType = kmsg.ACLResourceTypeTopic, testTopic, kmsg.ACLResourcePatternTypeLiteral
		cr.Principal, cr.Host, cr.Operation, cr.PermissionType = "User:kelvin", "*", op, kmsg.ACLPermissionTypeAllow
		req.Creations = append(req.Creations, cr)
	}
	resp, err := req.RequestWith(ctx, admin)
	must(t, err)
	for _, r := range resp.Results {
		must(t, kerr.ErrorForCode(r.ErrorCode))
	}

	must(t, o.Publish(ctx, batch))
	if st := o.Status(); st.State != stateConnected || st.Sent != uint64(len(batch)) {
		t.Errorf("status after the grant: %+v", st)
	}
}
