package sim

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/larder-lockers/larder/protocol/board"
)

// Config configures a whole simulator (Main).
type Config struct {
	Profile  board.Profile
	Boards   int
	Polarity board.Polarity // bcc8a lock feedback (modbus-rtu door input) polarity the boards emit
	// Exactly one of PTY and Listen: serve the bus on a new pseudo-terminal,
	// or on TCP at "tcp://HOST:PORT" (port 0 picks a free one).
	PTY    bool
	Listen string
	// Control is the control API's HOST:PORT, loopback only; "" disables it.
	Control string
	// Zones is a zone map, see ParseZones ("" = every compartment chilled).
	Zones string
	// Scenario is a scenario file replayed from start-up ("" = none).
	Scenario   string
	Baud       int           // zero: the profile's default
	Turnaround time.Duration // zero: DefaultTurnaround
	Pulse      time.Duration // zero: 300 ms
	OutsideC   float64
	Events     bool   // bcc8a unsolicited 0x82 frames
	Seed       uint64 // line-fault RNG seed
	Clock      Clock  // nil: RealClock
	Logger     *slog.Logger
	// Stdout receives the "larder-sim: serial on ..." announcements; nil discards.
	Stdout io.Writer
}

// DefaultConfig is one kerong board on a pty, control API on 127.0.0.1:7480.
func DefaultConfig() Config {
	return Config{
		Profile:  board.KerongCU16,
		Boards:   1,
		PTY:      true,
		Control:  "127.0.0.1:7480",
		OutsideC: 25,
		Seed:     1,
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if !c.Profile.Valid() {
		return fmt.Errorf("sim: profile %q: want one of %v", c.Profile, board.Profiles)
	}
	if c.Boards < 1 || c.Boards > c.Profile.MaxBoards() {
		return fmt.Errorf("sim: boards %d: want 1-%d for %s", c.Boards, c.Profile.MaxBoards(), c.Profile)
	}
	if c.PTY == (c.Listen != "") {
		return errors.New("sim: want exactly one of --pty and --listen tcp://HOST:PORT")
	}
	if c.Listen != "" {
		if _, err := tcpAddr(c.Listen); err != nil {
			return err
		}
	}
	if c.Control != "" {
		host, _, err := net.SplitHostPort(c.Control)
		if err != nil {
			return fmt.Errorf("sim: control %q: %w", c.Control, err)
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return fmt.Errorf("sim: control %q: must be a loopback address (it can force doors open)", c.Control)
		}
	}
	if c.Baud < 0 || c.Turnaround < 0 || c.Pulse < 0 {
		return errors.New("sim: baud, turnaround and pulse must not be negative")
	}
	if math.IsNaN(c.OutsideC) || c.OutsideC < -60 || c.OutsideC > 70 {
		return fmt.Errorf("sim: outside temperature %v", c.OutsideC)
	}
	if _, err := ParseZones(c.Zones, c.Boards*c.Profile.LocksPerBoard()); err != nil {
		return err
	}
	return nil
}

func tcpAddr(s string) (string, error) {
	a, ok := strings.CutPrefix(s, "tcp://")
	if !ok {
		return "", fmt.Errorf("sim: listen %q: want tcp://HOST:PORT", s)
	}
	if _, _, err := net.SplitHostPort(a); err != nil {
		return "", fmt.Errorf("sim: listen %q: %w", s, err)
	}
	return a, nil
}

// ParseFlags reads the larder-sim command line.
func ParseFlags(args []string, stderr io.Writer) (Config, error) {
	c := DefaultConfig()
	c.PTY = false
	fs := flag.NewFlagSet("larder-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	profile := fs.String("profile", string(c.Profile), "board profile: kerong-cu16, bcc8a or modbus-rtu")
	polarity := fs.String("polarity", "normal", "bcc8a lock feedback, modbus-rtu door input polarity: normal or inverted")
	fs.IntVar(&c.Boards, "boards", c.Boards, "number of boards on the bus")
	fs.BoolVar(&c.PTY, "pty", false, "serve the bus on a new pseudo-terminal (path printed on stdout)")
	fs.StringVar(&c.Listen, "listen", "", "serve the bus on TCP, tcp://HOST:PORT, like an RS-485-to-Ethernet converter")
	fs.StringVar(&c.Control, "control", c.Control, "control API HOST:PORT (loopback); empty disables it")
	fs.StringVar(&c.Zones, "zones", "", `zone map over compartments 1..N, e.g. "chilled:1-8,frozen:9-12,ambient:13-16" (default all chilled)`)
	fs.StringVar(&c.Scenario, "scenario", "", "scenario file (JSON timed actions) replayed from start-up")
	fs.IntVar(&c.Baud, "baud", 0, "line speed (default: the profile's)")
	fs.DurationVar(&c.Turnaround, "turnaround", DefaultTurnaround, "board turnaround before a reply")
	fs.DurationVar(&c.Pulse, "pulse", 300*time.Millisecond, "latch pulse length of kerong-cu16 and bcc8a boards (modbus-rtu: the edge times it)")
	fs.Float64Var(&c.OutsideC, "outside", c.OutsideC, "initial outside temperature, °C")
	fs.BoolVar(&c.Events, "events", false, "bcc8a: send unsolicited 0x82 frames on lock changes")
	fs.Uint64Var(&c.Seed, "seed", c.Seed, "seed of the line-fault RNG")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	var err error
	if c.Profile, err = board.ParseProfile(*profile); err != nil {
		return Config{}, err
	}
	if c.Polarity, err = board.ParsePolarity(*polarity); err != nil {
		return Config{}, err
	}
	return c, c.Validate()
}

// Main is the whole simulator: world, bus server, control API and scenario.
//
// Use: m, _ := NewMain(cfg); go m.Run(ctx); <-m.Ready(); then SerialPath
// (pty) or SerialAddr (TCP) and ControlURL. Or call Open first to bind
// synchronously, then Run. Close is idempotent.
type Main struct {
	cfg   Config
	log   *slog.Logger
	world *World
	bus   *Bus

	openOnce  sync.Once
	openErr   error
	ready     chan struct{}
	ptmx, pts *os.File
	serialLn  net.Listener
	controlLn net.Listener
	http      *http.Server
	scenario  *Scenario

	life context.Context // ends at Close; scenarios run under it
	stop context.CancelFunc

	mu        sync.Mutex // guards closed against runScenario's bg.Add
	closed    bool
	bg        sync.WaitGroup
	closeOnce sync.Once // a second Close waits for the first and returns its error
	closeErr  error
}

// NewMain validates cfg and builds the world.
func NewMain(cfg Config) (*Main, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	zones, _ := ParseZones(cfg.Zones, cfg.Boards*cfg.Profile.LocksPerBoard())
	w, err := NewWorld(WorldConfig{
		Profile: cfg.Profile, Boards: cfg.Boards, Zones: zones,
		Pulse: cfg.Pulse, Outside: cfg.OutsideC,
	}, cfg.Clock)
	if err != nil {
		return nil, err
	}
	bus := NewBus(w, BusConfig{
		Polarity: cfg.Polarity, Baud: cfg.Baud, Turnaround: cfg.Turnaround,
		Seed: cfg.Seed, Events: cfg.Events, Logger: log,
	})
	m := &Main{cfg: cfg, log: log, world: w, bus: bus, ready: make(chan struct{})}
	m.life, m.stop = context.WithCancel(context.Background())
	return m, nil
}

// World is the simulated hardware, for tests that act on it directly.
func (m *Main) World() *World { return m.world }

// Bus is the line server (baud, turnaround, counters).
func (m *Main) Bus() *Bus { return m.bus }

// Ready is closed once Open has succeeded.
func (m *Main) Ready() <-chan struct{} { return m.ready }

// SerialPath is the pty slave device the edge opens ("" on TCP).
func (m *Main) SerialPath() string {
	if m.pts == nil {
		return ""
	}
	return m.pts.Name()
}

// SerialAddr is the TCP HOST:PORT of the bus ("" on a pty).
func (m *Main) SerialAddr() string {
	if m.serialLn == nil {
		return ""
	}
	return m.serialLn.Addr().String()
}

// ControlURL is the control API's base URL, e.g. "http://127.0.0.1:7480".
func (m *Main) ControlURL() string {
	if m.controlLn == nil {
		return ""
	}
	return "http://" + m.controlLn.Addr().String()
}

// Open binds the pty or TCP listener and the control listener, reads the
// scenario file and announces the addresses on Stdout. Run calls it.
func (m *Main) Open() error {
	m.openOnce.Do(func() { m.openErr = m.open() })
	return m.openErr
}

func (m *Main) open() (err error) {
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	if m.cfg.Scenario != "" {
		data, err := os.ReadFile(m.cfg.Scenario)
		if err != nil {
			return fmt.Errorf("sim: scenario: %w", err)
		}
		s, err := ParseScenario(data)
		if err != nil {
			return fmt.Errorf("sim: scenario %s: %w", m.cfg.Scenario, err)
		}
		m.scenario = &s
	}
	out := m.cfg.Stdout
	if out == nil {
		out = io.Discard
	}
	if m.cfg.PTY {
		if m.ptmx, m.pts, err = openPTY(); err != nil {
			return err
		}
		fmt.Fprintf(out, "larder-sim: serial on %s (%s, %d boards, %d baud)\n", m.pts.Name(), m.cfg.Profile, m.cfg.Boards, m.bus.Baud())
	} else {
		addr, _ := tcpAddr(m.cfg.Listen)
		if m.serialLn, err = net.Listen("tcp", addr); err != nil {
			return fmt.Errorf("sim: listen: %w", err)
		}
		fmt.Fprintf(out, "larder-sim: serial on tcp://%s (%s, %d boards, %d baud)\n", m.serialLn.Addr(), m.cfg.Profile, m.cfg.Boards, m.bus.Baud())
	}
	if m.cfg.Control != "" {
		if m.controlLn, err = net.Listen("tcp", m.cfg.Control); err != nil {
			return fmt.Errorf("sim: control listen: %w", err)
		}
		m.http = &http.Server{
			Handler:           NewControl(m.world, m.bus, m.runScenario, m.log),
			ReadHeaderTimeout: 5 * time.Second,
		}
		fmt.Fprintf(out, "larder-sim: control on %s\n", m.ControlURL())
	}
	close(m.ready)
	return nil
}

// runScenario replays s in the background until it ends or Main closes.
func (m *Main) runScenario(s Scenario) {
	m.mu.Lock()
	ctx := m.life
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.bg.Add(1)
	m.mu.Unlock()
	go func() {
		defer m.bg.Done()
		failed, err := s.Run(ctx, m.world, m.log)
		m.log.Info("scenario done", "actions", len(s.Actions), "failed", failed, "err", err)
	}()
}

// Run serves until ctx is done (then returns nil) or serving fails.
func (m *Main) Run(ctx context.Context) error {
	if err := m.Open(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	errc := make(chan error, 2)
	if m.http != nil {
		go func() {
			if err := m.http.Serve(m.controlLn); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("sim: control: %w", err)
			}
		}()
	}
	go func() {
		if m.ptmx != nil {
			errc <- m.bus.Serve(ctx, m.ptmx)
		} else {
			errc <- m.serveTCP(ctx)
		}
	}()
	if m.scenario != nil {
		m.runScenario(*m.scenario)
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	cancel()
	m.Close()
	return err
}

// serveTCP accepts one bus master at a time; a new connection replaces the
// old one, as RS-485-to-Ethernet converters do, so a restarted edge gets in.
func (m *Main) serveTCP(ctx context.Context) error {
	var cur context.CancelFunc
	var done chan struct{}
	for {
		conn, err := m.serialLn.Accept()
		if err != nil {
			if cur != nil {
				cur()
				<-done
			}
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("sim: accept: %w", err)
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true) // paced bytes must leave when written
		}
		if cur != nil {
			cur()
			<-done
		}
		var cctx context.Context
		cctx, cur = context.WithCancel(ctx)
		done = make(chan struct{})
		go func(c net.Conn, d chan struct{}) {
			defer close(d)
			if err := m.bus.Serve(cctx, c); err != nil {
				m.log.Info("bus connection ended", "err", err)
			}
		}(conn, done)
	}
}

// Close stops serving and releases the pty and listeners. Idempotent.
func (m *Main) Close() error {
	m.closeOnce.Do(func() { m.closeErr = m.close() })
	return m.closeErr
}

func (m *Main) close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.stop()
	var errs []error
	if m.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		errs = append(errs, m.http.Shutdown(ctx))
		cancel()
	}
	if m.controlLn != nil {
		if err := m.controlLn.Close(); !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if m.serialLn != nil {
		if err := m.serialLn.Close(); !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if m.ptmx != nil {
		if err := m.ptmx.Close(); !errors.Is(err, os.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if m.pts != nil {
		errs = append(errs, m.pts.Close())
	}
	m.bg.Wait()
	return errors.Join(errs...)
}
