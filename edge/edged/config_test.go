package edged_test

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/larder-lockers/larder/edge/edged"
	"github.com/larder-lockers/larder/protocol"
)

const hexKey = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"

func TestLoadPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "edge.json")
	os.WriteFile(file, []byte(`{"site":"from-file","bus":"tcp://127.0.0.1:1","kiosk_addr":"127.0.0.1:9000","boards":[0,1],
		"zones":"frozen:1-4","limits":{"chilled":{"alarm_above_c":6,"alarm_after_seconds":300,"limit_c":7,"budget_seconds":900}},
		"poll_interval":"250ms"}`), 0o600)
	keyFile := filepath.Join(dir, "key")
	os.WriteFile(keyFile, []byte(hexKey+"\n"), 0o600)
	env := map[string]string{"LARDER_EDGE_SITE": "from-env", "LARDER_EDGE_SITE_KEY_FILE": keyFile, "LARDER_EDGE_BROKER": "tcp://127.0.0.1:1883"}
	cfg, err := edged.Load([]string{"-config", file, "-site", "from-flag"}, func(k string) string { return env[k] }, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Site != "from-flag" || cfg.KioskAddr != "127.0.0.1:9000" || cfg.Broker != "tcp://127.0.0.1:1883" || len(cfg.Boards) != 2 {
		t.Fatalf("config %+v", cfg)
	}
	specs, _ := cfg.Specs()
	if len(specs) != 32 || specs[0].Zone != protocol.ZoneFrozen || specs[4].Zone != protocol.ZoneAmbient || specs[16].Board != 1 || specs[16].Number != 17 {
		t.Fatalf("specs %+v", specs[:5])
	}
	if specs[0].Row != 1 || specs[3].Row != 4 || specs[4].Column != 2 {
		t.Fatalf("layout %+v", specs[:5])
	}
}

func TestValidate(t *testing.T) {
	good := func() edged.Config {
		c := edged.DefaultConfig()
		c.Site, c.SiteKey, c.Bus = "courtyard-1", hexKey, "tcp://127.0.0.1:1"
		return c
	}
	if err := good().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]func(*edged.Config){
		"bad site":      func(c *edged.Config) { c.Site = "Bad/Site" },
		"log level":     func(c *edged.Config) { c.LogLevel = "verbose" },
		"short key":     func(c *edged.Config) { c.SiteKey = "abcd" },
		"no bus":        func(c *edged.Config) { c.Bus = "" },
		"bad profile":   func(c *edged.Config) { c.Profile = "acme" },
		"no boards":     func(c *edged.Config) { c.Boards = nil },
		"bad zones":     func(c *edged.Config) { c.Zones = "lukewarm:1-3" },
		"bad range":     func(c *edged.Config) { c.Zones = "chilled:9-99" },
		"thermometer":   func(c *edged.Config) { c.Thermometer = "ds18b20" },
		"unknown limit": func(c *edged.Config) { c.Limits = map[protocol.Zone]edged.ZoneLimits{"hot": {}} },
	} {
		cfg := good()
		c(&cfg)
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), hexKey) {
			t.Errorf("%s: error leaks the key", name)
		}
	}
}

