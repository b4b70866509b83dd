package kafka

import (
	"errors"
	"fmt"
	"strings"
)

// maxTopicLen is Kafka's limit on topic name length.
const maxTopicLen = 249

// Fields a topic template can refer to.
const (
	fieldNone = iota // a literal part
	fieldAgent
	fieldSensor
	fieldQuantity
)

// topicPart is a literal string or a placeholder of a topic template.
type topicPart struct {
	field int // fieldNone for a literal
	text  string
}

// parseTopic splits a topic template into literal parts and placeholders,
// checking that the literal parts use only the characters Kafka allows.
func parseTopic(tmpl string) ([]topicPart, error) {
	if tmpl == "" {
		return nil, errors.New("must not be empty")
	}
	var parts []topicPart
	rest := tmpl
	for rest != "" {
		open := strings.IndexByte(rest, '{')
		if close := strings.IndexByte(rest, '}'); close >= 0 && (open < 0 || close < open) {
			return nil, fmt.Errorf(`"}" without an opening "{" in %q`, tmpl)
		}
		if open < 0 {
			parts = append(parts, topicPart{text: rest})
			break
		}
		if open > 0 {
			parts = append(parts, topicPart{text: rest[:open]})
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return nil, fmt.Errorf(`"{" without a closing "}" in %q`, tmpl)
		}
		name := rest[open : open+end+1]
		var f int
		switch name {
		case "{agent}":
			f = fieldAgent
		case "{sensor}":
			f = fieldSensor
		case "{quantity}":
			f = fieldQuantity
		default:
			return nil, fmt.Errorf("unknown placeholder %s, want {agent}, {sensor} or {quantity}", name)
		}
		parts = append(parts, topicPart{field: f})
		rest = rest[open+end+1:]
	}
	literal := true
	for _, p := range parts {
		if p.field != fieldNone {
			literal = false
			continue
		}
		for i := 0; i < len(p.text); i++ {
			if !topicChar(p.text[i]) {
				return nil, fmt.Errorf("character %q is not allowed in a Kafka topic name (allowed: a-z A-Z 0-9 . _ -)", p.text[i])
			}
		}
	}
	if literal {
		if tmpl == "." || tmpl == ".." {
			return nil, fmt.Errorf("%q is not a valid Kafka topic name", tmpl)
		}
		if len(tmpl) > maxTopicLen {
			return nil, fmt.Errorf("%d characters is longer than Kafka's limit of %d", len(tmpl), maxTopicLen)
		}
	}
	return parts, nil
}

// topicChar reports whether Kafka allows c in a topic name.
func topicChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// sanitizeTopic replaces every character Kafka does not allow in a topic
// name with "_", one per character (not per byte).
func sanitizeTopic(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if !topicChar(s[i]) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if r < 0x80 && topicChar(byte(r)) {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// topicTemplate is a parsed topic template.
type topicTemplate struct {
	parts  []topicPart
	static string // the topic, when the template has no placeholder
	fixed  bool
}

// newTopicTemplate parses tmpl.
func newTopicTemplate(tmpl string) (topicTemplate, error) {
	parts, err := parseTopic(tmpl)
	if err != nil {
		return topicTemplate{}, err
	}
	t := topicTemplate{parts: parts}
	if len(parts) == 1 && parts[0].field == fieldNone {
		t.static, t.fixed = parts[0].text, true
	}
	return t, nil
}

// expand returns the topic of a reading, with the fields sanitised to the
// characters Kafka allows.
func (t topicTemplate) expand(agent, sensor, quantity string) string {
	if t.fixed {
		return t.static
	}
	var b strings.Builder
	for _, p := range t.parts {
		switch p.field {
		case fieldAgent:
			b.WriteString(sanitizeTopic(agent))
		case fieldSensor:
			b.WriteString(sanitizeTopic(sensor))
		case fieldQuantity:
			b.WriteString(sanitizeTopic(quantity))
		default:
			b.WriteString(p.text)
		}
	}
	return b.String()
}
