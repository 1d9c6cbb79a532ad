package cloudd

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/cloud/bolt"
	"github.com/larder-lockers/larder/cloud/broker"
	"github.com/larder-lockers/larder/protocol"
)

// Duration is a time.Duration written as "90s" in the JSON configuration file.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration such as \"90s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Config is larder-cloud's configuration. It comes from DefaultConfig, then an optional
// JSON file (--config, LARDER_CLOUD_CONFIG), then the environment (LARDER_CLOUD_*), then
// flags: later sources win. Secrets (the admin key, MQTT passwords) are read from the
// environment or the file, never from flags, which other users can see in ps.
type Config struct {
	// DataDir holds the bbolt file (cloud.db) and, on first start, admin.key.
	DataDir string `json:"data_dir"`
	// HTTPAddr is the API's listen address (also /healthz and /metrics).
	HTTPAddr string `json:"http_addr"`
	// PublicURL is the base URL residents and platforms reach the cloud at, behind any
	// proxy (e.g. https://lockers.example.org): the resident page's link in the code
	// notices is PublicURL/r/{order}#c={code}. Empty: http://HTTPAddr (its real port;
	// 0.0.0.0 read as 127.0.0.1), which suits only a single machine.
	PublicURL string `json:"public_url,omitempty"`
	// MQTTURL is an external broker (e.g. tcp://127.0.0.1:1883, Mosquitto). Empty runs
	// the embedded broker on MQTTListen.
	MQTTURL string `json:"mqtt_url,omitempty"`
	// MQTTUsername and MQTTPassword log the cloud into the external broker. For the
	// embedded broker they are its service account (the username must contain a
	// character site ids cannot have; the password is drawn at start when empty).
	MQTTUsername string `json:"mqtt_username,omitempty"`
	MQTTPassword string `json:"mqtt_password,omitempty"`
	// MQTTListen is the embedded broker's address.
	MQTTListen string `json:"mqtt_listen"`
	// EdgeMQTTURL is the broker URL handed to edges at provisioning (default: the broker
	// the cloud uses).
	EdgeMQTTURL string `json:"edge_mqtt_url,omitempty"`
	// AdminKey bootstraps an admin API key ("lk_" + at least 32 characters). When empty
	// and the store has no key yet, one is drawn and written to DataDir/admin.key (0600).
	AdminKey string `json:"admin_key,omitempty"`
	// SMSURL is the SMS gateway (POST {"to","text"}, see cloud/notify); empty: no SMS.
	// SMSToken is its bearer token (environment or file only).
	SMSURL   string `json:"sms_url,omitempty"`
	SMSToken string `json:"sms_token,omitempty"`
	// NotifyKey (64 hex characters) seals the notification outbox; empty: drawn once
	// into DataDir/notify.key.
	NotifyKey string `json:"notify_key,omitempty"`
	// CommitMode is the store's commit strategy: group (default), single or bolt-batch.
	CommitMode string `json:"commit_mode"`
	// SweepEvery is how often expiry, lapses and command timeouts are processed.
	SweepEvery Duration `json:"sweep_every"`
	// Hold, when set, is how long every order waits after loading before it expires and
	// awaits return, whatever its zone; zero keeps DOMAIN.md's defaults (chilled and
	// frozen 24 h, cool and ambient 12 h). It may not exceed the 24 h food-safety cap.
	Hold Duration `json:"hold,omitempty"`
	// MaxBodyBytes bounds API request bodies.
	MaxBodyBytes int64 `json:"max_body_bytes"`
	// LogLevel is debug, info, warn or error; LogFormat text or json.
	LogLevel  string `json:"log_level"`
	LogFormat string `json:"log_format"`
}

// DefaultConfig is the embedded, single-machine setup.
func DefaultConfig() Config {
	return Config{
		DataDir:      "data",
		HTTPAddr:     "127.0.0.1:8080",
		MQTTListen:   broker.DefaultAddr,
		MQTTUsername: "cloud:larder",
		CommitMode:   "group",
		SweepEvery:   Duration(time.Minute),
		MaxBodyBytes: 64 << 10,
		LogLevel:     "info",
		LogFormat:    "text",
	}
}

