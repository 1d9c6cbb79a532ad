package edged

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/larder-lockers/larder/edge"
	"github.com/larder-lockers/larder/edge/bolt"
	"github.com/larder-lockers/larder/edge/hw"
	"github.com/larder-lockers/larder/edge/kiosk"
	"github.com/larder-lockers/larder/edge/mqtt"
	"github.com/larder-lockers/larder/edge/serial"
	"github.com/larder-lockers/larder/internal/buildinfo"
	"github.com/larder-lockers/larder/internal/daemon"
	"github.com/larder-lockers/larder/protocol/board"
)

// Main is the whole edge daemon: store, lock-board bus, poller, thermometer, the
// Locker's flows, the MQTT sync and the kiosk server. Open, then Run, then Close;
// tests start it whole.
type Main struct {
	cfg     Config
	log     *slog.Logger
	reg     *prometheus.Registry
	profile board.Profile
	specs   []edge.CompartmentSpec
	started time.Time

	store    *bolt.Store
	hw       hardware
	bus      *serial.Bus // nil for GPIO banks
	expected *hw.Expected
	poller   *hw.Poller
	therm    hw.Thermometer
	locker   *edge.Locker
	sync     *mqtt.Client
	ln       net.Listener
	srv      *http.Server
	metrics  *daemon.MetricsServer // nil when metrics_addr is empty
	events   chan hw.Event

	closeOnce sync.Once
	closeErr  error
}

// NewMain checks cfg; log nil logs JSON to stderr at cfg.LogLevel.
func NewMain(cfg Config, log *slog.Logger) (*Main, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = daemon.NewLogger(os.Stderr, cfg.LogLevel, "json")
	}
	specs, _ := cfg.Specs()
	return &Main{cfg: cfg, log: log.With("site", cfg.Site), reg: prometheus.NewRegistry(),
		profile: board.Profile(cfg.Profile), specs: specs, events: make(chan hw.Event, 1024)}, nil
}

// Open opens the store and the bus, reads every board once (a dead board does not stop
// the daemon), resumes what a restart interrupted and binds the kiosk address. Nothing
// runs until Run.
func (m *Main) Open(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	m.started = time.Now()
	key, _ := m.cfg.Key()
	m.store, err = bolt.Open(filepath.Join(m.cfg.DataDir, "edge.db"), bolt.Options{Timeout: time.Second, Log: m.log})
	if err != nil {
		return err
	}
	hmap := hw.Map{}
	for _, s := range m.specs {
		hmap[s.Number] = hw.Addr{Board: s.Board, Lock: s.Lock}
	}
	if m.hw, err = m.openHardware(hmap); err != nil {
		return err
	}
	// Relays off first.
	_ = m.hw.Halt()
	m.expected = &hw.Expected{}
	m.poller = hw.NewPoller(hw.PollerConfig{Sensors: m.hw, Interval: time.Duration(m.cfg.PollInterval), Expected: m.expected,
		Emit: func(e hw.Event) { m.events <- e }, Logger: m.log.With("component", "poller")})
	if m.therm, err = m.openThermometer(); err != nil {
		return err
	}

	metrics := edge.NewMetrics(m.reg)
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "larder_outbox_depth",
		Help: "Events in the outbox awaiting the cloud's acknowledgement."}, func() float64 {
		d, _ := m.store.Depth()
		return float64(d)
	}))
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "larder_command_acks_pending",
		Help: "Command acks waiting for the broker to take them (made offline, or not yet published)."}, func() float64 {
		n, err := m.store.CommandAcksPending()
		if err != nil {
			return math.NaN() // 0 would claim that none waits
		}
		return float64(n)
	}))
	if bus := m.bus; bus != nil {
		m.reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "larder_relay_release_failed_total",
				Help: "Modbus relays whose switch-off no try got acknowledged; each is sent again before its board's next poll."},
				func() float64 { return float64(bus.Stats().ReleaseFailed) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "larder_board_exceptions_total",
				Help: "Commands a Modbus board refused with an exception (a board layout that does not fit the board, a failing board)."},
				func() float64 { return float64(bus.Stats().Exceptions) }))
	}
	m.locker, err = edge.New(edge.Config{Site: m.cfg.Site, SiteKey: key, Compartments: m.specs, Zones: m.cfg.limits(),
		Store: m.store, Latch: &hw.Tracked{Latch: m.hw, Expected: m.expected, Map: hmap}, Log: m.log, Metrics: metrics,
		StaggerGap: -1, // the drivers stagger their own pulses
		Notify:     m.notify})
	if err != nil {
		return err
	}
	if m.cfg.Broker != "" {
		mc := mqtt.DefaultConfig()
		mc.Site, mc.Broker, mc.Username, mc.Password, mc.Software = m.cfg.Site, m.cfg.Broker, m.cfg.BrokerUsername, m.cfg.BrokerPassword, buildinfo.String()
		m.sync, err = mqtt.New(mc, mqtt.Ports{Outbox: outboxPort{m.store}, Desired: desiredPort{m.locker},
			Commands: commandsPort{m.locker, m.store}, Reporter: reporter{m}, Link: m.locker}, m.log.With("component", "mqtt"), m.reg)
		if err != nil {
			return err
		}
	} else {
		m.reg.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "larder_broker_connected",
			Help: "1 while connected to the MQTT broker (no broker configured: always 0)."}))
	}
	// The first snapshot is the baseline: door and occupancy state before accepting work.
	if _, err := m.poller.Step(ctx); err != nil {
		m.log.Warn("first hardware read failed; serving anyway", "err", err)
	}
	var baseline []hw.Event // boards already down at start-up
	for len(m.events) > 0 {
		baseline = append(baseline, <-m.events)
	}
	snap := m.poller.Last()
	if err := m.locker.Start(ctx, &snap); err != nil {
		return err
	}
	for _, e := range baseline {
		m.locker.HandleHW(ctx, e)
	}
	m.ln, err = net.Listen("tcp", m.cfg.KioskAddr)
	if err != nil {
		return fmt.Errorf("edged: kiosk listen: %w", err)
	}
	// No Metrics for the kiosk: the exposition is fleet data, served on its own address.
	m.srv = &http.Server{Handler: kiosk.New(kiosk.Config{Resident: m.locker, Driver: m.locker, Health: m.health,
		Log: m.log.With("component", "kiosk")}),
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 60 * time.Second}
	if m.metrics, err = daemon.ListenMetrics(m.cfg.MetricsAddr, promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})); err != nil {
		return fmt.Errorf("edged: %w", err)
	}
	m.log.Info("larder-edge open", "kiosk", m.ln.Addr().String(), "metrics", m.MetricsURL(), "bus", m.cfg.Bus, "compartments", len(m.specs), "software", buildinfo.String())
	return nil
}

