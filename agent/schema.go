package agent

import (
	"encoding"
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/kelvin-gw/kelvin/buffer"
	"github.com/kelvin-gw/kelvin/filter"
	"github.com/kelvin-gw/kelvin/publish/kafka"
	"github.com/kelvin-gw/kelvin/reading"
	"github.com/kelvin-gw/kelvin/sensors/sht"
)

// SchemaFile is where the JSON Schema of kelvin.yaml is published, next to
// the example config that references it.
const SchemaFile = "configs/kelvin.schema.json"

// Schema returns the JSON Schema (draft 2020-12) of kelvin.yaml, generated
// from the Go config types the way the decoder reads them, so editors with
// the YAML language server check and complete the file as it is typed.
// kelvin check remains the authority: it also knows which keys each sensor
// type takes, files that must exist, and ranges.
func Schema() []byte {
	root := schemaOf(reflect.TypeOf(Config{}), "")
	root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	root["$id"] = "https://github.com/kelvin-gw/kelvin/configs/kelvin.schema.json"
	root["title"] = "Kelvin configuration (kelvin.yaml)"
	root["description"] = "See configs/kelvin.yaml for every key, commented; `kelvin check -config FILE` validates a file."
	b, _ := json.MarshalIndent(root, "", "  ")
	return append(b, '\n')
}

// schemaEnums are the keys with a fixed set of values, by path, each taken
// from the package that validates it, so that the schema cannot drift from
// what kelvin check accepts.
var schemaEnums = map[string][]any{
	"sensors.type":          nil, // filled from the sensor types
	"log.level":             anys(logLevels()),
	"log.format":            anys(logFormats()),
	"agent.clock":           anys(clockModes()),
	"buffer.full":           anys(buffer.FullModes()),
	"mqtt.qos":              {0, 1, 2},
	"mqtt.format":           anys(reading.Formats),
	"kafka.format":          anys(reading.Formats),
	"kafka.compression":     anys(kafka.Compressions()),
	"kafka.sasl.mechanism":  append([]any{""}, anys(kafka.Mechanisms())...),
	"sensors.repeatability": anys(sht.Repeatabilities()),

	// The fleet's Kafka source shares the output's SASL settings.
	"fleet.kafka.sasl.mechanism": append([]any{""}, anys(kafka.Mechanisms())...),
}

// anys converts a list of strings (or string-based names) for the schema.
func anys[S ~string](l []S) []any {
	out := make([]any, len(l))
	for i, s := range l {
		out[i] = string(s)
	}
	return out
}

const durationPattern = `^\$\{[A-Za-z_][A-Za-z0-9_]*\}$|^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h|d|w))+$`

var textType = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()

func schemaOf(t reflect.Type, path string) map[string]any {
	if e, ok := schemaEnums[path]; ok {
		if path == "sensors.type" {
			for name := range sensorTypes {
				e = append(e, name)
			}
			slices.SortFunc(e, func(a, b any) int { return strings.Compare(a.(string), b.(string)) })
		}
		return map[string]any{"enum": e}
	}
	switch path {
	case "sensors.address", "sensors.bus", "sensors.bridge":
		// 0x76 and 1 are numbers to YAML; the decoder reads them as text.
		return map[string]any{"type": []string{"string", "integer"}}
	}
	switch {
	case t == durationType:
		return map[string]any{"type": "string", "pattern": durationPattern, "description": "a duration: 500ms, 5s, 1m30s, 2h, 7d, 1w"}
	case t == reflect.TypeOf(Filters{}):
		return filtersSchema()
	case reflect.PointerTo(t).Implements(textType):
		return map[string]any{"type": []string{"string", "integer"}}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return schemaOf(t.Elem(), path)
	case reflect.Struct:
		props := map[string]any{}
		for i := range t.NumField() {
			f := t.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if opts == "inline" {
				maps.Copy(props, schemaOf(f.Type, path)["properties"].(map[string]any))
				continue
			}
			if name == "" || name == "-" || !f.IsExported() {
				continue
			}
			props[name] = schemaOf(f.Type, join(path, name))
		}
		return map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": schemaOf(t.Elem(), path)}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	}
	return map[string]any{}
}

// filtersSchema is a filter chain (a list of one-key maps, in order), or a
// chain per quantity.
func filtersSchema() map[string]any {
	var one []any
	for _, k := range filter.Kinds {
		one = append(one, map[string]any{
			"type": "object", "required": []string{k}, "additionalProperties": false,
			"properties": map[string]any{k: map[string]any{}},
		})
	}
	chain := map[string]any{"type": "array", "items": map[string]any{"oneOf": one}}
	return map[string]any{"oneOf": []any{
		chain,
		map[string]any{"type": "object", "additionalProperties": chain, "description": "a chain per quantity"},
	}}
}
