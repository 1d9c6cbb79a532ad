package edged

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/larder-lockers/larder/edge"
	"github.com/larder-lockers/larder/edge/mqtt"
	"github.com/larder-lockers/larder/internal/daemon"
	"github.com/larder-lockers/larder/protocol"
	"github.com/larder-lockers/larder/protocol/board"
)

// Config is larder-edge's configuration. Sources, later ones winning: DefaultConfig, the
// JSON file named by -config (or LARDER_EDGE_CONFIG), LARDER_EDGE_* environment
// variables, then flags. Secrets (site key, broker password) come from the file or the
// environment only: they have no flag, since flags show in ps.
type Config struct {
	// Site is the site id (protocol.ValidSite).
	Site string `json:"site"`
	// SiteKey is the site's secret key in hex (≥ 32 bytes), shared with the cloud, used to
	// digest what people type. SiteKeyFile names a file holding it instead.
	SiteKey     string `json:"site_key,omitempty"`
	SiteKeyFile string `json:"site_key_file,omitempty"`
	// DataDir holds the bbolt database (edge.db).
	DataDir string `json:"data_dir"`
	// KioskAddr serves the kiosk page, its API and /healthz; not /metrics.
	KioskAddr string `json:"kiosk_addr"`
	// MetricsAddr serves /metrics alone, for Prometheus: the kiosk's address is reachable
	// from the courtyard's screen and network, the exposition is fleet data (sites,
	// compartments, outbox depth), so it has an address of its own, loopback by default.
	// Empty (in the file; "off" from the environment or a flag, which cannot carry an
	// empty value) serves no metrics.
	MetricsAddr string `json:"metrics_addr"`

	// Broker is the MQTT broker URL (tcp://, ssl://, ws://, wss://), or the
	// comma-separated URLs of a broker cluster's nodes, tried in order on every connect
	// (tcp://a:1883,tcp://b:1883); empty runs offline.
	Broker         string `json:"broker,omitempty"`
	BrokerUsername string `json:"broker_username,omitempty"`
	BrokerPassword string `json:"broker_password,omitempty"`

	// Bus is the RS-485 line of the lock boards: a serial device path or tcp://host:port
	// (an RS-485-to-Ethernet converter, or larder-sim --listen).
	Bus      string `json:"bus"`
	Profile  string `json:"profile"`            // kerong-cu16, bcc8a, modbus-rtu or gpio
	Polarity string `json:"polarity,omitempty"` // bcc8a feedback, modbus-rtu door inputs: normal or inverted
	Baud     int    `json:"baud,omitempty"`
	// Modbus lays out modbus-rtu boards and times their relays; only for that profile.
	Modbus ModbusConfig `json:"modbus,omitzero"`
	// Boards are the wire addresses of the boards on the bus.
	Boards []int `json:"boards"`
	// Compartments map each door (number, size, zone, height_cm, board, lock, row,
	// column). Empty: every lock of Boards, numbered as the profile does, sized M, zoned
	// by Zones, in rows of 4 per column (row 1 at 20 cm, 45 cm apart).
	Compartments []edge.CompartmentSpec `json:"compartments,omitempty"`
	// Zones assigns the default compartments to zones, like larder-sim's flag:
	// "chilled:1-8,frozen:9-12,ambient:13-16" (empty: all chilled).
	Zones string `json:"zones,omitempty"`
	// Limits overrides the temperature limits of a zone (edge.DefaultZoneLimits).
	Limits map[protocol.Zone]ZoneLimits `json:"limits,omitempty"`
	// Thermometer reads zone temperatures: "sim:http://127.0.0.1:7480" (larder-sim's
	// control API), "ds18b20:1" (DS18B20 probes on the kernel's 1-Wire master 1, listed
	// in Probes) or "" for none.
	Thermometer string `json:"thermometer,omitempty"`
	// Probes maps zones to DS18B20 ROM addresses (16 hex digits, e.g. "28ff4b3c61160352").
	Probes map[protocol.Zone]string `json:"probes,omitempty"`

	// Profile gpio: a bank wired to a single-board computer. Relays maps compartment
	// numbers to relay pin names ("GPIO17"), DoorPins to door-switch pins (optional).
	Relays         map[int]string `json:"relays,omitempty"`
	DoorPins       map[int]string `json:"door_pins,omitempty"`
	RelayActiveLow bool           `json:"relay_active_low,omitempty"`
	DoorOpenLow    bool           `json:"door_open_low,omitempty"`

	PollInterval Duration `json:"poll_interval"` // door and occupancy polling (500ms)
	TempInterval Duration `json:"temp_interval"` // temperature reads (10s)
	LogLevel     string   `json:"log_level"`     // debug, info, warn, error
}

