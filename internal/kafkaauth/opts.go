//go:build !nokafka

package kafkaauth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Errors of Opts and of SASLHangup; match them with errors.Is.
var (
	// ErrEmptyPassword is a password file that holds no password.
	ErrEmptyPassword = errors.New("empty password")
	// ErrSASLHangup is a broker that hung up during SASL authentication,
	// which is how some brokers (and kfake) refuse credentials.
	ErrSASLHangup = errors.New("the broker closed the connection during SASL authentication (wrong username or password?)")
)

// Opts returns the franz-go options for the tls (nil: plaintext) and sasl
// sections, which Validate found nothing wrong with. It reads the TLS files
// and the password file now, so that a missing or unreadable one fails
// here with the file named; the password is read again for every new
// broker connection. SASL without TLS is logged as a warning on log.
func Opts(t *TLSConfig, s SASLConfig, log *slog.Logger) ([]kgo.Opt, error) {
	var opts []kgo.Opt
	if t != nil {
		tc, err := tlsConfig(t)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if s.Mechanism != "" {
		m, err := saslMechanism(s)
		if err != nil {
			return nil, err
		}
		if t == nil && log != nil {
			log.Warn("sasl without tls: the credentials cross the network readable", "mechanism", m.Name())
		}
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

func tlsConfig(c *TLSConfig) (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: c.InsecureSkipVerify, //nolint:gosec // opt-in, documented as tests only
	}
	if c.CA != "" {
		pem, err := os.ReadFile(c.CA)
		if err != nil {
			return nil, fmt.Errorf("kafka: read tls.ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka: tls.ca %s: no PEM certificate found", c.CA)
		}
		tc.RootCAs = pool
	}
	if c.Cert != "" {
		cert, err := tls.LoadX509KeyPair(c.Cert, c.Key)
		if err != nil {
			return nil, fmt.Errorf("kafka: load tls.cert %s and tls.key %s: %w", c.Cert, c.Key, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// saslMechanism reads the password file once, to fail early, and returns a
// mechanism that reads it again for every new connection.
func saslMechanism(c SASLConfig) (sasl.Mechanism, error) {
	if _, err := readPassword(c.PasswordFile); err != nil {
		return nil, err
	}
	user, file := c.Username, c.PasswordFile
	switch Mechanism(c.Mechanism) {
	case MechanismPlain:
		return plain.Plain(func(context.Context) (plain.Auth, error) {
			pass, err := readPassword(file)
			return plain.Auth{User: user, Pass: pass}, err
		}), nil
	case MechanismSCRAMSHA256, MechanismSCRAMSHA512:
		auth := func(context.Context) (scram.Auth, error) {
			pass, err := readPassword(file)
			return scram.Auth{User: user, Pass: pass}, err
		}
		if Mechanism(c.Mechanism) == MechanismSCRAMSHA256 {
			return scram.Sha256(auth), nil
		}
		return scram.Sha512(auth), nil
	}
	return nil, fmt.Errorf("kafka: unknown sasl.mechanism %q", c.Mechanism)
}

func readPassword(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("kafka: read sasl.password_file: %w", err)
	}
	pass := strings.TrimRight(string(b), "\r\n")
	if pass == "" {
		return "", fmt.Errorf("kafka: sasl.password_file %s: %w", file, ErrEmptyPassword)
	}
	return pass, nil
}

// SASLHangup returns err wrapped with ErrSASLHangup when it is the failed
// read of a SASL authentication (request key), for a kgo.HookBrokerRead;
// otherwise nil.
func SASLHangup(key int16, err error) error {
	if err == nil || key != int16(kmsg.SASLAuthenticate) {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrSASLHangup, err)
}

// Refused reports whether err is one that retrying will not cure by
// itself: the cluster refused the credentials, the topic or the operation,
// or the broker's certificate does not verify, or the password file is
// gone. Network errors, timeouts and leadership changes are not.
func Refused(err error) bool {
	if ke, ok := errors.AsType[*kerr.Error](err); ok {
		// A missing topic is "retriable" to Kafka (it may be being
		// created) but here it means the config or the cluster is wrong.
		return !ke.Retriable || ke == kerr.UnknownTopicOrPartition || ke == kerr.UnknownTopicID
	}
	if _, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.HostnameError](err); ok {
		return true
	}
	if _, ok := errors.AsType[*kgo.ErrFirstReadEOF](err); ok {
		// The broker hangs up on the first request: SASL or TLS missing
		// on our side.
		return true
	}
	if errors.Is(err, ErrSASLHangup) {
		return true
	}
	if _, ok := errors.AsType[*fs.PathError](err); ok {
		return true // the password file is gone
	}
	return errors.Is(err, ErrEmptyPassword)
}