func (c Config) commitMode() (bolt.CommitMode, error) {
	switch c.CommitMode {
	case "group", "":
		return bolt.GroupCommit, nil
	case "single":
		return bolt.SingleCommit, nil
	case "bolt-batch":
		return bolt.BoltBatch, nil
	}
	return 0, fmt.Errorf("commit_mode %q: want group, single or bolt-batch", c.CommitMode)
}

// maxHold is the food-safety cap on the hold after loading of chilled and frozen food.
const maxHold = 24 * time.Hour

// policy is the domain's policy: DOMAIN.md's defaults with Hold applied to every zone.
func (c Config) policy() cloud.Policy {
	p := cloud.DefaultPolicy()
	if c.Hold > 0 {
		for z := range p.Hold {
			p.Hold[z] = time.Duration(c.Hold)
		}
	}
	return p
}

// Embedded reports whether the cloud runs its own broker.
func (c Config) Embedded() bool { return c.MQTTURL == "" }

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("cloudd: data_dir required")
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		return fmt.Errorf("cloudd: http_addr %q: %w", c.HTTPAddr, err)
	}
	if c.Embedded() {
		if _, _, err := net.SplitHostPort(c.MQTTListen); err != nil {
			return fmt.Errorf("cloudd: mqtt_listen %q: %w", c.MQTTListen, err)
		}
		if protocol.ValidSite(c.MQTTUsername) {
			return fmt.Errorf("cloudd: mqtt_username %q could be a site id: use one with ':' (e.g. cloud:larder)", c.MQTTUsername)
		}
	} else if u, err := url.Parse(c.MQTTURL); err != nil || u.Host == "" {
		return fmt.Errorf("cloudd: mqtt_url %q: want tcp://host:port", c.MQTTURL)
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return fmt.Errorf("cloudd: public_url %q: want an http(s) URL without query, fragment or user", c.PublicURL)
		}
	}
	if c.EdgeMQTTURL != "" {
		if u, err := url.Parse(c.EdgeMQTTURL); err != nil || u.Host == "" {
			return fmt.Errorf("cloudd: edge_mqtt_url %q: want tcp://host:port", c.EdgeMQTTURL)
		}
	}
	if c.AdminKey != "" && (!strings.HasPrefix(c.AdminKey, cloud.KeyPrefix) || len(c.AdminKey) < len(cloud.KeyPrefix)+32) {
		return fmt.Errorf("cloudd: admin_key must start with %q and have at least 32 more characters", cloud.KeyPrefix)
	}
	if c.SMSURL != "" {
		if u, err := url.Parse(c.SMSURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("cloudd: sms_url %q: want an http(s) URL", c.SMSURL)
		}
	}
	if c.NotifyKey != "" {
		if k, err := hex.DecodeString(c.NotifyKey); err != nil || len(k) != 32 {
			return errors.New("cloudd: notify_key must be 64 hex characters")
		}
	}
	if _, err := c.commitMode(); err != nil {
		return fmt.Errorf("cloudd: %w", err)
	}
	if c.Hold < 0 || time.Duration(c.Hold) > maxHold {
		return fmt.Errorf("cloudd: hold %s: want between 0 (the defaults) and %s, the food-safety cap", time.Duration(c.Hold), maxHold)
	}
	if c.SweepEvery <= 0 {
		return errors.New("cloudd: sweep_every must be positive")
	}
	if c.MaxBodyBytes < 1024 {
		return errors.New("cloudd: max_body_bytes must be at least 1024")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("cloudd: log_level %q: want debug, info, warn or error", c.LogLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("cloudd: log_format %q: want text or json", c.LogFormat)
	}
	return nil
}

