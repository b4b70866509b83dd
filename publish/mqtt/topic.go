package mqtt

import (
	"errors"
	"fmt"
	"strings"
)

// Placeholder kinds of a topic template part.
const (
	partLiteral = iota
	partAgent
	partSensor
	partQuantity
)

type topicPart struct {
	kind int
	lit  string // for partLiteral
}

// topicTemplate is a parsed topic template.
type topicTemplate struct {
	parts       []topicPart
	hasQuantity bool
}

// parseTopic parses tmpl.
func parseTopic(tmpl string) (topicTemplate, error) {
	var t topicTemplate
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.parts = append(t.parts, topicPart{kind: partLiteral, lit: lit.String()})
			lit.Reset()
		}
	}
	for rest := tmpl; rest != ""; {
		i := strings.IndexAny(rest, "{}+#")
		if i < 0 {
			lit.WriteString(rest)
			break
		}
		lit.WriteString(rest[:i])
		switch rest[i] {
		case '+', '#':
			return t, fmt.Errorf("wildcard %q in a topic to publish to", rest[i])
		case '}':
			return t, errors.New("unmatched }")
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return t, errors.New("unmatched {")
		}
		switch name := rest[i+1 : i+j]; name {
		case "agent":
			flush()
			t.parts = append(t.parts, topicPart{kind: partAgent})
		case "sensor":
			flush()
			t.parts = append(t.parts, topicPart{kind: partSensor})
		case "quantity":
			flush()
			t.parts = append(t.parts, topicPart{kind: partQuantity})
			t.hasQuantity = true
		default:
			return t, fmt.Errorf("unknown placeholder {%s}: want {agent}, {sensor} or {quantity}", name)
		}
		rest = rest[i+j+1:]
	}
	flush()
	if len(t.parts) == 0 {
		return t, errors.New("empty")
	}
	return t, nil
}

// appendTopic appends the topic of a reading of agent's sensor and
// quantity to b. Sensor ids and quantities are [a-z0-9_-] by
// configuration; they are sanitised anyway, as agent is, so that a bad one
// cannot make a wildcard topic that the broker would answer by closing the
// connection.
func (t *topicTemplate) appendTopic(b []byte, agent, sensor, quantity string, multi bool) []byte {
	for _, p := range t.parts {
		switch p.kind {
		case partLiteral:
			b = append(b, p.lit...)
		case partAgent:
			b = appendSanitised(b, agent)
		case partSensor:
			b = appendSanitised(b, sensor)
		case partQuantity:
			b = appendSanitised(b, quantity)
		}
	}
	if multi && !t.hasQuantity {
		b = append(b, '/')
		b = appendSanitised(b, quantity)
	}
	return b
}

// sanitise replaces the characters that cannot appear in one topic level of
// a published topic (+, #, /) with _.
func sanitise(s string) string {
	return string(appendSanitised(nil, s))
}

func appendSanitised(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '+', '#', '/':
			b = append(b, '_')
		default:
			b = append(b, c)
		}
	}
	return b
}

// topicKey identifies a cached topic.
type topicKey struct{ agent, sensor, quantity string }

// maxCachedTopics bounds the topic cache; a handful of sensors fill a few
// entries, a fleet forwarding thousands of gateways' sensors more, so
// reaching it means ids are churning and the cache restarts.
const maxCachedTopics = 1 << 16
