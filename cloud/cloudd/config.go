package cloudd

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
	// The zone database, embedded (about 450 kB): sites' zones must load on a minimal
	// machine or container that has no /usr/share/zoneinfo, not fail at start.
	_ "time/tzdata"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/cloud/bolt"
	"github.com/larder-lockers/larder/cloud/broker"
	"github.com/larder-lockers/larder/internal/daemon"
	"github.com/larder-lockers/larder/protocol"
)

// Duration is a time.Duration written as "90s" in the JSON configuration file.
type Duration = daemon.Duration

// Config is larder-cloud's configuration. It comes from DefaultConfig, then an optional
// JSON file (--config, LARDER_CLOUD_CONFIG), then the environment (LARDER_CLOUD_*), then
// flags: later sources win. Secrets (the admin key, MQTT passwords) are read from the
// environment or the file, never from flags, which other users can see in ps.
type Config struct {
	// DataDir holds the bbolt file (cloud.db) and, on first start, admin.key.
	DataDir string `json:"data_dir"`
	// HTTPAddr is the API's listen address, also the web pages' and /healthz (where load
	// balancers probe); it does not serve /metrics.
	HTTPAddr string `json:"http_addr"`
	// MetricsAddr serves /metrics alone, for Prometheus: the exposition is fleet data
	// (sites, alarms, queue depths), so it has an address of its own, loopback by
	// default. Empty (in the file; "off" from the environment or a flag, which cannot
	// carry an empty value) serves no metrics.
	MetricsAddr string `json:"metrics_addr"`
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
	// SweepEvery is how often the domain's sweep runs: expiry, lapses, reminders and
	// command timeouts.
	SweepEvery Duration `json:"sweep_every"`
	// Hold, when set, is how long every order waits after loading before it expires and
	// awaits return, whatever its zone; zero keeps the domain's defaults
	// (cloud.DefaultPolicy: chilled and frozen 24 h, cool and ambient 12 h; see
	// docs/food-safety.md). It may not exceed 24 h, the food-safety cap on how long
	// chilled and frozen food may wait after loading.
	Hold Duration `json:"hold,omitempty"`
	// DefaultTimeZone is the IANA zone (e.g. Asia/Shanghai) of the sites that name none
	// of their own (a site's time_zone): residents and drivers are told times in their
	// site's zone. The binary embeds the zone database (time/tzdata), so a minimal
	// machine or container without /usr/share/zoneinfo loads the same names.
	DefaultTimeZone string `json:"default_time_zone"`
	// MaxBodyBytes bounds API request bodies.
	MaxBodyBytes int64 `json:"max_body_bytes"`
	// LogLevel is debug, info, warn or error; LogFormat text or json.
	LogLevel  string `json:"log_level"`
	LogFormat string `json:"log_format"`
}

// DefaultMetricsAddr is where /metrics is served unless configured: loopback, so only
// a Prometheus (or agent) on the same machine scrapes it. Port 8490 sits outside the
// exporters' range 9100-9999 (all allocated, so any port there is some exporter's on a
// monitored host), away from the usual 8080/8081 (the API and the kiosk), 9090-9093
// (Prometheus, Alertmanager) and the demo's 7400-7406; the edge's default is the next
// port, so both daemons run on one machine unchanged.
const DefaultMetricsAddr = "127.0.0.1:8490"

