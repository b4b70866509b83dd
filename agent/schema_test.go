package agent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/kelvin-gw/kelvin/publish/kafka"
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

// TestSchemaEnumsAreWhatCheckAccepts: every value the schema offers for a
// key is accepted by the validator, and a value it does not offer is
// refused on that key, so the schema cannot drift from kelvin check. A new
// enum needs a config here to be tried in.
func TestSchemaEnumsAreWhatCheckAccepts(t *testing.T) {
	configs := map[string]string{
		"log.level":             "log: {level: %q}",
		"log.format":            "log: {format: %q}",
		"agent.clock":           "agent: {clock: %q}",
		"buffer.full":           "buffer: {full: %q}",
		"mqtt.qos":              "mqtt: {url: tcp://127.0.0.1:1883, qos: %v}",
		"mqtt.format":           "mqtt: {url: tcp://127.0.0.1:1883, format: %q}",
		"kafka.format":          "kafka: {brokers: [127.0.0.1:9092], format: %q}",
		"kafka.compression":     "kafka: {brokers: [127.0.0.1:9092], compression: %q}",
		"kafka.sasl.mechanism":  "kafka: {brokers: [127.0.0.1:9092], sasl: {mechanism: %q}}",
		"sensors.repeatability": "sensors: [{id: a, type: sht3x, address: 0x44, repeatability: %q}]",
		"sensors.type":          "", // the sensor types' own tests

		"fleet.kafka.sasl.mechanism": "fleet: {kafka: {brokers: [127.0.0.1:9092], sasl: {mechanism: %q}}}",
	}
	for path, values := range schemaEnums {
		tmpl, ok := configs[path]
		if !ok {
			t.Errorf("%s: an enum of the schema with no config here to try its values in", path)
			continue
		}
		if tmpl == "" || (strings.HasPrefix(path, "kafka.") || strings.HasPrefix(path, "fleet.kafka.")) && !kafka.Available {
			continue
		}
		refusedOn := func(v any) bool {
			_, err := Parse("enum.yaml", []byte(fmt.Sprintf(tmpl, v)), func(string) (string, bool) { return "", false })
			return err != nil && strings.Contains(regexp.MustCompile(`\[\d+\]`).ReplaceAllString(err.Error(), ""), " "+path+": ")
		}
		for _, v := range values {
			if refusedOn(v) {
				t.Errorf("%s: the schema offers %v, kelvin check refuses it", path, v)
			}
		}
		bogus := any("bogus")
		if path == "mqtt.qos" {
			bogus = 7
		}
		if !refusedOn(bogus) {
			t.Errorf("%s: kelvin check accepts %v, which the schema does not offer", path, bogus)
		}
	}
}