// ModbusConfig is profile modbus-rtu's board layout (board.ModbusMap) and relay pulse;
// zero values take the defaults named beside them.
type ModbusConfig struct {
	// Locks is the number of relays, and of door inputs, per board that are used, 1-16
	// (16). The door inputs read are exactly these, so it must not pass the board's last.
	Locks     int `json:"locks,omitempty"`
	CoilBase  int `json:"coil_base,omitempty"`  // coil address of lock 1's relay (0; lock n is base+n-1)
	InputBase int `json:"input_base,omitempty"` // discrete-input address of door 1's switch (0)
	// Pulse is how long the edge holds a relay on to unlock (300ms; 50ms-1s): these boards
	// do not time pulses themselves.
	Pulse Duration `json:"pulse,omitempty"`
}

// Map is the layout as protocol/board takes it; Validate has checked the ranges.
func (m ModbusConfig) Map() board.ModbusMap {
	return board.ModbusMap{Locks: m.Locks, CoilBase: uint16(m.CoilBase), InputBase: uint16(m.InputBase)}
}

func (m ModbusConfig) validate() error {
	if m.CoilBase < 0 || m.CoilBase > 0xFFFF || m.InputBase < 0 || m.InputBase > 0xFFFF {
		return fmt.Errorf("edged: modbus coil_base %d, input_base %d: want 0-65535", m.CoilBase, m.InputBase)
	}
	if err := m.Map().Validate(); err != nil {
		return fmt.Errorf("edged: modbus: %w", err)
	}
	if p := time.Duration(m.Pulse); p != 0 && (p < 50*time.Millisecond || p > time.Second) {
		return fmt.Errorf("edged: modbus pulse %v: want 50ms-1s (a latch needs about 50 ms; a coil held longer overheats)", p)
	}
	return nil
}

// ZoneLimits is edge.ZoneLimits in configuration units (seconds).
type ZoneLimits struct {
	AlarmAboveC       float64 `json:"alarm_above_c"`
	AlarmAfterSeconds int     `json:"alarm_after_seconds"`
	LimitC            float64 `json:"limit_c"`
	BudgetSeconds     int     `json:"budget_seconds"`
}

// Duration is a time.Duration written as "500ms" in JSON.
type Duration = daemon.Duration

// ProfileGPIO names a bank wired straight to GPIO pins (edge/gpio).
const ProfileGPIO = "gpio"

// DefaultMetricsAddr is where /metrics is served unless configured: loopback, so only
// a Prometheus (or agent) on the edge's machine scrapes it. Port 8491 is the one after
// the cloud's 8490 (both daemons run on one machine unchanged), outside the exporters'
// range 9100-9999 (all allocated) and away from the usual 8080/8081 (the API and the
// kiosk), 9090-9093 (Prometheus, Alertmanager) and the demo's 7400-7406.
const DefaultMetricsAddr = "127.0.0.1:8491"

// DefaultConfig is one kerong-cu16 board, data in ./data, kiosk on 127.0.0.1:8081,
// metrics on DefaultMetricsAddr.
func DefaultConfig() Config {
	return Config{
		DataDir:      "data",
		KioskAddr:    "127.0.0.1:8081",
		MetricsAddr:  DefaultMetricsAddr,
		Profile:      string(board.KerongCU16),
		Boards:       []int{0},
		PollInterval: Duration(500 * time.Millisecond),
		TempInterval: Duration(10 * time.Second),
		LogLevel:     "info",
	}
}

