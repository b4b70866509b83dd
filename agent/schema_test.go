package agent

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestSchemaUpToDate fails when configs/kelvin.schema.json no longer
// matches the Go config types. Regenerate it with
// KELVIN_UPDATE_SCHEMA=1 go test -run TestSchemaUpToDate ./agent
func TestSchemaUpToDate(t *testing.T) {
	path := "../" + SchemaFile
	want := Schema()
	if os.Getenv("KELVIN_UPDATE_SCHEMA") == "1" {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is out of date with the config types: run KELVIN_UPDATE_SCHEMA=1 go test -run TestSchemaUpToDate ./agent", SchemaFile)
	}
}

// TestSchemaCoversExample: every key of the example config is in the
// schema, and the example names the schema on its first line for the YAML
// language server.
func TestSchemaCoversExample(t *testing.T) {
	var s any
	if err := json.Unmarshal(Schema(), &s); err != nil {
		t.Fatal(err)
	}
	props := map[string]bool{}
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if p, ok := v["properties"].(map[string]any); ok {
				for k := range p {
					props[k] = true
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(s)
	example, err := os.ReadFile("../configs/kelvin.yaml")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(example), "\n")
	if lines[0] != "# yaml-language-server: $schema=kelvin.schema.json" {
		t.Errorf("configs/kelvin.yaml line 1 = %q, want the yaml-language-server schema reference", lines[0])
	}
	key := regexp.MustCompile(`^\s*(?:- )?([a-z_]+):`)
	for i, l := range lines {
		if m := key.FindStringSubmatch(l); m != nil && !props[m[1]] {
			t.Errorf("configs/kelvin.yaml:%d: key %q is not in the schema", i+1, m[1])
		}
	}
}
