package fleet

import (
	"strings"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/reading"
)

// TestMetricsValueIsNewestByTime: kelvin_fleet_sensor_value has the local
// kelvin_sensor_value's labels (sensor, quantity, unit) plus agent, and,
// like it, the newest reading by time: a gap filled late does not set it
// back.
func TestMetricsValueIsNewestByTime(t *testing.T) {
	f, c := newTestFleet(t, nil)
	ts := c.now()
	f.Handle("kelvin/gw-1/air", payload(reading.FormatJSON, "gw-1", "air", 1, 20, ts))
	f.Handle("kelvin/gw-1/air", payload(reading.FormatJSON, "gw-1", "air", 3, 21.5, ts.Add(2*time.Second)))
	f.Handle("kelvin/gw-1/air", payload(reading.FormatJSON, "gw-1", "air", 2, 30, ts.Add(time.Second))) // fills the gap, late
	var b strings.Builder
	f.WriteMetrics(&b)
	want := `kelvin_fleet_sensor_value{agent="gw-1",sensor="air",quantity="temperature",unit="°C"} 21.5` + "\n"
	if !strings.Contains(b.String(), want) {
		t.Fatalf("metrics:\n%s\nwant %s", b.String(), want)
	}
}
