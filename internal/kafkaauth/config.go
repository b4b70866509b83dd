package kafkaauth

import (
	"fmt"
	"strings"
)

// SASL mechanisms accepted in SASLConfig.Mechanism.
const (
	// MechanismPlain is SASL/PLAIN: the password as is, for use over TLS.
	MechanismPlain = "PLAIN"
	// MechanismSCRAMSHA256 is SASL/SCRAM with SHA-256 (RFC 7677).
	MechanismSCRAMSHA256 = "SCRAM-SHA-256"
	// MechanismSCRAMSHA512 is SASL/SCRAM with SHA-512.
	MechanismSCRAMSHA512 = "SCRAM-SHA-512"
)

// Mechanisms returns the SASL mechanisms accepted in SASLConfig.Mechanism
// (besides "", none); the config schema lists the same.
func Mechanisms() []string {
	return []string{MechanismPlain, MechanismSCRAMSHA256, MechanismSCRAMSHA512}
}

// TLSConfig enables TLS towards the brokers. File names are read once, by
// Opts. An empty TLSConfig verifies the brokers against the system roots.
type TLSConfig struct {
	// CA is a PEM file of the certificate authorities that sign the
	// brokers' certificates; empty means the system roots.
	CA string `yaml:"ca"`
	// Cert is a PEM client certificate for mutual TLS; needs Key.
	Cert string `yaml:"cert"`
	// Key is the PEM private key of Cert; needs Cert.
	Key string `yaml:"key"`
	// InsecureSkipVerify turns off verification of the brokers'
	// certificates. For tests only: it makes TLS worthless against an
	// attacker on the path.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// SASLConfig authenticates the client. The zero value (no mechanism)
// means no authentication.
type SASLConfig struct {
	// Mechanism is "" (none), PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512,
	// matched without regard to case. PLAIN sends the password as is: use
	// it only with TLS.
	Mechanism string `yaml:"mechanism"`
	// Username is the SASL user; needed with a mechanism.
	Username string `yaml:"username"`
	// PasswordFile is a file holding the password (a trailing newline is
	// ignored). It is read by Opts and again on every new broker
	// connection, so a rotated password is picked up without a restart.
	PasswordFile string `yaml:"password_file"`
}

// Validate returns every problem with the tls (nil: plaintext) and sasl
// sections, each as "key: message" with keys relative to the section that
// holds them ("tls.key", "sasl.mechanism"). It reads no file.
func Validate(t *TLSConfig, s SASLConfig) []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if t != nil {
		if t.Cert != "" && t.Key == "" {
			bad("tls.key", "needed with tls.cert")
		}
		if t.Key != "" && t.Cert == "" {
			bad("tls.cert", "needed with tls.key")
		}
	}
	switch {
	case s.Mechanism == "":
		if s.Username != "" || s.PasswordFile != "" {
			bad("sasl.mechanism", "needed with sasl.username or sasl.password_file (want one of %s)", strings.Join(Mechanisms(), ", "))
		}
	case Mechanism(s.Mechanism) == "":
		bad("sasl.mechanism", "want one of %s, got %q", strings.Join(Mechanisms(), ", "), s.Mechanism)
	default:
		if s.Username == "" {
			bad("sasl.username", "needed with a mechanism")
		}
		if s.PasswordFile == "" {
			bad("sasl.password_file", "needed with a mechanism")
		}
	}
	return errs
}

// Mechanism returns the canonical name of a SASL mechanism, or "" when m
// is not one Kelvin supports.
func Mechanism(m string) string {
	for _, known := range Mechanisms() {
		if strings.EqualFold(m, known) {
			return known
		}
	}
	return ""
}

// Files returns the files the sections name, by key relative to the
// section ("tls.ca", "sasl.password_file"), for a config check that they
// exist; empty names are left out.
func Files(t *TLSConfig, s SASLConfig) [][2]string {
	var out [][2]string
	add := func(key, file string) {
		if file != "" {
			out = append(out, [2]string{key, file})
		}
	}
	if t != nil {
		add("tls.ca", t.CA)
		add("tls.cert", t.Cert)
		add("tls.key", t.Key)
	}
	add("sasl.password_file", s.PasswordFile)
	return out
}
