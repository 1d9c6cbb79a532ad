package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/larder-lockers/larder/edge/hw"
	"github.com/larder-lockers/larder/protocol"
)

// Latch releases one compartment's latch; edge/hw documents the contract (nil only once
// the door is confirmed released; errors wrap hw.ErrJammed or hw.ErrBoardOffline).
type Latch interface {
	Unlock(ctx context.Context, compartment int) error
}

// Config configures a Locker. Site, SiteKey, Compartments, Store and Latch are required;
// a zero duration or count means the default named beside it.
type Config struct {
	Site         string
	SiteKey      []byte
	Compartments []CompartmentSpec
	// Zones overrides the default limits (DefaultZoneLimits) per zone.
	Zones   map[protocol.Zone]ZoneLimits
	Store   Store
	Latch   Latch
	Clock   Clock        // nil: RealClock
	Log     *slog.Logger // nil: discard
	Metrics *Metrics     // nil: unregistered collectors

	// The keypad throttle (Pickup; docs/codes.md has the arithmetic). The first
	// FreeFailures wrong codes (4) are answered at once; each further one makes the keypad
	// wait before it checks another code: DelayBase (1 s), doubling, at most DelayMax
	// (60 s), the longest any resident waits. The count of wrong codes starts over once
	// the keypad has had no wrong code for DelayQuiet (10 min); a successful pickup does
	// not reset it, since it says nothing about whether the guesser has gone.
	FreeFailures int
	DelayBase    time.Duration
	DelayMax     time.Duration
	DelayQuiet   time.Duration
	// FailureBudget wrong codes within BudgetWindow (20 per hour) send code_lockout
	// (reason wrong_code_budget) so that ops look; spending it locks nobody out.
	FailureBudget int
	BudgetWindow  time.Duration
	// MaxOrderFailures wrong second factors invalidate the order's code (10).
	MaxOrderFailures int
	// DoorLeftOpen raises door_left_open once per opening (60 s).
	DoorLeftOpen time.Duration
	// SessionTimeout ends a session whose doors are closed but not as expected (5 min).
	SessionTimeout time.Duration
	// InboxTTL is how long an applied message id is remembered (7 days).
	InboxTTL time.Duration
	// StaggerGap spaces the latch pulses of one session (hw.DefaultStaggerGap).
	StaggerGap time.Duration
	// DriverSession is the lifetime of a kiosk driver session (15 min); it is absolute:
	// using the session does not extend it.
	DriverSession time.Duration
	// HelpInterval is the least time between two help_requested alerts from the kiosk
	// (60 s); presses in between are answered "already notified" (Help).
	HelpInterval time.Duration

	// Notify is called (without blocking) after events are written to the outbox, to wake
	// the sync; nil is fine.
	Notify func()
}

// Locker runs the flows of one locker bank: pickups, driver loading and returns, the
// hardware events, alarms, the cold chain, desired state and commands. Safe for
// concurrent use: durable state lives in the Store (whose transactions serialise
// writers); mu guards the in-memory view of the hardware and the kiosk's help rate limit.
type Locker struct {
	cfg    Config
	clock  Clock
	log    *slog.Logger
	m      *Metrics
	layout layout
	limits map[protocol.Zone]ZoneLimits
	zoneOf map[int]protocol.Zone

	stagger hw.Stagger

	cmdMu sync.Mutex     // one command at a time, in arrival order
	cmdWG sync.WaitGroup // commands in progress

	mu          sync.Mutex
	phys        map[int]hw.CompartmentState // last known door and occupancy
	boards      map[int]bool                // board → online
	closes      map[int]int                 // door_closed events seen per compartment
	occChanges  map[int]int                 // occupancy_changed events seen per compartment
	sessionBase map[string]map[int]int      // session → closes (c) and occupancy changes (-c) at its start; absent: resumed
	openSince   map[int]time.Time           // doors open now, since when
	leftOpen    map[int]bool                // door_left_open already raised for this opening
	zones       map[protocol.Zone]*zoneState
	opsOpen     map[int]protocol.CredentialKind // compartments opened by a command, until seen open
	finished    map[string]finishedSession      // recently completed sessions, for the kiosk
	helpAt      time.Time                       // when the kiosk last raised help_requested (zero: never)
	qrLoggedAt  time.Time                       // when a refused QR payload was last logged (qrRefused)
	qrRefusals  int                             // refused QR payloads since then

	// linkMu guards down and aliveAt (link.go); it is never held across a store call.
	linkMu  sync.Mutex
	down    time.Time // the stored Link.Down: since when the cloud is out of reach (zero: linked)
	aliveAt time.Time // when Tick last recorded Link.Alive
}