// envVars maps LARDER_CLOUD_* variables to settings.
var envVars = []struct {
	name string
	set  func(*Config, string) error
}{
	{"LARDER_CLOUD_DATA_DIR", func(c *Config, v string) error { c.DataDir = v; return nil }},
	{"LARDER_CLOUD_HTTP_ADDR", func(c *Config, v string) error { c.HTTPAddr = v; return nil }},
	{"LARDER_CLOUD_PUBLIC_URL", func(c *Config, v string) error { c.PublicURL = v; return nil }},
	{"LARDER_CLOUD_MQTT_URL", func(c *Config, v string) error { c.MQTTURL = v; return nil }},
	{"LARDER_CLOUD_MQTT_USERNAME", func(c *Config, v string) error { c.MQTTUsername = v; return nil }},
	{"LARDER_CLOUD_MQTT_PASSWORD", func(c *Config, v string) error { c.MQTTPassword = v; return nil }},
	{"LARDER_CLOUD_MQTT_LISTEN", func(c *Config, v string) error { c.MQTTListen = v; return nil }},
	{"LARDER_CLOUD_EDGE_MQTT_URL", func(c *Config, v string) error { c.EdgeMQTTURL = v; return nil }},
	{"LARDER_CLOUD_ADMIN_KEY", func(c *Config, v string) error { c.AdminKey = v; return nil }},
	{"LARDER_CLOUD_SMS_URL", func(c *Config, v string) error { c.SMSURL = v; return nil }},
	{"LARDER_CLOUD_SMS_TOKEN", func(c *Config, v string) error { c.SMSToken = v; return nil }},
	{"LARDER_CLOUD_NOTIFY_KEY", func(c *Config, v string) error { c.NotifyKey = v; return nil }},
	{"LARDER_CLOUD_COMMIT_MODE", func(c *Config, v string) error { c.CommitMode = v; return nil }},
	{"LARDER_CLOUD_SWEEP_EVERY", func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		c.SweepEvery = Duration(d)
		return err
	}},
	{"LARDER_CLOUD_HOLD", func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		c.Hold = Duration(d)
		return err
	}},
	{"LARDER_CLOUD_MAX_BODY_BYTES", func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		c.MaxBodyBytes = n
		return err
	}},
	{"LARDER_CLOUD_LOG_LEVEL", func(c *Config, v string) error { c.LogLevel = v; return nil }},
	{"LARDER_CLOUD_LOG_FORMAT", func(c *Config, v string) error { c.LogFormat = v; return nil }},
}

// Load builds the configuration from the file, the environment (getenv, usually
// os.Getenv) and the command-line args, and validates it.
func Load(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	c := DefaultConfig()
	fs := flag.NewFlagSet("larder-cloud", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", getenv("LARDER_CLOUD_CONFIG"), "JSON configuration file (env LARDER_CLOUD_CONFIG)")
	data := fs.String("data", "", "data directory (env LARDER_CLOUD_DATA_DIR; default data)")
	httpAddr := fs.String("http", "", "API listen address (env LARDER_CLOUD_HTTP_ADDR; default 127.0.0.1:8080)")
	publicURL := fs.String("public-url", "", "base URL residents reach the cloud at, for the links in their notices (env LARDER_CLOUD_PUBLIC_URL; default http://<http address>)")
	mqttURL := fs.String("mqtt", "", "external MQTT broker URL, e.g. tcp://127.0.0.1:1883; empty runs the embedded broker (env LARDER_CLOUD_MQTT_URL)")
	mqttUser := fs.String("mqtt-user", "", "MQTT username (env LARDER_CLOUD_MQTT_USERNAME; password only by env LARDER_CLOUD_MQTT_PASSWORD or file)")
	listen := fs.String("mqtt-listen", "", "embedded broker listen address (env LARDER_CLOUD_MQTT_LISTEN; default "+broker.DefaultAddr+")")
	edgeURL := fs.String("edge-mqtt", "", "broker URL given to edges at provisioning (env LARDER_CLOUD_EDGE_MQTT_URL)")
	level := fs.String("log-level", "", "debug, info, warn or error (env LARDER_CLOUD_LOG_LEVEL)")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("cloudd: unexpected argument %q", fs.Arg(0))
	}
	if *file != "" {
		b, err := os.ReadFile(*file)
		if err != nil {
			return Config{}, fmt.Errorf("cloudd: config file: %w", err)
		}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return Config{}, fmt.Errorf("cloudd: config file %s: %w", filepath.Base(*file), err)
		}
	}
	for _, e := range envVars {
		if v := getenv(e.name); v != "" {
			if err := e.set(&c, v); err != nil {
				return Config{}, fmt.Errorf("%s: %w", e.name, err)
			}
		}
	}
	for dst, v := range map[*string]string{&c.DataDir: *data, &c.HTTPAddr: *httpAddr, &c.PublicURL: *publicURL, &c.MQTTURL: *mqttURL,
		&c.MQTTUsername: *mqttUser, &c.MQTTListen: *listen, &c.EdgeMQTTURL: *edgeURL, &c.LogLevel: *level} {
		if v != "" {
			*dst = v
		}
	}
	return c, c.Validate()
}
