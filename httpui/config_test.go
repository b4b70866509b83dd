package httpui

import (
	"errors"
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	var c Config
	c.SetDefaults()
	if c.Listen != "" || c.History != time.Hour || c.HistoryMax != 3600 || c.MaxClients != 64 || c.Archive != 7*24*time.Hour || c.AllowedOrigins != nil {
		t.Errorf("defaults: %+v", c)
	}
	c = Config{Listen: ":9000", History: time.Minute, HistoryMax: 10, MaxClients: 2}
	want := c
	c.SetDefaults()
	if c.Listen != want.Listen || c.History != want.History || c.HistoryMax != want.HistoryMax || c.MaxClients != want.MaxClients {
		t.Errorf("SetDefaults changed set fields: %+v", c)
	}
	if errs := c.Validate(); errs != nil {
		t.Errorf("Validate: %v", errs)
	}
}

func TestConfigValidate(t *testing.T) {
	c := Config{History: -time.Second, HistoryMax: -1, HistoryBytes: 100 << 10, MaxClients: -2, Archive: 59 * time.Minute, AllowedOrigins: []string{"ok.example.com", "", "[bad"}}
	want := "history: must not be negative, got -1s\n" +
		"history_max: must not be negative, got -1\n" +
		"history_bytes: want at least 256KiB, got 100KiB\n" +
		"max_clients: must not be negative, got -2\n" +
		"archive: want at least 1h0m0s, got 59m0s\n" +
		"allowed_origins[1]: empty pattern\n" +
		`allowed_origins[2]: bad pattern "[bad": syntax error in pattern`
	if err := errors.Join(c.Validate()...); err == nil || err.Error() != want {
		t.Errorf("Validate:\n%v\nwant\n%s", err, want)
	}
}