func TestGPIOConfig(t *testing.T) {
	c := edged.DefaultConfig()
	c.Site, c.SiteKey, c.Profile = "small-bank", hexKey, edged.ProfileGPIO
	if err := c.Validate(); err == nil {
		t.Fatal("gpio without relays accepted")
	}
	c.Relays = map[int]string{1: "GPIO17", 2: "GPIO27", 3: "GPIO22"}
	c.DoorPins = map[int]string{1: "GPIO5", 2: "GPIO6"}
	c.Zones = "chilled:1-2,ambient:3"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	specs, _ := c.Specs()
	if len(specs) != 3 || specs[2].Zone != protocol.ZoneAmbient || specs[1].Lock != 2 {
		t.Fatalf("specs %+v", specs)
	}
	c.DoorPins[9] = "GPIO9"
	if err := c.Validate(); err == nil {
		t.Fatal("door pin without relay accepted")
	}
	delete(c.DoorPins, 9)
	c.Thermometer = "ds18b20:1"
	if err := c.Validate(); err == nil {
		t.Fatal("ds18b20 without probes accepted")
	}
	c.Probes = map[protocol.Zone]string{protocol.ZoneChilled: "28ff4b3c61160352"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.Probes[protocol.ZoneFrozen] = "not-hex"
	if err := c.Validate(); err == nil {
		t.Fatal("bad probe address accepted")
	}
}

// TestLoadRefuses: a misspelt key, a bad variable, a stray argument or a secret given
// as a flag stops the daemon with an error naming it.
func TestLoadRefuses(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "edge.json")
	os.WriteFile(file, []byte(`{"site":"yard-1","site_key":"`+hexKey+`","bus":"tcp://127.0.0.1:1","kiosk_adr":"127.0.0.1:9000"}`), 0o600)
	good := filepath.Join(dir, "good.json")
	os.WriteFile(good, []byte(`{"site":"yard-1","site_key":"`+hexKey+`","bus":"tcp://127.0.0.1:1"}`), 0o600)
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"unknown key", []string{"-config", file}, nil, `unknown key "kiosk_adr"`},
		{"bad variable", []string{"-config", good}, map[string]string{"LARDER_EDGE_BOARDS": "0,one"}, `LARDER_EDGE_BOARDS: "one" is not a number`},
		{"bad flag", []string{"-config", good, "-boards", "x"}, nil, `flag -boards: "x" is not a number`},
		{"stray argument", []string{"-config", good, "yard-2"}, nil, `unexpected argument "yard-2"`},
		{"site key as a flag", []string{"-config", good, "-site-key", hexKey}, nil, "-site-key"},
	} {
		_, err := edged.Load(tc.args, func(k string) string { return tc.env[k] }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
	if _, err := edged.Load([]string{"-config", good}, func(string) string { return "" }, io.Discard); err != nil {
		t.Errorf("good file: %v", err)
	}
}

// TestExampleConfigLoads: the example shipped in deploy/ has only keys the daemon knows
// and values it accepts (the site key file is the test's own).
func TestExampleConfigLoads(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "site.key")
	os.WriteFile(keyFile, []byte(hexKey+"\n"), 0o600)
	env := map[string]string{"LARDER_EDGE_SITE_KEY_FILE": keyFile}
	cfg, err := edged.Load([]string{"-config", "../../deploy/edge.example.json"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if specs, _ := cfg.Specs(); len(specs) == 0 {
		t.Error("no compartments")
	}
}

// TestMetricsAddr: metrics_addr defaults to loopback, comes from the file, the
// environment and the flag (later sources winning), "off" from the environment or a
// flag turns metrics off like an empty value in the file, and a malformed address is
// refused.
func TestMetricsAddr(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "edge.json")
	os.WriteFile(file, []byte(`{"site":"s1","site_key":"`+hexKey+`","bus":"tcp://127.0.0.1:1","metrics_addr":"127.0.0.1:9501"}`), 0o600)
	off := filepath.Join(dir, "off.json")
	os.WriteFile(off, []byte(`{"site":"s1","site_key":"`+hexKey+`","bus":"tcp://127.0.0.1:1","metrics_addr":""}`), 0o600)
	base := filepath.Join(dir, "base.json")
	os.WriteFile(base, []byte(`{"site":"s1","site_key":"`+hexKey+`","bus":"tcp://127.0.0.1:1"}`), 0o600)
	for _, tc := range []struct {
		name string
		args []string
		env  string
		want string
	}{
		{"default", []string{"-config", base}, "", edged.DefaultMetricsAddr},
		{"file", []string{"-config", file}, "", "127.0.0.1:9501"},
		{"env over file", []string{"-config", file}, "127.0.0.1:9502", "127.0.0.1:9502"},
		{"flag over env", []string{"-config", file, "-metrics", "127.0.0.1:9503"}, "127.0.0.1:9502", "127.0.0.1:9503"},
		{"off in the file", []string{"-config", off}, "", ""},
		{"off by env", []string{"-config", file}, "off", ""},
		{"off by flag", []string{"-config", file, "-metrics", "off"}, "127.0.0.1:9502", ""},
	} {
		c, err := edged.Load(tc.args, func(k string) string {
			return map[string]string{"LARDER_EDGE_METRICS_ADDR": tc.env}[k]
		}, io.Discard)
		if err != nil || c.MetricsAddr != tc.want {
			t.Errorf("%s: metrics_addr %q, %v; want %q", tc.name, c.MetricsAddr, err, tc.want)
		}
	}
	if _, err := edged.Load([]string{"-config", base, "-metrics", "9401"}, func(string) string { return "" }, io.Discard); err == nil || !strings.Contains(err.Error(), "metrics_addr") {
		t.Errorf("-metrics 9401: %v, want an error naming metrics_addr", err)
	}
}

// TestModbusConfig: profile modbus-rtu from a file, with its board layout and pulse;
// out-of-range values and modbus settings under another profile are refused.
func TestModbusConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "edge.json")
	os.WriteFile(file, []byte(`{"site": "mb-1", "site_key": "`+hexKey+`", "bus": "/dev/ttyUSB0", "profile": "modbus-rtu",
		"boards": [1, 2], "polarity": "inverted",
		"modbus": {"locks": 8, "coil_base": 0, "input_base": 16, "pulse": "250ms"}}`), 0o600)
	c, err := edged.Load([]string{"-config", file}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if m := c.Modbus.Map(); m.Locks != 8 || m.InputBase != 16 || time.Duration(c.Modbus.Pulse) != 250*time.Millisecond {
		t.Errorf("modbus %+v", c.Modbus)
	}
	specs, err := c.Specs()
	if err != nil {
		t.Fatal(err)
	}
	// 8 locks per board, numbered 16 to a board: board 2 lock 1 is compartment 17.
	if len(specs) != 16 || specs[7].Number != 8 || specs[8].Number != 17 || specs[8].Board != 2 || specs[8].Lock != 1 {
		t.Errorf("specs %+v", specs)
	}
	for name, tweak := range map[string]func(*edged.Config){
		"17 locks":         func(c *edged.Config) { c.Modbus.Locks = 17 },
		"negative base":    func(c *edged.Config) { c.Modbus.CoilBase = -1 },
		"base past 65535":  func(c *edged.Config) { c.Modbus.InputBase = 65530 },
		"pulse 2s":         func(c *edged.Config) { c.Modbus.Pulse = edged.Duration(2 * time.Second) },
		"pulse 10ms":       func(c *edged.Config) { c.Modbus.Pulse = edged.Duration(10 * time.Millisecond) },
		"board 0":          func(c *edged.Config) { c.Boards = []int{0} },
		"modbus on kerong": func(c *edged.Config) { c.Profile, c.Boards = "kerong-cu16", []int{0} },
	} {
		bad := c
		bad.Boards = slices.Clone(c.Boards)
		tweak(&bad)
		if err := bad.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	os.WriteFile(file, []byte(`{"profile": "modbus-rtu", "modbus": {"lock": 8}}`), 0o600)
	if _, err := edged.Load([]string{"-config", file}, func(string) string { return "" }, io.Discard); err == nil || !strings.Contains(err.Error(), "lock") {
		t.Errorf("misspelt modbus key: %v", err)
	}
}
