package agent

import (
	"slices"
	"testing"
)

// TestSensorTypesAreComplete: every entry of the registry says all the
// agent asks of it: its keys are type-specific keys the config knows, it
// has intervals and quantities, and it is opened alone, in a group, or
// pushed.
func TestSensorTypesAreComplete(t *testing.T) {
	for name, st := range sensorTypes {
		for _, k := range st.keys {
			if !slices.Contains(typeKeys, k) {
				t.Errorf("%s: key %q is not in typeKeys", name, k)
			}
		}
		if st.defaultInterval <= 0 || st.minInterval == nil || st.quantities == nil || st.validate == nil {
			t.Errorf("%s: needs a default interval, a minimum interval, quantities and validation", name)
		}
		if st.open == nil && st.openGroup == nil {
			t.Errorf("%s: no way to open it", name)
		}
		if (st.groupKey == nil) != (st.openGroup == nil) {
			t.Errorf("%s: a group key needs openGroup, and openGroup a group key", name)
		}
		s := &SensorConfig{Type: name}
		if len(st.quantities(s)) == 0 {
			t.Errorf("%s: no quantities", name)
		}
		if st.minInterval(s) > st.defaultInterval {
			t.Errorf("%s: default interval %v is below the shortest, %v", name, st.defaultInterval, st.minInterval(s))
		}
	}
}

// The registry names the type of each input's sensors: messages and the
// ingest check ask it, not a type name written in the code.
func TestInputTypeNames(t *testing.T) {
	for in, want := range map[input]string{notPushed: "", viaPage: "http", viaMQTT: "mqtt"} {
		if got := in.typeName(); got != want {
			t.Errorf("input %d: type %q, want %q", in, got, want)
		}
		for name, st := range sensorTypes {
			if in != notPushed && st.pushed == in && name != want {
				t.Errorf("input %d: types %q and %q both pushed there", in, name, want)
			}
		}
	}
}
