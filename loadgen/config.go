package loadgen

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Config is one load run. Start from DefaultConfig; the zero value is not usable.
type Config struct {
	// CloudBin, when set, is a larder-cloud binary the run starts itself with a temporary
	// data directory on free loopback ports (and stops at the end); CloudURL, AdminKey,
	// MetricsURL, CloudPID and the raw account are then filled in. Otherwise CloudURL and
	// AdminKey name a running cloud.
	CloudBin string
	CloudURL string
	// AdminKey provisions the sites and creates the platform and ops keys. Secret: from
	// the environment (LARDER_LOAD_ADMIN_KEY), never from a flag.
	AdminKey string
	// Mosquitto, with CloudBin, is a mosquitto binary: the run starts a private broker
	// with the settings of MosquittoConf (deploy/mosquitto/larder.conf, its TLS listener
	// replaced by a loopback one) and the cloud uses it instead of its embedded broker.
	Mosquitto     string
	MosquittoConf string
	// Broker overrides the broker URL the edges connect to (default: the mqtt_url the
	// cloud hands out at provisioning); several comma-separated URLs (the nodes of a
	// broker cluster) are tried in order, as larder-edge does.
	Broker string
	// RawUser and RawPassword are the cloud's MQTT service account, used only for the
	// raw pub→sub baseline (which needs a login that may read what it publishes); empty
	// skips the baseline. RawPassword comes from LARDER_LOAD_RAW_PASSWORD.
	RawUser, RawPassword string
	// MetricsURL is the cloud's metrics listener (for process_resident_memory_bytes);
	// CloudPID, when set, is read from /proc instead.
	MetricsURL string
	CloudPID   int

	// Edges is how many sites are provisioned and how many edges connect.
	Edges int
	// Compartments per site (birth): the first half chilled, a quarter frozen, the rest
	// ambient.
	Compartments int
	// IngestEdges edges publish IngestEvents events in all in the ingest measurement,
	// and as many raw publishers the same number of messages in its baseline.
	IngestEdges  int
	IngestEvents int
	// Rate is orders created per second (each then loaded and picked up), OpenRate remote
	// opens per second, both for Duration or until MaxOrders orders, whichever first.
	Rate      float64
	OpenRate  float64
	Duration  time.Duration
	MaxOrders int
	// Concurrency bounds the HTTP requests in flight and the edges connecting at once.
	Concurrency int
	// Seed drives every random choice (sites, phones, zones); the run prints it.
	Seed uint64

	// Edge behaviour, as larder-edge's defaults (edge/mqtt DefaultConfig).
	TelemetryInterval time.Duration
	OutboxWindow      int
	AckTimeout        time.Duration
	GapGrace          time.Duration
	// BackoffMin and BackoffMax bound the edges' reconnect delay: attempt n waits a
	// random time in [0, min(BackoffMax, BackoffMin·2ⁿ)], as larder-edge does.
	BackoffMin, BackoffMax time.Duration

	// Storm, once the orders are done, restarts the broker with every edge connected
	// (the private Mosquitto killed and started again; with the embedded broker the
	// cloud itself is stopped and started again) and measures how long until every edge
	// is connected again with an event written during the outage acknowledged; it fails
	// past StormTarget. Needs CloudBin.
	Storm       bool
	StormTarget time.Duration

	// Timeout bounds every wait of the run (a connect, a reservation, an ack, the
	// final checks); the whole run ends within Duration plus a few Timeouts.
	Timeout time.Duration
	// AllowRemote permits non-loopback addresses; off, any other host is refused.
	AllowRemote bool
}

// DefaultConfig is a small loopback run: 100 edges, 20 orders and 2 remote opens a
// second for 10 s.
func DefaultConfig() Config {
	return Config{
		Edges:             100,
		Compartments:      16,
		IngestEdges:       100,
		IngestEvents:      10000,
		Rate:              20,
		OpenRate:          2,
		Duration:          10 * time.Second,
		MaxOrders:         100000,
		Concurrency:       64,
		Seed:              1,
		TelemetryInterval: 60 * time.Second,
		OutboxWindow:      100,
		AckTimeout:        30 * time.Second,
		GapGrace:          2 * time.Second,
		BackoffMin:        5 * time.Second,
		BackoffMax:        5 * time.Minute,
		StormTarget:       120 * time.Second,
		Timeout:           30 * time.Second,
		RawUser:           "cloud:larder",
	}
}

