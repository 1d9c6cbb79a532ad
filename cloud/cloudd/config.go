package cloudd

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
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
	// DataDir holds the bbolt file (cloud.db, unless Store names PostgreSQL) and, on
	// first start, admin.key and notify.key.
	DataDir string `json:"data_dir"`
	// Store is where the cloud keeps its state. Empty (the default): the bbolt file
	// cloud.db in DataDir, for one process. A PostgreSQL URL
	// (postgres://larder@db.example.org:5432/larder?sslmode=verify-full, or
	// postgresql://…): the database that every replica of the cloud shares, which needs
	// an external broker (MQTTURL). Its password belongs in the file or in
	// LARDER_CLOUD_STORE, or outside the URL in PGPASSWORD or ~/.pgpass; the -store flag
	// refuses a URL with one, since flags show in ps. Logs show the URL with the password
	// masked (StoreRedacted).
	Store string `json:"store,omitempty"`
	// ReplicaID names this process among the replicas sharing a PostgreSQL store (in its
	// leases and logs): unique per replica, 1 to 64 letters, digits, '-', '_' or '.'.
	// Default: the host name, '-' and 6 random hex characters, new at every start.
	ReplicaID string `json:"replica_id"`
	// LeaseTTL is how long a replica's leases (its sites, the periodic work) last without
	// being renewed: the sites of a replica that died move to the others within about
	// this long. At least 2s; default 10s.
	LeaseTTL Duration `json:"lease_ttl"`
	// HTTPAddr is the API's listen address, also the web pages' and /healthz (where load
	// balancers probe); it does not serve /metrics.
	HTTPAddr string `json:"http_addr"`
	// MetricsAddr serves /metrics alone, for Prometheus: the exposition is fleet data
	// (sites, alarms, queue depths), so it has an address of its own, loopback by
	// default. Empty (in the file; "off" from the environment or a flag, which cannot
	// carry an empty value) serves no metrics.
	MetricsAddr string `json:"metrics_addr"`
	// Pprof also serves Go's runtime profiles (CPU, heap, goroutines, block, mutex) at
	// /debug/pprof/ on MetricsAddr, for sizing and load runs; off by default, since the
	// block and mutex profiles cost a little on every contended lock.
	Pprof bool `json:"pprof,omitempty"`
	// PublicURL is the base URL residents and platforms reach the cloud at, behind any
	// proxy (e.g. https://lockers.example.org): the resident page's link in the code
	// notices is PublicURL/r/{order}#c={code}. Empty: http://HTTPAddr (its real port;
	// 0.0.0.0 read as 127.0.0.1), which suits only a single machine.
	PublicURL string `json:"public_url,omitempty"`
	// MQTTURL is an external broker (e.g. tcp://127.0.0.1:1883, Mosquitto), or several
	// nodes of a broker cluster separated by commas
	// (tcp://10.0.0.1:1883,tcp://10.0.0.2:1883), tried in order when one fails. Schemes:
	// tcp, mqtt, ssl, tls, mqtts, ws, wss. Empty runs the embedded broker on MQTTListen
	// (one process only: not with a PostgreSQL Store).
	MQTTURL string `json:"mqtt_url,omitempty"`
	// MQTTUsername and MQTTPassword log the cloud into the external broker. For the
	// embedded broker they are its service account (the username must contain a
	// character site ids cannot have; the password is drawn at start when empty).
	MQTTUsername string `json:"mqtt_username,omitempty"`
	MQTTPassword string `json:"mqtt_password,omitempty"`
	// MQTTListen is the embedded broker's address.
	MQTTListen string `json:"mqtt_listen"`
	// MQTTSubscribeAll makes a replica of a PostgreSQL store subscribe to every site's
	// topics and drop the messages of the sites it does not own, instead of subscribing
	// to its own sites'. For brokers that limit the subscriptions of one session: NATS
	// 2.9 holds about 63 QoS 1 subscriptions per session at its default max_ack_pending,
	// some ten sites' worth. Every replica then receives every site's messages.
	MQTTSubscribeAll bool `json:"mqtt_subscribe_all,omitempty"`
	// EdgeMQTTURL is the broker URL handed to edges at provisioning, or several separated
	// by commas as in MQTTURL (default: the broker the cloud uses).
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
		ReplicaID:       DefaultReplicaID(),
		LeaseTTL:        Duration(DefaultLeaseTTL),
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