func (m *Main) notify() {
	if m.sync != nil {
		m.sync.Notify()
	}
}

// health is /healthz: the store answers and at least one board does.
func (m *Main) health() error {
	if err := m.store.View(func(edge.Tx) error { return nil }); err != nil {
		return errors.New("store unavailable")
	}
	snap := m.poller.Last()
	for _, b := range snap.Boards {
		if b.Online {
			return nil
		}
	}
	return errors.New("no lock board answers")
}

// KioskURL is the kiosk's base URL (after Open).
func (m *Main) KioskURL() string { return "http://" + m.ln.Addr().String() }

// MetricsURL is the base URL of the /metrics listener (after Open; the real port when
// MetricsAddr asked for port 0); "" when metrics are off.
func (m *Main) MetricsURL() string { return m.metrics.URL() }

// Locker is the core, for tests.
func (m *Main) Locker() *edge.Locker { return m.locker }

// Store is the database, for tests.
func (m *Main) Store() *bolt.Store { return m.store }

// Run serves until ctx ends, then returns nil (or the first fatal error).
func (m *Main) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	goRun := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	goRun(func() { _ = m.poller.Run(ctx) })
	goRun(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case e := <-m.events:
				m.locker.HandleHW(ctx, e)
			}
		}
	})
	goRun(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				m.locker.Tick(ctx)
				if time.Since(last) > time.Hour {
					last = time.Now()
					_, _ = m.store.Prune(time.Now())
				}
			}
		}
	})
	if m.therm != nil {
		goRun(func() {
			t := time.NewTicker(time.Duration(m.cfg.TempInterval))
			defer t.Stop()
			for {
				if rs, err := m.therm.Read(ctx); err == nil {
					m.locker.Temperatures(ctx, rs)
				} else if ctx.Err() == nil {
					m.log.Warn("temperature read failed", "err", err)
				}
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		})
	}
	if m.sync != nil {
		goRun(func() { _ = m.sync.Run(ctx) })
	}
	goRun(func() {
		if err := m.srv.Serve(m.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("edged: kiosk: %w", err)
		}
	})
	goRun(func() {
		if err := m.metrics.Serve(); err != nil {
			errc <- fmt.Errorf("edged: %w", err)
		}
	})
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	_ = m.srv.Shutdown(sctx)
	_ = m.metrics.Shutdown(sctx)
	scancel()
	cancel()
	wg.Wait()
	m.locker.WaitCommands()
	return err
}

// Close halts the hardware and closes everything, in reverse order of Open. Idempotent.
func (m *Main) Close() error {
	m.closeOnce.Do(func() {
		var errs []error
		if m.hw != nil {
			errs = append(errs, m.hw.Halt(), m.hw.Close())
		}
		if m.therm != nil {
			if c, ok := m.therm.(io.Closer); ok {
				errs = append(errs, c.Close())
			}
		}
		if m.srv != nil {
			errs = append(errs, m.srv.Close())
		} else if m.ln != nil {
			errs = append(errs, m.ln.Close())
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		errs = append(errs, m.metrics.Shutdown(ctx))
		cancel()
		if m.store != nil {
			errs = append(errs, m.store.Close())
		}
		m.closeErr = errors.Join(errs...)
	})
	return m.closeErr
}

// Exec is the whole program (internal/daemon.Exec): load the configuration, open, run
// until ctx ends, close. It returns the exit status: 2 for a refused configuration, 1
// when the daemon fails to open, stops with an error or fails to close (the relays
// included), else 0.
func Exec(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	return daemon.Exec(ctx, "larder-edge", stderr, func() (daemon.Main, func(error), error) {
		cfg, err := Load(args, getenv, stderr)
		if err != nil {
			return nil, nil, err
		}
		m, err := NewMain(cfg, daemon.NewLogger(stderr, cfg.LogLevel, "json"))
		return m, nil, err
	})
}
