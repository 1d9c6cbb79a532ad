package cloudd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/cloud/bolt"
	"github.com/larder-lockers/larder/cloud/broker"
	lhttp "github.com/larder-lockers/larder/cloud/http"
	"github.com/larder-lockers/larder/cloud/lease"
	"github.com/larder-lockers/larder/cloud/mqtt"
	"github.com/larder-lockers/larder/cloud/notify"
	"github.com/larder-lockers/larder/cloud/pg"
	"github.com/larder-lockers/larder/cloud/web"
	"github.com/larder-lockers/larder/internal/buildinfo"
	"github.com/larder-lockers/larder/internal/daemon"
)

// Main is larder-cloud, whole: store, domain, broker (embedded or external), fleet
// adapter, API. Tests start it as the binary does: NewMain, Open, Run (or Close).
type Main struct {
	cfg Config
	log *slog.Logger

	store   cloud.Store
	db      *bolt.DB       // the bbolt store, or nil
	pg      *pg.Store      // the PostgreSQL store, or nil
	leases  *lease.Manager // this replica's leases (PostgreSQL store), or nil
	svc     *cloud.Service
	reg     *prometheus.Registry
	broker  *broker.Broker
	fleet   *mqtt.Adapter
	worker  *notify.Worker
	queue   noticeQueue
	pages   *web.Handler
	ln      net.Listener
	httpSrv *http.Server
	metrics *daemon.MetricsServer // nil when metrics_addr is empty

	brokerURL string
	cancel    context.CancelFunc // stops the service loop
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// NewMain checks cfg; nothing starts before Open. A nil log discards.
func NewMain(cfg Config, log *slog.Logger) (*Main, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Main{cfg: cfg, log: log}, nil
}

// Open opens the store, bootstraps the admin key, counts the time the cloud was down as
// an outage of every site (cloud.Service.Resume), starts the broker (embedded mode),
// connects the fleet adapter and listens for the API. On error everything opened so far
// is closed.
func (m *Main) Open(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	m.reg = prometheus.NewRegistry()
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := m.openStore(ctx); err != nil {
		return err
	}
	// One key seals what waits in clear of a digest: the outbox's notices and the codes
	// held on orders until the resident may be told them.
	key, err := m.queueKey()
	if err != nil {
		return err
	}
	opt := cloud.Options{Store: m.store, Policy: m.cfg.policy(), Logger: m.log.With("component", "cloud"), CodeKey: key,
		TimeZone: m.cfg.DefaultTimeZone}
	if m.pg != nil {
		// Replicas: this one owns the sites and the periodic work it holds leases for.
		m.leases, err = lease.New(m.pg.Pool(), lease.Config{ReplicaID: m.cfg.ReplicaID, TTL: time.Duration(m.cfg.LeaseTTL),
			Sites:  func(ctx context.Context) ([]string, error) { return m.svc.SiteIDs(ctx) },
			Logger: m.log.With("component", "lease"), Registry: m.reg})
		if err != nil {
			return err
		}
		opt.Work = m.leases.Work
	}
	m.svc = cloud.New(opt)
	if err := m.bootstrapKey(ctx); err != nil {
		return err
	}
	// Before the fleet adapter hears any edge: the time this cloud was down is an
	// outage of every site, which their first status after the restart settles.
	gap, err := m.svc.Resume(ctx)
	if err != nil {
		return err
	}
	if gap > 0 {
		m.log.Info("cloud was down", "seconds", gap.Seconds())
	}

	m.brokerURL = m.cfg.MQTTURL
	user, pass := m.cfg.MQTTUsername, m.cfg.MQTTPassword
	if m.cfg.Embedded() {
		if pass == "" {
			var b [24]byte
			rand.Read(b[:])
			pass = hex.EncodeToString(b[:])
		}
		m.broker, err = broker.Start(broker.Config{Addr: m.cfg.MQTTListen, Credentials: edgeLogins{m.svc},
			ServiceUser: user, ServicePassword: pass, HoldEdges: true, Logger: m.log, Registry: m.reg})
		if err != nil {
			return fmt.Errorf("cloudd: embedded broker: %w", err)
		}
		m.brokerURL = m.broker.URL()
	}
	fc := mqtt.Config{Broker: m.brokerURL, Username: user, Password: pass, Fleet: fleet{m.svc},
		Logger: m.log.With("component", "fleet"), Registry: m.reg}
	if m.leases != nil {
		fc.Owner, fc.SubscribeAll = m.leases, m.cfg.MQTTSubscribeAll
	}
	m.fleet, err = mqtt.New(fc)
	if err != nil {
		return err
	}
	if err := m.fleet.Start(ctx); err != nil {
		return err
	}
	if m.broker != nil {
		m.broker.AcceptEdges() // the adapter has subscribed: nothing an edge sends is lost
	}
	// Listen before the notifier is built: the resident links it writes default to the
	// real address (port 0 in tests).
	if m.ln, err = net.Listen("tcp", m.cfg.HTTPAddr); err != nil {
		return fmt.Errorf("cloudd: listen %s: %w", m.cfg.HTTPAddr, err)
	}
	notifier, err := m.openNotify(m.PublicURL(), key)
	if err != nil {
		return err
	}
	m.svc.SetPorts(m.fleet, m.fleet, notifier)

	edgeURL := m.cfg.EdgeMQTTURL
	if edgeURL == "" {
		edgeURL = m.brokerURL
	}
	api := lhttp.New(lhttp.Options{Service: m.svc, Logger: m.log.With("component", "http"), Registry: m.reg,
		Health: m.health, MQTTURL: edgeURL, MaxBody: m.cfg.MaxBodyBytes})
	// The web pages (ops dashboard, driver and resident pages) share the listener: the
	// API at "/", the pages under their own prefixes.
	m.pages = web.New(m.svc, web.Options{Logger: m.log.With("component", "web"), Backlog: m.queue, Registry: m.reg})
	mux := http.NewServeMux()
	mux.Handle("/", api)
	m.pages.Mount(mux)
	m.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 32 << 10}
	// Metrics on their own address: the API's listener may face the internet, the
	// exposition is fleet data.
	if m.metrics, err = daemon.ListenMetrics(m.cfg.MetricsAddr, promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})); err != nil {
		return fmt.Errorf("cloudd: %w", err)
	}
	if m.cfg.Pprof {
		m.metrics.ServeProfiles()
	}
	m.log.Info("larder-cloud open", "version", buildinfo.String(), "http", m.HTTPURL(), "metrics", m.MetricsURL(), "public_url", m.PublicURL(), "mqtt", m.brokerURL,
		"embedded_broker", m.cfg.Embedded(), "data", m.cfg.DataDir, "store", m.storeName(), "replica", m.replica())
	return nil
}