// New returns a Locker. Call Start before serving people.
func New(cfg Config) (*Locker, error) {
	switch {
	case !protocol.ValidSite(cfg.Site):
		return nil, fmt.Errorf("edge: invalid site id %q", cfg.Site)
	case len(cfg.SiteKey) < 32:
		return nil, errors.New("edge: site key shorter than 32 bytes")
	case len(cfg.Compartments) == 0:
		return nil, errors.New("edge: no compartments")
	case cfg.Store == nil || cfg.Latch == nil:
		return nil, errors.New("edge: store and latch are required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if cfg.FreeFailures <= 0 {
		cfg.FreeFailures = 4
	}
	if cfg.FailureBudget <= 0 {
		cfg.FailureBudget = 20
	}
	if cfg.MaxOrderFailures <= 0 {
		cfg.MaxOrderFailures = 10
	}
	def(&cfg.DelayBase, time.Second)
	def(&cfg.DelayMax, time.Minute)
	def(&cfg.DelayQuiet, 10*time.Minute)
	def(&cfg.BudgetWindow, time.Hour)
	def(&cfg.DoorLeftOpen, 60*time.Second)
	def(&cfg.SessionTimeout, 5*time.Minute)
	def(&cfg.InboxTTL, 7*24*time.Hour)
	def(&cfg.DriverSession, 15*time.Minute)
	def(&cfg.HelpInterval, time.Minute)
	if cfg.StaggerGap == 0 {
		cfg.StaggerGap = hw.DefaultStaggerGap
	}
	l := &Locker{
		cfg: cfg, clock: cfg.Clock, log: cfg.Log, m: cfg.Metrics,
		layout: newLayout(cfg.Compartments), limits: map[protocol.Zone]ZoneLimits{},
		zoneOf:  map[int]protocol.Zone{},
		stagger: hw.Stagger{Gap: cfg.StaggerGap},
		phys:    map[int]hw.CompartmentState{}, boards: map[int]bool{}, closes: map[int]int{}, occChanges: map[int]int{},
		sessionBase: map[string]map[int]int{}, openSince: map[int]time.Time{}, leftOpen: map[int]bool{},
		zones: map[protocol.Zone]*zoneState{}, opsOpen: map[int]protocol.CredentialKind{},
	}
	if l.clock == nil {
		l.clock = RealClock
	}
	if l.log == nil {
		l.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if l.m == nil {
		l.m = NewMetrics(nil)
	}
	for z, lim := range DefaultZoneLimits {
		l.limits[z] = lim
	}
	for z, lim := range cfg.Zones {
		l.limits[z] = lim
	}
	seen := map[int]bool{}
	for _, s := range cfg.Compartments {
		if s.Number < 1 || seen[s.Number] || !s.Size.Valid() || !s.Zone.Valid() {
			return nil, fmt.Errorf("edge: compartment %d: invalid or duplicate", s.Number)
		}
		seen[s.Number] = true
		l.zoneOf[s.Number] = s.Zone
	}
	return l, nil
}

// Site is the site id.
func (l *Locker) Site() string { return l.cfg.Site }

// Specs returns the configured compartments.
func (l *Locker) Specs() []CompartmentSpec { return slices.Clone(l.cfg.Compartments) }

// Start makes the store agree with the configuration (a compartment appears free the
// first time it is configured), ends commands interrupted by a restart, and seeds the
// hardware view with an initial snapshot (nil: unknown until events arrive). Sessions in
// progress are resumed: they complete as soon as the sensors agree.
func (l *Locker) Start(ctx context.Context, initial *hw.Snapshot) error {
	now := l.clock.Now()
	if initial != nil {
		l.mu.Lock()
		for c, s := range initial.Compartments {
			l.phys[c] = s
			if s.Door == hw.DoorOpen {
				l.openSince[c] = now
			}
		}
		for b, s := range initial.Boards {
			l.boards[b] = s.Online
			l.m.boardOnline(b, s.Online)
		}
		l.mu.Unlock()
	}
	err := l.cfg.Store.Update(func(tx Tx) error {
		zrs, err := tx.ZoneReadings()
		if err != nil {
			return err
		}
		l.mu.Lock()
		for _, zr := range zrs {
			l.zones[zr.Zone] = &zoneState{last: zr.At, celsius: zr.Celsius, saved: zr.At}
		}
		l.mu.Unlock()
		ids, err := tx.UnfinishedCommands()
		if err != nil {
			return err
		}
		if err := endInterruptedCommands(tx, now, ids); err != nil {
			return err
		}
		if err := l.resumeLink(tx, now); err != nil {
			return err
		}
		for _, s := range l.cfg.Compartments {
			if _, ok, err := tx.Compartment(s.Number); err != nil {
				return err
			} else if !ok {
				if err := tx.PutCompartment(Compartment{Number: s.Number, State: StateFree, Since: now}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return wrap("start", err)
	}
	l.refreshGauges()
	l.evaluateAll(ctx)
	return nil
}

// notify wakes the sync after events were committed.
func (l *Locker) notify() {
	if l.cfg.Notify != nil {
		l.cfg.Notify()
	}
}

// enqueue writes an event; a helper so every call site reads alike.
func enqueue(tx Tx, at time.Time, e protocol.Event) error {
	_, err := tx.Enqueue(at, e)
	return err
}

// unlock pulses one latch, staggered, and records the result in the metrics.
func (l *Locker) unlock(ctx context.Context, c int) error {
	if err := l.stagger.Wait(ctx); err != nil {
		return err
	}
	start := time.Now()
	err := l.cfg.Latch.Unlock(ctx, c)
	l.m.UnlockDuration.Observe(time.Since(start).Seconds())
	switch {
	case err == nil:
		l.m.UnlockTotal.WithLabelValues("ok").Inc()
	case errors.Is(err, hw.ErrJammed):
		l.m.UnlockTotal.WithLabelValues("jammed").Inc()
	case errors.Is(err, hw.ErrBoardOffline):
		l.m.UnlockTotal.WithLabelValues("board_offline").Inc()
	default:
		l.m.UnlockTotal.WithLabelValues("error").Inc()
	}
	return err
}

// unlockAll opens compartments concurrently (the stagger spaces the pulses) and returns
// the error of each, in the order given.
func (l *Locker) unlockAll(ctx context.Context, cs []int) []error {
	errs := make([]error, len(cs))
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = l.unlock(ctx, c)
		}()
	}
	wg.Wait()
	return errs
}

// door describes compartment c for the kiosk.
func (l *Locker) door(c int, jammed bool) Door {
	en, zh := l.layout.where(c)
	s := l.layout.specs[c]
	d := Door{Number: c, Row: s.Row, Column: s.Column, WhereEN: en, WhereZH: zh, State: "closed"}
	l.mu.Lock()
	p := l.phys[c]
	l.mu.Unlock()
	if p.Door == hw.DoorOpen {
		d.State = "open"
	}
	if jammed {
		d.State = "jammed"
	}
	d.Empty = p.Occupancy == hw.Empty
	return d
}

// newToken returns an opaque random token for sessions and driver logins.
func newToken() string { return protocol.NewID() }

// refreshGauges recomputes the compartment and door gauges from the store and memory.
func (l *Locker) refreshGauges() {
	counts := map[State]int{}
	var version uint64
	_ = l.cfg.Store.View(func(tx Tx) error {
		cs, err := tx.Compartments()
		for _, c := range cs {
			counts[c.State]++
		}
		if err != nil {
			return err
		}
		version, err = tx.DesiredVersion()
		return err
	})
	l.m.DesiredVersion.Set(float64(version))
	for _, s := range States() {
		l.m.Compartments.WithLabelValues(string(s)).Set(float64(counts[s]))
	}
	l.mu.Lock()
	n := len(l.openSince)
	l.mu.Unlock()
	l.m.DoorsOpen.Set(float64(n))
}