// DefaultLeaseTTL is the default LeaseTTL, and MinLeaseTTL the shortest allowed: a lease
// is renewed several times within its TTL, and a shorter one would expire on an
// ordinary pause of the database or the network.
const (
	DefaultLeaseTTL = 10 * time.Second
	MinLeaseTTL     = 2 * time.Second
)

// Postgres reports whether Store names a PostgreSQL database (else the bbolt file).
func (c Config) Postgres() bool {
	return strings.HasPrefix(c.Store, "postgres://") || strings.HasPrefix(c.Store, "postgresql://")
}

// StoreRedacted is Store with any password in it masked, for logs and errors.
func (c Config) StoreRedacted() string { return redactStore(c.Store) }

func redactStore(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(a store URL that does not parse)"
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// hasPassword reports whether the store URL s carries a password (or does not parse,
// and may).
func hasPassword(s string) bool {
	u, err := url.Parse(s)
	if err != nil {
		return true
	}
	_, inUser := u.User.Password()
	return inUser || u.Query().Has("password")
}

// MQTTURLs is MQTTURL split into the broker URLs, in the order to try them (nil:
// the embedded broker).
func (c Config) MQTTURLs() []string { return splitURLs(c.MQTTURL) }

// EdgeMQTTURLs is EdgeMQTTURL split into the broker URLs (nil: the cloud's).
func (c Config) EdgeMQTTURLs() []string { return splitURLs(c.EdgeMQTTURL) }

func splitURLs(s string) []string {
	if s == "" {
		return nil
	}
	var out []string
	for _, u := range strings.Split(s, ",") {
		out = append(out, strings.TrimSpace(u))
	}
	return out
}

// checkBrokerURLs reports the first of the comma-separated urls that is not a broker URL
// (key names the setting).
func checkBrokerURLs(key, urls string) error {
	for i, s := range splitURLs(urls) {
		u, err := url.Parse(s)
		if err != nil {
			return fmt.Errorf("cloudd: %s: URL %d of the list does not parse: want scheme://host:port", key, i+1)
		}
		if u.Host == "" || u.Port() == "" || !slices.Contains(brokerSchemes, u.Scheme) {
			return fmt.Errorf("cloudd: %s: %q is not a broker URL: want scheme://host:port (schemes %s), several separated by commas",
				key, (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String(), strings.Join(brokerSchemes, ", "))
		}
		if u.User != nil {
			return fmt.Errorf("cloudd: %s: %s://%s carries a user: set mqtt_username and mqtt_password instead", key, u.Scheme, u.Host)
		}
	}
	return nil
}

// brokerSchemes are the URL schemes the MQTT client (paho) dials.
var brokerSchemes = []string{"tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss"}

// checkStore reports what is wrong with a PostgreSQL Store URL.
func (c Config) checkStore() error {
	if c.Store == "" {
		return nil
	}
	if !c.Postgres() {
		return fmt.Errorf("cloudd: store %q: want empty (the bbolt file in data_dir) or a postgres:// or postgresql:// URL", c.StoreRedacted())
	}
	u, err := url.Parse(c.Store)
	if err != nil {
		return fmt.Errorf("cloudd: store: not a URL: %s", c.StoreRedacted())
	}
	if u.Host == "" && u.Query().Get("host") == "" {
		return fmt.Errorf("cloudd: store %s: want a host (postgres://user@host:5432/database)", c.StoreRedacted())
	}
	if u.Fragment != "" {
		return fmt.Errorf("cloudd: store %s: a fragment (#…) has no meaning", c.StoreRedacted())
	}
	if c.Embedded() {
		return errors.New("cloudd: a PostgreSQL store is shared by replicas, which need an external broker they all reach: set mqtt_url (the embedded broker serves one process only)")
	}
	if c.NotifyKey == "" {
		return errors.New("cloudd: a PostgreSQL store needs notify_key (LARDER_CLOUD_NOTIFY_KEY), the same on every replica: it seals the notices and held codes one replica writes and another reads")
	}
	return nil
}

// validReplicaID: 1 to 64 letters, digits, '-', '_' or '.'.
func validReplicaID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// DefaultReplicaID is the host name (its characters that a replica id cannot hold
// replaced by '-', cut to 57), '-' and 6 random hex characters: unique per start, and
// telling the host.
func DefaultReplicaID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "replica"
	}
	b := []byte(host)
	for i, r := range b {
		if !validReplicaID(string(r)) {
			b[i] = '-'
		}
	}
	var rnd [3]byte
	rand.Read(rnd[:])
	return string(b[:min(len(b), 57)]) + "-" + hex.EncodeToString(rnd[:])
}

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
	} else if err := checkBrokerURLs("mqtt_url", c.MQTTURL); err != nil {
		return err
	}
	if err := c.checkStore(); err != nil {
		return err
	}
	if !validReplicaID(c.ReplicaID) {
		return fmt.Errorf("cloudd: replica_id %q: want 1 to 64 letters, digits, '-', '_' or '.'", c.ReplicaID)
	}
	if time.Duration(c.LeaseTTL) < MinLeaseTTL {
		return fmt.Errorf("cloudd: lease_ttl %s: want at least %s", time.Duration(c.LeaseTTL), MinLeaseTTL)
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return fmt.Errorf("cloudd: public_url %q: want an http(s) URL without query, fragment or user", c.PublicURL)
		}
	}
	if err := checkBrokerURLs("edge_mqtt_url", c.EdgeMQTTURL); err != nil {
		return err
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
		{Env: "LARDER_CLOUD_PPROF", Flag: "pprof", Usage: "also serve Go's runtime profiles at /debug/pprof/ on the metrics address: true or false (env LARDER_CLOUD_PPROF; default false)",
			Set: func(c *Config, v string) (err error) { c.Pprof, err = strconv.ParseBool(v); return err }},
		{Env: "LARDER_CLOUD_PUBLIC_URL", Flag: "public-url", Usage: "base URL residents reach the cloud at, for the links in their notices (env LARDER_CLOUD_PUBLIC_URL; default http://<http address>)",
			Set: func(c *Config, v string) error { c.PublicURL = v; return nil }},
		{Env: "LARDER_CLOUD_STORE",
			Set: func(c *Config, v string) error { c.Store = v; return nil }},
		{Flag: "store", Usage: "postgres://user@host:5432/db to share PostgreSQL between replicas (password by env LARDER_CLOUD_STORE, the file, PGPASSWORD or ~/.pgpass); empty: bbolt in the data directory (env LARDER_CLOUD_STORE)",
			Set: func(c *Config, v string) error {
				if hasPassword(v) {
					return errors.New("a password does not belong in a flag (ps shows it): use LARDER_CLOUD_STORE, the file, PGPASSWORD or ~/.pgpass")
				}
				c.Store = v
				return nil
			}},
		{Env: "LARDER_CLOUD_REPLICA_ID", Flag: "replica-id", Usage: "this replica's name among those sharing a PostgreSQL store (env LARDER_CLOUD_REPLICA_ID; default <host name>-<6 random hex>)",
			Set: func(c *Config, v string) error { c.ReplicaID = v; return nil }},
		{Env: "LARDER_CLOUD_LEASE_TTL", Flag: "lease-ttl", Usage: "how long a replica's leases last unrenewed, at least 2s (env LARDER_CLOUD_LEASE_TTL; default 10s)",
			Set: func(c *Config, v string) error { return setDuration(&c.LeaseTTL, v) }},
		{Env: "LARDER_CLOUD_MQTT_URL", Flag: "mqtt", Usage: "external MQTT broker URL, e.g. tcp://127.0.0.1:1883, or several separated by commas (tried in order); empty runs the embedded broker (env LARDER_CLOUD_MQTT_URL)",
			Set: func(c *Config, v string) error { c.MQTTURL = v; return nil }},
		{Env: "LARDER_CLOUD_MQTT_USERNAME", Flag: "mqtt-user", Usage: "MQTT username (env LARDER_CLOUD_MQTT_USERNAME; password only by env LARDER_CLOUD_MQTT_PASSWORD or file)",
			Set: func(c *Config, v string) error { c.MQTTUsername = v; return nil }},
		{Env: "LARDER_CLOUD_MQTT_PASSWORD", Secret: true,
			Set: func(c *Config, v string) error { c.MQTTPassword = v; return nil }},
		{Env: "LARDER_CLOUD_MQTT_LISTEN", Flag: "mqtt-listen", Usage: "embedded broker listen address (env LARDER_CLOUD_MQTT_LISTEN; default " + broker.DefaultAddr + ")",
			Set: func(c *Config, v string) error { c.MQTTListen = v; return nil }},
		{Env: "LARDER_CLOUD_MQTT_SUBSCRIBE_ALL",
			Set: func(c *Config, v string) (err error) { c.MQTTSubscribeAll, err = strconv.ParseBool(v); return err }},
		{Env: "LARDER_CLOUD_EDGE_MQTT_URL", Flag: "edge-mqtt", Usage: "broker URL(s) given to edges at provisioning, separated by commas (env LARDER_CLOUD_EDGE_MQTT_URL)",
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