// Key returns the site key's bytes, read from SiteKeyFile when set.
func (c Config) Key() ([]byte, error) {
	s := c.SiteKey
	if c.SiteKeyFile != "" {
		b, err := os.ReadFile(c.SiteKeyFile)
		if err != nil {
			return nil, fmt.Errorf("edged: site key file: %w", err)
		}
		s = string(b)
	}
	key, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, errors.New("edged: site key is not hex")
	}
	if len(key) < 32 {
		return nil, fmt.Errorf("edged: site key has %d bytes, want at least 32", len(key))
	}
	return key, nil
}

// Specs returns the compartment map: Compartments, or the default derived from Boards.
func (c Config) Specs() ([]edge.CompartmentSpec, error) {
	if len(c.Compartments) > 0 {
		return c.Compartments, nil
	}
	if c.Profile == ProfileGPIO {
		nums := make([]int, 0, len(c.Relays))
		for n := range c.Relays {
			nums = append(nums, n)
		}
		slices.Sort(nums)
		zones, err := parseZones(c.Zones, slices.Max(append(nums, 1)))
		if err != nil {
			return nil, err
		}
		var out []edge.CompartmentSpec
		for i, n := range nums {
			row := i%4 + 1
			out = append(out, edge.CompartmentSpec{Number: n, Size: protocol.SizeM, Zone: zones[n-1], HeightCM: 20 + 45*(row-1),
				Board: 0, Lock: n, Row: row, Column: i/4 + 1})
		}
		return out, nil
	}
	p := board.Profile(c.Profile)
	locks := board.Codec{Profile: p, Modbus: c.Modbus.Map()}.Locks()
	n := len(c.Boards) * locks
	zones, err := parseZones(c.Zones, n)
	if err != nil {
		return nil, err
	}
	var out []edge.CompartmentSpec
	for i, b := range c.Boards {
		for lock := 1; lock <= locks; lock++ {
			num, err := p.Compartment(b, lock)
			if err != nil {
				return nil, fmt.Errorf("edged: board %d: %w", b, err)
			}
			row := (lock-1)%4 + 1
			out = append(out, edge.CompartmentSpec{Number: num, Size: protocol.SizeM, Zone: zones[(num-1)%n],
				HeightCM: 20 + 45*(row-1), Board: b, Lock: lock, Row: row, Column: i*((locks+3)/4) + (lock-1)/4 + 1})
		}
	}
	return out, nil
}

// parseZones reads "chilled:1-8,frozen:9-12" over compartments 1..n ("" = all chilled;
// compartments not named are ambient).
func parseZones(spec string, n int) ([]protocol.Zone, error) {
	out := make([]protocol.Zone, n)
	fill := protocol.ZoneAmbient
	if strings.TrimSpace(spec) == "" {
		fill = protocol.ZoneChilled
	}
	for i := range out {
		out[i] = fill
	}
	if strings.TrimSpace(spec) == "" {
		return out, nil
	}
	for _, part := range strings.Split(spec, ",") {
		kind, ranges, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok || !protocol.Zone(kind).Valid() {
			return nil, fmt.Errorf("edged: zones %q: want zone:from-to", part)
		}
		for _, r := range strings.Split(ranges, "+") {
			a, b, _ := strings.Cut(r, "-")
			lo, err1 := strconv.Atoi(a)
			hi := lo
			var err2 error
			if b != "" {
				hi, err2 = strconv.Atoi(b)
			}
			if err1 != nil || err2 != nil || lo < 1 || hi > n || lo > hi {
				return nil, fmt.Errorf("edged: zones %q: bad range %q for compartments 1-%d", part, r, n)
			}
			for c := lo; c <= hi; c++ {
				out[c-1] = protocol.Zone(kind)
			}
		}
	}
	return out, nil
}

