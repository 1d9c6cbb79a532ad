package mqtt

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/larder-lockers/larder/protocol"
)

// Config configures the edge's link to the broker. The zero value is not usable; start
// from DefaultConfig and set Site and Broker.
type Config struct {
	// Site is this edge's site id (protocol.ValidSite). Required.
	Site string
	// Broker is the broker URL: tcp://host:1883, ssl://host:8883 (or tls://, mqtts://),
	// ws://host/mqtt or wss://host/mqtt; or several, comma-separated
	// (tcp://a:1883,tcp://b:1883), the nodes of a broker cluster: every connection
	// attempt tries them in this order and takes the first that accepts (see
	// [Config.Brokers]). Required.
	Broker string
	// TLS is used for ssl:// and wss:// brokers; nil means the system roots.
	TLS *tls.Config
	// Username and Password authenticate to the broker. Password is never logged.
	Username string
	Password string
	// ClientID overrides the MQTT client id, which defaults to "larder-edge-{site}". It
	// must be stable (the persistent session is keyed by it) and unique per edge (the
	// broker kicks the older of two clients with one id).
	ClientID string
	// Software is the edge's software version, sent in the online Status.
	Software string
	// KeepAlive is the MQTT keepalive; the broker publishes the Last Will about 1.5×
	// KeepAlive after the link silently dies.
	KeepAlive time.Duration
	// ConnectTimeout bounds one connection attempt (dial, TLS, CONNACK).
	ConnectTimeout time.Duration
	// OpTimeout bounds every wait on a paho token (subscribe, status, birth, acks).
	OpTimeout time.Duration
	// TelemetryInterval is how often telemetry is published while connected.
	TelemetryInterval time.Duration
	// BackoffMin and BackoffMax bound the reconnect delay: attempt n waits a uniformly
	// random time in [0, min(BackoffMax, BackoffMin·2ⁿ)] ("full jitter").
	BackoffMin time.Duration
	BackoffMax time.Duration
	// OutboxWindow is how many events may be on the wire without the cloud's
	// acknowledgement. It must exceed how many events the cloud batches per EventAck.
	OutboxWindow int
	// AckTimeout is how long the drainer waits for acknowledgement progress before it
	// resends everything unacknowledged (the cloud may have missed messages, e.g. when it
	// was not subscribed yet).
	AckTimeout time.Duration
	// GapGrace is how long a desired delta that arrived ahead of its predecessor is held
	// before the edge gives up waiting and requests a snapshot. Zero requests at once.
	GapGrace time.Duration
	// InboundQueue is the capacity of the queue between paho's callbacks and the worker
	// that applies desired state and commands. When it is full, a message's callback
	// waits for room and its PUBACK with it, so the broker stops delivering more to
	// this edge once its in-flight window is used; nothing is dropped.
	InboundQueue int
	// PollInterval is a safety net: the drainer looks at the outbox this often even when
	// nobody calls Notify.
	PollInterval time.Duration
}

// DefaultConfig returns production defaults; Site and Broker remain to be set.
func DefaultConfig() Config {
	return Config{
		KeepAlive:         30 * time.Second,
		ConnectTimeout:    10 * time.Second,
		OpTimeout:         10 * time.Second,
		TelemetryInterval: 60 * time.Second,
		BackoffMin:        5 * time.Second,
		BackoffMax:        5 * time.Minute,
		OutboxWindow:      100,
		AckTimeout:        30 * time.Second,
		GapGrace:          2 * time.Second,
		InboundQueue:      256,
		PollInterval:      5 * time.Second,
	}
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	if !protocol.ValidSite(c.Site) {
		return fmt.Errorf("mqtt: config: invalid site id %q", c.Site)
	}
	if _, err := c.Brokers(); err != nil {
		return err
	}
	if len(c.ClientID) > 128 {
		return errors.New("mqtt: config: client id longer than 128 characters")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"keepalive", c.KeepAlive}, {"connect timeout", c.ConnectTimeout}, {"op timeout", c.OpTimeout},
		{"telemetry interval", c.TelemetryInterval}, {"backoff min", c.BackoffMin},
		{"backoff max", c.BackoffMax}, {"ack timeout", c.AckTimeout}, {"poll interval", c.PollInterval},
	} {
		if d.v <= 0 {
			return fmt.Errorf("mqtt: config: %s must be positive", d.name)
		}
	}
	switch {
	case c.KeepAlive < time.Second:
		return errors.New("mqtt: config: keepalive must be at least 1s (MQTT counts seconds)")
	case c.BackoffMax < c.BackoffMin:
		return errors.New("mqtt: config: backoff max below backoff min")
	case c.GapGrace < 0:
		return errors.New("mqtt: config: gap grace must not be negative")
	case c.OutboxWindow < 1 || c.OutboxWindow > 1000:
		return errors.New("mqtt: config: outbox window must be 1..1000")
	case c.InboundQueue < 1:
		return errors.New("mqtt: config: inbound queue must be at least 1")
	}
	return nil
}

// Brokers splits Broker into its URLs, in order, each checked: a known scheme, a host,
// no blank entry and no URL twice.
func (c Config) Brokers() ([]string, error) {
	if strings.TrimSpace(c.Broker) == "" {
		return nil, errors.New("mqtt: config: no broker URL")
	}
	var out []string
	for _, raw := range strings.Split(c.Broker, ",") {
		b := strings.TrimSpace(raw)
		if b == "" {
			return nil, fmt.Errorf("mqtt: config: broker list %q has an empty entry", c.Broker)
		}
		u, err := url.Parse(b)
		if err != nil {
			return nil, fmt.Errorf("mqtt: config: broker %q is not a URL", b)
		}
		switch u.Scheme {
		case "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss":
		default:
			return nil, fmt.Errorf("mqtt: config: broker %q: scheme must be tcp, ssl, ws or wss", b)
		}
		if u.Host == "" {
			return nil, fmt.Errorf("mqtt: config: broker %q has no host", b)
		}
		if slices.Contains(out, b) {
			return nil, fmt.Errorf("mqtt: config: broker %q listed twice", b)
		}
		out = append(out, b)
	}
	return out, nil
}

// clientID is the MQTT client id this config connects with.
func (c Config) clientID() string {
	if c.ClientID != "" {
		return c.ClientID
	}
	return protocol.EdgeClientID(c.Site)
}

// LogValue keeps the password out of logs.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("site", c.Site),
		slog.String("broker", c.Broker),
		slog.String("client_id", c.clientID()),
		slog.Bool("auth", c.Username != ""),
	)
}
