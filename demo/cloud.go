package demo

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// CloudOptions start one larder-cloud.
type CloudOptions struct {
	Name    string // log prefix; empty means "cloud"
	DataDir string // bbolt and the notification outbox
	// HTTP is the API/pages/healthz address; empty picks a free port.
	HTTP string
	// Metrics is the /metrics address (larder-cloud's -metrics); empty picks a free port.
	Metrics string
	// Broker is an external MQTT broker URL (Mosquitto); empty runs the embedded broker
	// on MQTTListen.
	Broker string
	// MQTTListen is the embedded broker's address; empty picks a free port.
	MQTTListen string
	// Sites confines an external-broker cloud to these sites' topics (tests sharing a
	// broker with other processes).
	Sites []string
	// AdminKey bootstraps the first admin API key (only used when the store has none).
	AdminKey string
	// SMSURL is the SMS gateway the cloud posts residents' texts to ({"to","text"});
	// empty: no SMS.
	SMSURL string
	// Hold overrides the pickup hold after loading, for every zone (tests of expiry).
	Hold time.Duration
	// SweepEvery is how often the cloud processes expiry and timeouts; zero keeps its
	// default (1 min).
	SweepEvery time.Duration
	LogLevel   string
	Extra      []string
}

// Cloud is a running larder-cloud.
type Cloud struct {
	*Proc
	Opts CloudOptions
	URL  string // http://HOST:PORT
	// MetricsURL is the /metrics listener's base URL (not the API's: it answers 404 there).
	MetricsURL string
	// BrokerURL is the MQTT broker the edges use: the embedded one or Opts.Broker.
	BrokerURL string
}

// StartCloud starts larder-cloud and waits for /healthz.
func (l *Launcher) StartCloud(ctx context.Context, o CloudOptions) (*Cloud, error) {
	if o.Name == "" {
		o.Name = "cloud"
	}
	if o.LogLevel == "" {
		o.LogLevel = "info"
	}
	var err error
	if o.HTTP == "" {
		if o.HTTP, err = FreeAddr(); err != nil {
			return nil, err
		}
	}
	if o.Broker == "" && o.MQTTListen == "" {
		if o.MQTTListen, err = FreeAddr(); err != nil {
			return nil, err
		}
	}
	if o.Metrics == "" {
		if o.Metrics, err = FreeAddr(); err != nil {
			return nil, err
		}
	}
	check := []string{o.HTTP, o.Metrics}
	if o.Broker == "" {
		check = append(check, o.MQTTListen)
	}
	if err := CheckFree(check...); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(o.DataDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("demo: cloud data dir: %w", err)
	}
	o.DataDir = abs
	args, env := cloudArgs(o)
	p, err := l.Start(o.Name, "larder-cloud", args, env)
	if err != nil {
		return nil, err
	}
	c := &Cloud{Proc: p, Opts: o, URL: "http://" + o.HTTP, MetricsURL: "http://" + o.Metrics, BrokerURL: o.Broker}
	if o.Broker == "" {
		c.BrokerURL = "tcp://" + o.MQTTListen
	}
	if err := p.WaitHealthy(ctx, c.URL+"/healthz", 30*time.Second); err != nil {
		p.Stop()
		return nil, err
	}
	return c, nil
}

// RestartCloud starts the same cloud again on its data directory and addresses.
func (l *Launcher) RestartCloud(ctx context.Context, c *Cloud) (*Cloud, error) {
	return l.StartCloud(ctx, c.Opts)
}

// API returns a REST client of this cloud with key.
func (c *Cloud) API(key string) *API { return &API{URL: c.URL, Key: key} }