// Validate reports the first problem with the configuration.
func (c Config) Validate() error {
	if !protocol.ValidSite(c.Site) {
		return fmt.Errorf("edged: site %q: want 1-64 of a-z 0-9 - _", c.Site)
	}
	if _, err := c.Key(); err != nil {
		return err
	}
	if c.DataDir == "" || c.KioskAddr == "" {
		return errors.New("edged: data_dir and kiosk_addr are required")
	}
	if c.Broker != "" {
		// Checked here too so that a bad broker list stops the start-up before the
		// hardware is opened.
		if _, err := (mqtt.Config{Broker: c.Broker}).Brokers(); err != nil {
			return fmt.Errorf("edged: broker: %w", err)
		}
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			return fmt.Errorf("edged: metrics_addr %q: %w", c.MetricsAddr, err)
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		// A typo would otherwise log at info without a word.
		return fmt.Errorf("edged: log_level %q: want debug, info, warn or error", c.LogLevel)
	}
	if c.Profile == ProfileGPIO {
		if len(c.Relays) == 0 {
			return errors.New("edged: profile gpio needs relays (compartment → pin name)")
		}
		for n := range c.DoorPins {
			if _, ok := c.Relays[n]; !ok {
				return fmt.Errorf("edged: door pin of compartment %d, which has no relay", n)
			}
		}
	} else {
		if c.Bus == "" {
			return errors.New("edged: bus is required (a serial device or tcp://host:port)")
		}
		if _, err := board.ParseProfile(c.Profile); err != nil {
			return fmt.Errorf("edged: %w (or gpio)", err)
		}
		if _, err := board.ParsePolarity(c.Polarity); err != nil {
			return fmt.Errorf("edged: %w", err)
		}
		if len(c.Boards) == 0 {
			return errors.New("edged: no boards")
		}
	}
	if c.Modbus != (ModbusConfig{}) && c.Profile != string(board.ModbusRTU) {
		return fmt.Errorf("edged: modbus settings with profile %s: they apply to modbus-rtu only", c.Profile)
	}
	if err := c.Modbus.validate(); err != nil {
		return err
	}
	specs, err := c.Specs()
	if err != nil {
		return err
	}
	seen := map[int]bool{}
	for _, s := range specs {
		switch {
		case s.Number < 1 || seen[s.Number]:
			return fmt.Errorf("edged: compartment %d: numbers must be unique and start at 1", s.Number)
		case !s.Size.Valid():
			return fmt.Errorf("edged: compartment %d: size %q", s.Number, s.Size)
		case !s.Zone.Valid():
			return fmt.Errorf("edged: compartment %d: zone %q", s.Number, s.Zone)
		}
		seen[s.Number] = true
	}
	for z := range c.Limits {
		if !z.Valid() {
			return fmt.Errorf("edged: limits: unknown zone %q", z)
		}
	}
	switch t := c.Thermometer; {
	case t == "" || strings.HasPrefix(t, "sim:"):
	case strings.HasPrefix(t, "ds18b20:"):
		if _, err := strconv.ParseUint(strings.TrimPrefix(t, "ds18b20:"), 10, 32); err != nil {
			return fmt.Errorf("edged: thermometer %q: want ds18b20:<1-Wire master number>", t)
		}
		if len(c.Probes) == 0 {
			return errors.New("edged: thermometer ds18b20 needs probes (zone → ROM address)")
		}
		for z, a := range c.Probes {
			if _, err := strconv.ParseUint(a, 16, 64); err != nil || !z.Valid() {
				return fmt.Errorf("edged: probe %s: want a zone and 16 hex digits", z)
			}
		}
	default:
		return fmt.Errorf("edged: thermometer %q: want sim:URL, ds18b20:N or nothing", t)
	}
	if c.PollInterval <= 0 || c.TempInterval <= 0 {
		return errors.New("edged: intervals must be positive")
	}
	return nil
}

