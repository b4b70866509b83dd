//go:build !nokafka

package kafkaauth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPasswordFile checks a trailing newline is not part of the password.
func TestPasswordFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(content string) string {
		p := filepath.Join(dir, "pass")
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for content, want := range map[string]string{"s3cret\n": "s3cret", "s3cret\r\n": "s3cret", " pass word ": " pass word "} {
		got, err := readPassword(write(content))
		if err != nil || got != want {
			t.Errorf("readPassword(%q) = %q, %v; want %q", content, got, err, want)
		}
	}
	_, err := readPassword(write(""))
	if !errors.Is(err, ErrEmptyPassword) || !Refused(err) {
		t.Errorf("empty file: %v", err)
	}
	if _, err := readPassword(filepath.Join(dir, "none")); !errors.Is(err, os.ErrNotExist) || !Refused(err) {
		t.Errorf("missing file: %v", err)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		tls  *TLSConfig
		sasl SASLConfig
		want []string
	}{
		{"none", nil, SASLConfig{}, nil},
		{"full", &TLSConfig{CA: "ca", Cert: "c", Key: "k"}, SASLConfig{Mechanism: "scram-sha-512", Username: "u", PasswordFile: "p"}, nil},
		{"tls cert without key", &TLSConfig{Cert: "c.pem"}, SASLConfig{}, []string{"tls.key: needed with tls.cert"}},
		{"tls key without cert", &TLSConfig{Key: "c.key"}, SASLConfig{}, []string{"tls.cert: needed with tls.key"}},
		{"sasl mechanism", nil, SASLConfig{Mechanism: "GSSAPI", Username: "u", PasswordFile: "p"},
			[]string{`sasl.mechanism: want one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, got "GSSAPI"`}},
		{"sasl without credentials", nil, SASLConfig{Mechanism: "PLAIN"},
			[]string{"sasl.username: needed with a mechanism", "sasl.password_file: needed with a mechanism"}},
		{"sasl credentials without mechanism", nil, SASLConfig{Username: "u", PasswordFile: "p"},
			[]string{"sasl.mechanism: needed with sasl.username or sasl.password_file (want one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)"}},
	} {
		var got []string
		for _, err := range Validate(tc.tls, tc.sasl) {
			got = append(got, err.Error())
		}
		if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}
