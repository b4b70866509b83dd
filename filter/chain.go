package filter

import (
	"errors"
	"fmt"
	"strings"
)

// Chain is a sensor quantity's filters, applied in order. Build it with
// NewChain; the zero Chain passes every finite sample unchanged. Like a
// Filter, it keeps state and is not safe for concurrent use.
type Chain struct {
	stages []stage
}

var _ Filter = (*Chain)(nil)

// stage is one filter of a chain with its errors, built once so that a
// rejection does not allocate.
type stage struct {
	f                              Filter
	spec                           Spec
	dropped, unchanged, outOfRange stageError
	notFinite                      stageError
}

// stageError wraps a sentinel with the filter that returned it.
type stageError struct {
	msg string
	err error
}

func (e *stageError) Error() string { return e.msg }
func (e *stageError) Unwrap() error { return e.err }

func newStageError(prefix string, err error) stageError {
	return stageError{msg: prefix + ": " + err.Error(), err: err}
}

// errNotFinite is the error of a NaN or infinite input.
var errNotFinite = &stageError{msg: "filter: input is not a finite number: " + ErrOutOfRange.Error(), err: ErrNotFinite}

// NewChain builds a chain from specs, in order. For invalid specs it
// returns one line per problem, "filters[i]: problem", joined with
// errors.Join. A heartbeat needs a delta before it in the chain and gives
// that delta (the nearest one before it) its period; a second heartbeat for
// the same delta is an error. An empty specs gives a chain that only rejects
// non-finite values.
func NewChain(specs []Spec) (*Chain, error) {
	var errs []error
	c := &Chain{stages: make([]stage, len(specs))}
	var lastDelta *delta // the nearest delta so far, and where it is
	lastDeltaAt := -1
	for i, s := range specs {
		if err := s.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("filters[%d]: %w", i, err))
			continue
		}
		f := newFilter(s)
		switch f := f.(type) {
		case *delta:
			lastDelta, lastDeltaAt = f, i
		case heartbeat:
			switch {
			case lastDelta == nil:
				errs = append(errs, fmt.Errorf("filters[%d]: heartbeat needs a delta filter before it", i))
			case lastDelta.every != 0:
				errs = append(errs, fmt.Errorf("filters[%d]: the delta filter at filters[%d] already has a heartbeat", i, lastDeltaAt))
			default:
				lastDelta.every = s.Every
			}
		}
		prefix := fmt.Sprintf("filter: filters[%d] %s", i, s)
		c.stages[i] = stage{
			f:          f,
			spec:       s,
			dropped:    newStageError(prefix, ErrDropped),
			unchanged:  newStageError(prefix, ErrUnchanged),
			outOfRange: newStageError(prefix, ErrOutOfRange),
			notFinite:  stageError{msg: prefix + ": result is not a finite number: " + ErrOutOfRange.Error(), err: ErrNotFinite},
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// Apply runs s through every filter in order and returns what the last one
// returned. A NaN or infinite input, or a filter's result that is not
// finite, is rejected with ErrOutOfRange. The first rejection stops the
// chain: it returns the sample the rejecting filter received and an error
// that matches ErrDropped, ErrUnchanged or ErrOutOfRange with errors.Is and
// names the filter, e.g. "filter: filters[6] outlier(7, 3 MADs): sample
// dropped as implausible". Apply does not allocate once the duration
// windows have grown to their working size.
func (c *Chain) Apply(s Sample) (Sample, error) {
	if !finite(s.Value) {
		return s, errNotFinite
	}
	for i := range c.stages {
		st := &c.stages[i]
		out, err := st.f.Apply(s)
		if err != nil {
			return s, st.wrap(err)
		}
		if !finite(out.Value) {
			return s, &st.notFinite
		}
		s = out
	}
	return s, nil
}

func (st *stage) wrap(err error) error {
	switch err {
	case ErrDropped:
		return &st.dropped
	case ErrUnchanged:
		return &st.unchanged
	case ErrOutOfRange:
		return &st.outOfRange
	}
	return err
}

// Len returns the number of filters in the chain, heartbeats included.
func (c *Chain) Len() int { return len(c.stages) }

// String returns the chain as "median(3) → ema(0.3)", or "" when empty.
func (c *Chain) String() string {
	var b strings.Builder
	for i := range c.stages {
		if i > 0 {
			b.WriteString(" → ")
		}
		b.WriteString(c.stages[i].spec.String())
	}
	return b.String()
}