// bootstrapKey installs the configured admin key, or draws one into DataDir/admin.key
// when the store has no key at all (first start). The key itself is never logged.
func (m *Main) bootstrapKey(ctx context.Context) error {
	if m.cfg.AdminKey != "" {
		return m.svc.EnsureKey(ctx, m.cfg.AdminKey, cloud.RoleAdmin, "admin")
	}
	has, err := m.svc.HasKeys(ctx)
	if err != nil || has {
		return err
	}
	var b [32]byte
	rand.Read(b[:])
	key := cloud.KeyPrefix + hex.EncodeToString(b[:])
	path := filepath.Join(m.cfg.DataDir, "admin.key")
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		return fmt.Errorf("cloudd: write %s: %w", path, err)
	}
	if err := m.svc.EnsureKey(ctx, key, cloud.RoleAdmin, "admin"); err != nil {
		return err
	}
	m.log.Warn("no API key existed: an admin key was written; read it and delete the file", "path", path)
	return nil
}

func (m *Main) health(ctx context.Context) error {
	if err := m.store.View(ctx, func(cloud.Tx) error { return nil }); err != nil {
		return errors.New("store unavailable")
	}
	return nil
}

// HTTPURL is the API's base URL (with the real port when HTTPAddr asked for port 0).
func (m *Main) HTTPURL() string {
	if m.ln == nil {
		return ""
	}
	return "http://" + m.ln.Addr().String()
}

// MetricsURL is the base URL of the /metrics listener (the real port when MetricsAddr
// asked for port 0); "" when metrics are off.
func (m *Main) MetricsURL() string { return m.metrics.URL() }

// PublicURL is the base URL residents reach the cloud at (the resident page's links):
// the configured public_url, else derived from the listener's real address, with an
// unspecified host (0.0.0.0, ::) read as 127.0.0.1.
func (m *Main) PublicURL() string {
	if m.cfg.PublicURL != "" {
		return strings.TrimRight(m.cfg.PublicURL, "/")
	}
	if m.ln == nil {
		return ""
	}
	return derivedURL(m.ln.Addr().String())
}

// derivedURL is the default public URL of an HTTP listen address.
func derivedURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// BrokerURL is the MQTT broker the cloud uses (the embedded one's real address).
func (m *Main) BrokerURL() string { return m.brokerURL }

// Service is the domain, for tests and tools.
func (m *Main) Service() *cloud.Service { return m.svc }

// Run serves the API and runs the domain's loop (outbound delivery, sweeps) until ctx
// ends, then closes everything. It returns the first fatal error, or nil.
func (m *Main) Run(ctx context.Context) error {
	loop, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.wg.Add(3)
	if m.leases != nil {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			if err := m.leases.Run(loop); err != nil {
				m.log.Error("leases", "err", err)
			}
		}()
	}
	go func() {
		defer m.wg.Done()
		m.svc.Run(loop, time.Duration(m.cfg.SweepEvery))
	}()
	go func() {
		defer m.wg.Done()
		m.purgeNotices(loop)
	}()
	go func() {
		defer m.wg.Done()
		m.worker.Run(loop)
	}()
	errc := make(chan error, 1)
	go func() {
		if err := m.httpSrv.Serve(m.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
		close(errc)
	}()
	metricsErr := make(chan error, 1)
	go func() {
		if err := m.metrics.Serve(); err != nil {
			metricsErr <- err
		}
	}()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	case err = <-metricsErr:
	}
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	return err
}