// source is where the configuration comes from: the keys the environment and flags may
// set (the JSON file sets any key of Config). Secrets have no flag.
var source = daemon.Source[Config]{
	Program:   "larder-edge",
	ConfigEnv: "LARDER_EDGE_CONFIG",
	Settings: []daemon.Setting[Config]{
		{Env: "LARDER_EDGE_SITE", Flag: "site", Usage: "site id (env LARDER_EDGE_SITE)",
			Set: func(c *Config, v string) error { c.Site = v; return nil }},
		{Env: "LARDER_EDGE_SITE_KEY", Secret: true,
			Set: func(c *Config, v string) error { c.SiteKey = v; return nil }},
		{Env: "LARDER_EDGE_SITE_KEY_FILE", Flag: "site-key-file", Usage: "file holding the hex site key (env LARDER_EDGE_SITE_KEY_FILE or LARDER_EDGE_SITE_KEY)",
			Set: func(c *Config, v string) error { c.SiteKeyFile = v; return nil }},
		{Env: "LARDER_EDGE_DATA_DIR", Flag: "data", Usage: "data directory (env LARDER_EDGE_DATA_DIR; default data)",
			Set: func(c *Config, v string) error { c.DataDir = v; return nil }},
		{Env: "LARDER_EDGE_KIOSK_ADDR", Flag: "kiosk", Usage: "kiosk and /healthz address (env LARDER_EDGE_KIOSK_ADDR; default 127.0.0.1:8081)",
			Set: func(c *Config, v string) error { c.KioskAddr = v; return nil }},
		{Env: "LARDER_EDGE_METRICS_ADDR", Flag: "metrics", Usage: "/metrics listen address, for Prometheus; off serves none (env LARDER_EDGE_METRICS_ADDR; default " + DefaultMetricsAddr + ")",
			Set: func(c *Config, v string) error { c.MetricsAddr = daemon.MetricsAddr(v); return nil }},
		{Env: "LARDER_EDGE_BROKER", Flag: "broker", Usage: "MQTT broker URL, e.g. tcp://127.0.0.1:1883, or several comma-separated (a broker cluster), tried in order; empty runs offline (env LARDER_EDGE_BROKER)",
			Set: func(c *Config, v string) error { c.Broker = v; return nil }},
		{Env: "LARDER_EDGE_BROKER_USERNAME", Flag: "broker-user", Usage: "MQTT username (env LARDER_EDGE_BROKER_USERNAME; password only by env LARDER_EDGE_BROKER_PASSWORD or file)",
			Set: func(c *Config, v string) error { c.BrokerUsername = v; return nil }},
		{Env: "LARDER_EDGE_BROKER_PASSWORD", Secret: true,
			Set: func(c *Config, v string) error { c.BrokerPassword = v; return nil }},
		{Env: "LARDER_EDGE_BUS", Flag: "bus", Usage: "lock-board line: serial device or tcp://host:port (env LARDER_EDGE_BUS)",
			Set: func(c *Config, v string) error { c.Bus = v; return nil }},
		{Env: "LARDER_EDGE_PROFILE", Flag: "profile", Usage: "board profile kerong-cu16, bcc8a, modbus-rtu or gpio (env LARDER_EDGE_PROFILE)",
			Set: func(c *Config, v string) error { c.Profile = v; return nil }},
		{Env: "LARDER_EDGE_BOARDS", Flag: "boards", Usage: "board addresses, comma-separated (env LARDER_EDGE_BOARDS; default 0)",
			Set: func(c *Config, v string) (err error) { c.Boards, err = parseInts(v); return err }},
		{Env: "LARDER_EDGE_ZONES", Flag: "zones", Usage: `default compartments' zones, e.g. "chilled:1-8,frozen:9-16" (env LARDER_EDGE_ZONES)`,
			Set: func(c *Config, v string) error { c.Zones = v; return nil }},
		{Env: "LARDER_EDGE_THERMOMETER", Flag: "thermometer", Usage: "zone temperatures: sim:http://127.0.0.1:7480 (env LARDER_EDGE_THERMOMETER)",
			Set: func(c *Config, v string) error { c.Thermometer = v; return nil }},
		{Env: "LARDER_EDGE_LOG_LEVEL", Flag: "log-level", Usage: "debug, info, warn or error (env LARDER_EDGE_LOG_LEVEL)",
			Set: func(c *Config, v string) error { c.LogLevel = v; return nil }},
	},
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// Load builds the configuration from DefaultConfig, the file, the environment (getenv,
// usually os.Getenv) and the command-line args (see internal/daemon for the order), and
// validates it.
func Load(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	c, err := source.Load(DefaultConfig(), args, getenv, stderr)
	if err != nil {
		return Config{}, fmt.Errorf("edged: %w", err)
	}
	return c, c.Validate()
}

func (c Config) limits() map[protocol.Zone]edge.ZoneLimits {
	out := map[protocol.Zone]edge.ZoneLimits{}
	for z, l := range c.Limits {
		out[z] = edge.ZoneLimits{AlarmAboveC: l.AlarmAboveC, AlarmAfter: time.Duration(l.AlarmAfterSeconds) * time.Second,
			LimitC: l.LimitC, Budget: time.Duration(l.BudgetSeconds) * time.Second}
	}
	return out
}
