package mqtt

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/larder-lockers/larder/protocol"
)

// Config configures the fleet adapter. A zero duration or size means the documented
// default, never "unlimited" or "no timeout".
type Config struct {
	// Broker is the MQTT URL: tcp://host:port (the embedded broker's
	// [broker.Broker.URL], or Mosquitto's), or a comma-separated list of URLs of one
	// broker cluster's nodes ("tcp://a:1883,tcp://b:1883"): paho tries them in order on
	// the first connection and on every reconnect.
	Broker string
	// Username and Password log the cloud in (the embedded broker's service account).
	Username string
	Password string
	// ClientID must be unique on the broker: a second connection with the same id
	// disconnects the first (default "larder-cloud-<random>").
	ClientID string
	// Sites, when non-empty, confines the adapter to these sites: it subscribes to
	// their topics only instead of every site's. For tests that share a broker with
	// other processes; larder-cloud consumes every site, or the owned ones (Owner).
	// Not with Owner.
	Sites []string
	// Owner, when set, confines the adapter to the sites its replica owns, as they
	// change (several replicas sharing one store and one broker; see the package doc).
	// nil: the adapter owns every site, as a single process does. [New] registers
	// with it ([Ownership.OnChange]).
	Owner Ownership
	// SubscribeAll, with Owner, subscribes to every site's topics (wildcards) instead of
	// the owned sites' and drops the messages of sites not owned. For brokers that limit
	// the subscriptions of a session: NATS 2.9 reserves max_ack_pending packet ids for
	// each QoS 1 subscription out of MQTT's 65,535, so a session holds about 63 of them
	// at its default 1024, some ten sites' worth. Each replica then receives every
	// site's messages.
	SubscribeAll bool

	// Fleet is the domain. Required.
	Fleet Fleet

	// Workers is the number of per-site workers (default 8). A site always maps to the
	// same worker, so its messages are processed in arrival order.
	Workers int
	// SiteQueue bounds the events of one site waiting in its worker's queue (default
	// 2000: twice the largest window an edge may use). It is a guard against an edge
	// that ignores its window, not a flow control: an edge keeps at most its window of
	// events (1..1000) beyond the cloud's last ack, and the worker takes its whole queue
	// at once, so a queue holds at most one window of a site and one resend of it. The
	// flow control is the held ack (see the package doc). An event beyond the bound is
	// a protocol violation: it is dropped unacknowledged (the edge still holds it and
	// sends it again), counted as refused and warned about once per WarnEvery; no other
	// site's events are affected. There is no bound on a worker's queue as a whole:
	// it holds at most the windows of its sites, and refusing one site's event because
	// of the others' would make a well-behaved edge resend.
	SiteQueue int
	// BatchMax bounds the events committed in one transaction (default 2048).
	BatchMax int
	// CallTimeout bounds each call into Fleet (default 10 s).
	CallTimeout time.Duration
	// PublishTimeout bounds waiting for the broker's PUBACK (default 10 s).
	PublishTimeout time.Duration
	// ConnectTimeout bounds the first connection (default 10 s).
	ConnectTimeout time.Duration
	// CommandGrace is added to a command's expiry before the cloud declares it
	// TIMED_OUT, covering the edge's own processing and clock skew (default 30 s).
	CommandGrace time.Duration
	// GapHold bounds how far past the high water an event may be held while waiting for
	// a missing sequence (default 1000, the largest window an edge may use); one further
	// ahead is refused, unacknowledged, and the edge sends it again.
	GapHold int
	// WarnEvery is how often a repeated warning (events beyond a window, gaps, undecodable
	// messages, domain errors) is logged, with the count since (default 1 min).
	WarnEvery time.Duration

	// Logger (nil: discard). Registry for metrics (nil: none).
	Logger   *slog.Logger
	Registry prometheus.Registerer
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	if c.Fleet == nil {
		return errors.New("mqtt: Fleet required")
	}
	for _, b := range c.brokers() {
		u, err := url.Parse(b)
		if err != nil || u.Host == "" {
			return fmt.Errorf("mqtt: broker URL %q: want tcp://host:port", b)
		}
		switch u.Scheme {
		case "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss":
		default:
			return fmt.Errorf("mqtt: broker URL %q: unsupported scheme", b)
		}
	}
	if c.Owner != nil && len(c.Sites) > 0 {
		return errors.New("mqtt: Sites and Owner both set: choose one")
	}
	for _, s := range c.Sites {
		if !protocol.ValidSite(s) {
			return fmt.Errorf("mqtt: invalid site id %q", s)
		}
	}
	if c.Workers < 0 || c.SiteQueue < 0 || c.BatchMax < 0 || c.GapHold < 0 || c.WarnEvery < 0 {
		return errors.New("mqtt: negative Workers, SiteQueue, BatchMax, GapHold or WarnEvery")
	}
	return nil
}

// brokers splits Broker into its URLs (one, or a comma-separated list; blanks around the
// commas are allowed). An empty element is kept, so that Validate names it.
func (c Config) brokers() []string {
	parts := strings.Split(c.Broker, ",")
	for i, p := range parts {
		parts[i] = strings.TrimSpace(p)
	}
	return parts
}