// Close stops in reverse order of Open: the metrics listener, the API (draining requests
// for up to 5 s), the domain loop (after delivering what is queued), the fleet adapter,
// the domain (its last heartbeat, see cloud.Service.Resume), the broker and the store.
// It is idempotent.
func (m *Main) Close() error {
	m.closeOnce.Do(func() {
		var errs []error
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, m.metrics.Shutdown(ctx))
		cancel()
		if m.pages != nil {
			m.pages.Close() // ends the event streams, which Shutdown would wait for
		}
		if m.httpSrv != nil {
			// Requests in flight get 5 s to finish. A connection still busy then (or
			// one a client opened and never used, which net/http counts as busy for
			// its first 5 s) is closed: the stop goes on, with a warning, not an error.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := m.httpSrv.Shutdown(ctx); errors.Is(err, context.DeadlineExceeded) {
				m.log.Warn("cloudd: API connections still open after 5 s; closing them")
				errs = append(errs, m.httpSrv.Close())
			} else if err != nil {
				errs = append(errs, err)
			}
			cancel()
		} else if m.ln != nil {
			m.ln.Close()
		}
		if m.cancel != nil {
			m.cancel()
			m.wg.Wait()
		}
		if m.svc != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			m.svc.Flush(ctx)
			cancel()
		}
		if m.svc != nil && m.fleet != nil {
			// The last heartbeat: the time until the next start counts as an outage
			// (written only by the replica that holds the periodic work).
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := m.svc.Stop(ctx); !errors.Is(err, cloud.ErrFenced) { // fenced: the work moved on
				errs = append(errs, err)
			}
			cancel()
		}
		if m.leases != nil {
			// Hand the sites over now rather than after the lease TTL: the adapter
			// unsubscribes from each as it is released.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			errs = append(errs, m.leases.Close(ctx))
			cancel()
		}
		if m.fleet != nil {
			errs = append(errs, m.fleet.Close())
		}
		if m.broker != nil {
			errs = append(errs, m.broker.Close())
		}
		if m.db != nil {
			errs = append(errs, m.db.Close())
		}
		if m.pg != nil {
			m.pg.Close()
		}
		m.closeErr = errors.Join(errs...)
	})
	return m.closeErr
}

// openStore opens the configured store: the PostgreSQL database (migrated to this
// binary's schema) or the bbolt file in DataDir.
func (m *Main) openStore(ctx context.Context) error {
	if m.cfg.Postgres() {
		st, err := pg.Open(ctx, m.cfg.Store, pg.Options{Registry: m.reg})
		if err != nil {
			return fmt.Errorf("cloudd: store %s: %w", m.cfg.StoreRedacted(), err)
		}
		m.pg, m.store = st, st
		return nil
	}
	mode, _ := m.cfg.commitMode()
	db, err := bolt.Open(filepath.Join(m.cfg.DataDir, "cloud.db"), bolt.Options{Mode: mode})
	if err != nil {
		return err
	}
	m.db, m.store = db, db
	m.reg.MustRegister(newStoreCollector(db.Stats()))
	return nil
}

// storeName says which store is open, for the start-up line (no password).
func (m *Main) storeName() string {
	if m.pg != nil {
		return m.cfg.StoreRedacted()
	}
	mode, _ := m.cfg.commitMode()
	return "bbolt " + filepath.Join(m.cfg.DataDir, "cloud.db") + " (" + mode.String() + ")"
}

// replica is this process's replica id, or "" for a cloud of one process.
func (m *Main) replica() string {
	if m.leases == nil {
		return ""
	}
	return m.cfg.ReplicaID
}

// Exec is the whole program (internal/daemon.Exec): load the configuration, open, run
// until ctx ends, close. It returns the exit status: 2 for a refused configuration
// (said on stderr), 1 when the cloud fails to open or stops with an error (logged), else
// 0.
func Exec(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "copy-store" {
		return CopyStore(ctx, args[1:], getenv, os.Stdout, stderr)
	}
	return daemon.Exec(ctx, "larder-cloud", stderr, func() (daemon.Main, func(error), error) {
		cfg, err := Load(args, getenv, stderr)
		if err != nil {
			return nil, nil, err
		}
		log := daemon.NewLogger(stderr, cfg.LogLevel, cfg.LogFormat)
		m, err := NewMain(cfg, log)
		return m, func(err error) { log.Error("larder-cloud stopped", "err", err) }, err
	})
}