// Flags binds c's fields to fs (secrets excepted).
func (c *Config) Flags(fs *flag.FlagSet) {
	fs.StringVar(&c.CloudBin, "start-cloud", c.CloudBin, "larder-cloud binary to start on free loopback ports with a temporary data dir")
	fs.StringVar(&c.CloudURL, "cloud", c.CloudURL, "URL of a running cloud's API (admin key in LARDER_LOAD_ADMIN_KEY)")
	fs.StringVar(&c.Mosquitto, "mosquitto", c.Mosquitto, "with -start-cloud: mosquitto binary to run privately with -mosquitto-conf")
	fs.StringVar(&c.MosquittoConf, "mosquitto-conf", c.MosquittoConf, "Mosquitto settings to run with (default deploy/mosquitto/larder.conf)")
	fs.StringVar(&c.Broker, "broker", c.Broker, "broker URL for the edges, or several comma-separated, tried in order (default: the one provisioning hands out)")
	fs.StringVar(&c.RawUser, "raw-user", c.RawUser, "the cloud's MQTT service account, for the raw baseline (password in LARDER_LOAD_RAW_PASSWORD)")
	fs.StringVar(&c.MetricsURL, "metrics", c.MetricsURL, "the cloud's metrics URL, for its resident memory")
	fs.IntVar(&c.CloudPID, "pid", c.CloudPID, "the cloud's process id, for its resident memory from /proc")
	fs.IntVar(&c.Edges, "edges", c.Edges, "sites provisioned and edges connected")
	fs.IntVar(&c.Compartments, "compartments", c.Compartments, "compartments per site")
	fs.IntVar(&c.IngestEdges, "ingest-edges", c.IngestEdges, "edges publishing at once in the ingest measurement (and raw publishers in its baseline)")
	fs.IntVar(&c.IngestEvents, "ingest-events", c.IngestEvents, "events in the ingest measurement, in all (0 skips it)")
	fs.Float64Var(&c.Rate, "rate", c.Rate, "orders per second (each loaded, then picked up)")
	fs.Float64Var(&c.OpenRate, "open-rate", c.OpenRate, "remote opens per second")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "how long orders and opens are driven")
	fs.IntVar(&c.MaxOrders, "max-orders", c.MaxOrders, "stop after this many orders")
	fs.IntVar(&c.Concurrency, "concurrency", c.Concurrency, "HTTP requests in flight and edges connecting at once")
	fs.Uint64Var(&c.Seed, "seed", c.Seed, "seed of every random choice")
	fs.DurationVar(&c.TelemetryInterval, "telemetry-interval", c.TelemetryInterval, "edge telemetry interval (larder-edge's default)")
	fs.IntVar(&c.OutboxWindow, "outbox-window", c.OutboxWindow, "events on the wire beyond the last event ack (larder-edge's default)")
	fs.DurationVar(&c.AckTimeout, "ack-timeout", c.AckTimeout, "resend unacknowledged events after this long without progress (larder-edge's default)")
	fs.DurationVar(&c.BackoffMin, "backoff-min", c.BackoffMin, "edge reconnect backoff: first attempt within this (larder-edge's default)")
	fs.DurationVar(&c.BackoffMax, "backoff-max", c.BackoffMax, "edge reconnect backoff: never longer than this (larder-edge's default)")
	fs.BoolVar(&c.Storm, "storm", c.Storm, "with -start-cloud: restart the broker after the orders, every edge connected, and time the reconnect storm")
	fs.DurationVar(&c.StormTarget, "storm-target", c.StormTarget, "every edge healthy again within this after the broker restart, or the run fails")
	fs.DurationVar(&c.Timeout, "timeout", c.Timeout, "bound of every single wait")
	fs.BoolVar(&c.AllowRemote, "allow-remote", c.AllowRemote, "allow addresses other than loopback")
}

// Validate reports the first unusable setting.
func (c Config) Validate() error {
	switch {
	case c.CloudBin == "" && (c.CloudURL == "" || c.AdminKey == ""):
		return errors.New("loadgen: either -start-cloud, or -cloud with LARDER_LOAD_ADMIN_KEY")
	case c.Mosquitto != "" && c.CloudBin == "":
		return errors.New("loadgen: -mosquitto needs -start-cloud")
	case c.Storm && c.CloudBin == "":
		return errors.New("loadgen: -storm needs -start-cloud (it restarts the broker the run started)")
	case c.BackoffMin <= 0 || c.BackoffMax < c.BackoffMin || c.StormTarget <= 0:
		return errors.New("loadgen: backoff min must be positive, backoff max at least min, storm target positive")
	case c.Edges < 1 || c.Edges > 100000:
		return errors.New("loadgen: edges must be 1..100000")
	case c.Compartments < 4 || c.Compartments > 256:
		return errors.New("loadgen: compartments must be 4..256")
	case c.IngestEdges < 1 || c.IngestEvents < 0:
		return errors.New("loadgen: ingest edges must be at least 1 and ingest events not negative")
	case c.Rate < 0 || c.OpenRate < 0 || c.Duration < 0 || c.MaxOrders < 0:
		return errors.New("loadgen: rates, duration and max orders must not be negative")
	case c.Concurrency < 1:
		return errors.New("loadgen: concurrency must be at least 1")
	case c.TelemetryInterval <= 0 || c.AckTimeout <= 0 || c.Timeout <= 0 || c.GapGrace < 0:
		return errors.New("loadgen: intervals and timeouts must be positive")
	case c.OutboxWindow < 1 || c.OutboxWindow > 1000:
		return errors.New("loadgen: outbox window must be 1..1000")
	}
	if c.AllowRemote {
		return nil
	}
	for _, u := range append([]string{c.CloudURL, c.MetricsURL}, brokerURLs(c.Broker)...) {
		if u == "" {
			continue
		}
		if err := loopback(u); err != nil {
			return err
		}
	}
	return nil
}

// brokerURLs splits a comma-separated broker list into its URLs, in order (none for "").
func brokerURLs(list string) []string {
	var out []string
	for _, u := range strings.Split(list, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// loopback refuses a URL whose host is not a loopback address.
func loopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("loadgen: %q is not a URL", raw)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("loadgen: %s is not a loopback address (-allow-remote permits it)", raw)
}