// DefaultConfig is the embedded, single-machine setup.
func DefaultConfig() Config {
	return Config{
		DataDir:         "data",
		HTTPAddr:        "127.0.0.1:8080",
		MetricsAddr:     DefaultMetricsAddr,
		MQTTListen:      broker.DefaultAddr,
		MQTTUsername:    "cloud:larder",
		CommitMode:      "group",
		SweepEvery:      Duration(time.Minute),
		DefaultTimeZone: "UTC",
		MaxBodyBytes:    64 << 10,
		LogLevel:        "info",
		LogFormat:       "text",
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

// maxHold is the food-safety cap on the hold after loading of chilled and frozen food
// (24 h): Hold applies to every zone, so it may not exceed the strictest cap.
const maxHold = 24 * time.Hour

// policy is the domain's policy: cloud.DefaultPolicy with Hold, when set, applied to
// every zone.
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
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			return fmt.Errorf("cloudd: metrics_addr %q: %w", c.MetricsAddr, err)
		}
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
	if _, err := cloud.LoadZone(c.DefaultTimeZone); err != nil {
		return fmt.Errorf("cloudd: default_time_zone: %w", err)
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

// source is where the configuration comes from: the keys the environment and flags may
// set (the JSON file sets any key of Config). Secrets have no flag.
var source = daemon.Source[Config]{
	Program:   "larder-cloud",
	ConfigEnv: "LARDER_CLOUD_CONFIG",
	Settings: []daemon.Setting[Config]{
		{Env: "LARDER_CLOUD_DATA_DIR", Flag: "data", Usage: "data directory (env LARDER_CLOUD_DATA_DIR; default data)",
			Set: func(c *Config, v string) error { c.DataDir = v; return nil }},
		{Env: "LARDER_CLOUD_HTTP_ADDR", Flag: "http", Usage: "API listen address (env LARDER_CLOUD_HTTP_ADDR; default 127.0.0.1:8080)",
			Set: func(c *Config, v string) error { c.HTTPAddr = v; return nil }},
		{Env: "LARDER_CLOUD_METRICS_ADDR", Flag: "metrics", Usage: "/metrics listen address, for Prometheus; off serves none (env LARDER_CLOUD_METRICS_ADDR; default " + DefaultMetricsAddr + ")",
			Set: func(c *Config, v string) error { c.MetricsAddr = daemon.MetricsAddr(v); return nil }},
		{Env: "LARDER_CLOUD_PUBLIC_URL", Flag: "public-url", Usage: "base URL residents reach the cloud at, for the links in their notices (env LARDER_CLOUD_PUBLIC_URL; default http://<http address>)",
			Set: func(c *Config, v string) error { c.PublicURL = v; return nil }},
		{Env: "LARDER_CLOUD_MQTT_URL", Flag: "mqtt", Usage: "external MQTT broker URL, e.g. tcp://127.0.0.1:1883; empty runs the embedded broker (env LARDER_CLOUD_MQTT_URL)",
			Set: func(c *Config, v string) error { c.MQTTURL = v; return nil }},
		{Env: "LARDER_CLOUD_MQTT_USERNAME", Flag: "mqtt-user", Usage: "MQTT username (env LARDER_CLOUD_MQTT_USERNAME; password only by env LARDER_CLOUD_MQTT_PASSWORD or file)",
			Set: func(c *Config, v string) error { c.MQTTUsername = v; return nil }},
		{Env: "LARDER_CLOUD_MQTT_PASSWORD", Secret: true,
			Set: func(c *Config, v string) error { c.MQTTPassword = v; return nil }},
		{Env: "LARDER_CLOUD_MQTT_LISTEN", Flag: "mqtt-listen", Usage: "embedded broker listen address (env LARDER_CLOUD_MQTT_LISTEN; default " + broker.DefaultAddr + ")",
			Set: func(c *Config, v string) error { c.MQTTListen = v; return nil }},
		{Env: "LARDER_CLOUD_EDGE_MQTT_URL", Flag: "edge-mqtt", Usage: "broker URL given to edges at provisioning (env LARDER_CLOUD_EDGE_MQTT_URL)",
			Set: func(c *Config, v string) error { c.EdgeMQTTURL = v; return nil }},
		{Env: "LARDER_CLOUD_ADMIN_KEY", Secret: true,
			Set: func(c *Config, v string) error { c.AdminKey = v; return nil }},
		{Env: "LARDER_CLOUD_SMS_URL",
			Set: func(c *Config, v string) error { c.SMSURL = v; return nil }},
		{Env: "LARDER_CLOUD_SMS_TOKEN", Secret: true,
			Set: func(c *Config, v string) error { c.SMSToken = v; return nil }},
		{Env: "LARDER_CLOUD_NOTIFY_KEY", Secret: true,
			Set: func(c *Config, v string) error { c.NotifyKey = v; return nil }},
		{Env: "LARDER_CLOUD_COMMIT_MODE",
			Set: func(c *Config, v string) error { c.CommitMode = v; return nil }},
		{Env: "LARDER_CLOUD_SWEEP_EVERY",
			Set: func(c *Config, v string) error { return setDuration(&c.SweepEvery, v) }},
		{Env: "LARDER_CLOUD_HOLD",
			Set: func(c *Config, v string) error { return setDuration(&c.Hold, v) }},
		{Env: "LARDER_CLOUD_DEFAULT_TIME_ZONE", Flag: "time-zone", Usage: "IANA time zone of sites that name none, e.g. Asia/Shanghai (env LARDER_CLOUD_DEFAULT_TIME_ZONE; default UTC)",
			Set: func(c *Config, v string) error { c.DefaultTimeZone = v; return nil }},
		{Env: "LARDER_CLOUD_MAX_BODY_BYTES",
			Set: func(c *Config, v string) (err error) { c.MaxBodyBytes, err = strconv.ParseInt(v, 10, 64); return err }},
		{Env: "LARDER_CLOUD_LOG_LEVEL", Flag: "log-level", Usage: "debug, info, warn or error (env LARDER_CLOUD_LOG_LEVEL)",
			Set: func(c *Config, v string) error { c.LogLevel = v; return nil }},
		{Env: "LARDER_CLOUD_LOG_FORMAT",
			Set: func(c *Config, v string) error { c.LogFormat = v; return nil }},
	},
}

func setDuration(d *Duration, v string) error {
	t, err := time.ParseDuration(v)
	*d = Duration(t)
	return err
}

// Load builds the configuration from DefaultConfig, the file, the environment (getenv,
// usually os.Getenv) and the command-line args (see internal/daemon for the order), and
// validates it.
func Load(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	c, err := source.Load(DefaultConfig(), args, getenv, stderr)
	if err != nil {
		return Config{}, fmt.Errorf("cloudd: %w", err)
	}
	return c, c.Validate()
}
