package hw

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"
)

// DefaultPollInterval is the idle poll period: boards are polled every 0.5–1 s when
// idle, and the faster end keeps a resident's opened door visible within half a second.
const DefaultPollInterval = 500 * time.Millisecond

// PollerConfig configures a Poller. Only Sensors is required.
type PollerConfig struct {
	Sensors Sensors
	// Interval between snapshots; zero means DefaultPollInterval.
	Interval time.Duration
	// Expected explains openings; nil means every opening is uncommanded.
	Expected interface {
		Take(compartment int, at time.Time) bool
	}
	// Emit receives every event, in order, from the polling goroutine. It
	// must not block for long: hand off to a channel. Nil discards.
	Emit func(Event)
	// Logger logs changes (never samples); nil discards.
	Logger *slog.Logger
}

// Poller turns successive Snapshots into Events. Step is not safe for
// concurrent use (Run calls it from one goroutine); Last is.
type Poller struct {
	cfg PollerConfig
	log *slog.Logger

	mu      sync.Mutex // guards the fields below
	started bool
	last    Snapshot // merged last known state: Unknown never overwrites a known value
	failing bool     // the last Snapshot call failed (to log the failure once)

	logMu      sync.Mutex           // guards the log limiter
	lastLog    map[logKey]time.Time // last logged event per compartment/board and kind
	suppressed map[logKey]int       // events not logged since then
}

// logKey identifies a sensor for log rate limiting.
type logKey struct {
	kind        EventKind
	compartment int
	board       int
}

// logEvery is the least time between two log lines about one sensor: a
// flapping door switch must not flood the log. Events are never limited.
const logEvery = 10 * time.Second

// NewPoller returns a Poller; nothing runs until Run or Step.
func NewPoller(cfg PollerConfig) *Poller {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultPollInterval
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Poller{cfg: cfg, log: log, last: Snapshot{
		Compartments: map[int]CompartmentState{},
		Boards:       map[int]BoardState{},
	}}
}

// Run polls until ctx ends, then returns ctx.Err(). A failed snapshot is
// logged once and polling goes on.
func (p *Poller) Run(ctx context.Context) error {
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	for {
		p.Step(ctx) //nolint:errcheck // logged in Step; polling goes on
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Step takes one snapshot, emits and returns the events it implies. The
// first successful Step is the baseline (see the package doc).
func (p *Poller) Step(ctx context.Context) ([]Event, error) {
	snap, err := p.cfg.Sensors.Snapshot(ctx)
	if err != nil {
		p.mu.Lock()
		first := !p.failing
		p.failing = true
		p.mu.Unlock()
		if first && ctx.Err() == nil {
			p.log.Warn("hardware snapshot failed", "err", err)
		}
		return nil, err
	}
	p.mu.Lock()
	if p.failing {
		p.log.Info("hardware snapshot recovered")
	}
	p.failing = false
	evs := p.diff(snap)
	p.mu.Unlock()

	for _, e := range evs {
		p.logEvent(e)
		if p.cfg.Emit != nil {
			p.cfg.Emit(e)
		}
	}
	return evs, nil
}

// Last returns a copy of the last known state. Compartments whose board has
// never answered are Unknown; others keep their last known values while
// their board is down.
func (p *Poller) Last() Snapshot {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Snapshot{At: p.last.At, Compartments: maps.Clone(p.last.Compartments), Boards: maps.Clone(p.last.Boards)}
}

// diff merges snap into p.last and returns the events. Called with p.mu held.
func (p *Poller) diff(snap Snapshot) []Event {
	var evs []Event
	at := snap.At
	if at.IsZero() {
		at = time.Now()
	}
	first := !p.started
	p.started = true
	p.last.At = at

	for _, b := range slices.Sorted(maps.Keys(snap.Boards)) {
		bs := snap.Boards[b]
		prev, had := p.last.Boards[b]
		switch {
		case (first || !had) && !bs.Online:
			evs = append(evs, Event{Kind: EventBoardOffline, Board: b, At: at})
		case had && !first && prev.Online && !bs.Online:
			evs = append(evs, Event{Kind: EventBoardOffline, Board: b, At: at})
		case had && !first && !prev.Online && bs.Online:
			evs = append(evs, Event{Kind: EventBoardOnline, Board: b, At: at})
		}
		p.last.Boards[b] = bs
	}

	for _, c := range slices.Sorted(maps.Keys(snap.Compartments)) {
		cs := snap.Compartments[c]
		prev, had := p.last.Compartments[c]
		next := prev
		next.Board = cs.Board
		if cs.Door != DoorUnknown {
			if had && prev.Door != DoorUnknown && prev.Door != cs.Door {
				if cs.Door == DoorOpen {
					evs = append(evs, Event{Kind: EventDoorOpened, Compartment: c, Board: cs.Board, At: at})
					if p.cfg.Expected == nil || !p.cfg.Expected.Take(c, at) {
						evs = append(evs, Event{Kind: EventUncommandedOpen, Compartment: c, Board: cs.Board, At: at})
					}
				} else {
					evs = append(evs, Event{Kind: EventDoorClosed, Compartment: c, Board: cs.Board, At: at})
				}
			}
			next.Door = cs.Door
		}
		if cs.Occupancy != OccupancyUnknown {
			if had && prev.Occupancy != OccupancyUnknown && prev.Occupancy != cs.Occupancy {
				evs = append(evs, Event{Kind: EventOccupancyChanged, Compartment: c, Board: cs.Board, Occupancy: cs.Occupancy, At: at})
			}
			next.Occupancy = cs.Occupancy
		}
		p.last.Compartments[c] = next
	}
	return evs
}

func (p *Poller) logEvent(e Event) {
	p.logMu.Lock()
	if p.lastLog == nil {
		p.lastLog, p.suppressed = map[logKey]time.Time{}, map[logKey]int{}
	}
	k := logKey{e.Kind, e.Compartment, e.Board}
	if last, ok := p.lastLog[k]; ok && e.At.Sub(last) < logEvery {
		p.suppressed[k]++
		p.logMu.Unlock()
		return
	}
	p.lastLog[k] = e.At
	n := p.suppressed[k]
	delete(p.suppressed, k)
	p.logMu.Unlock()
	log := p.log
	if n > 0 {
		log = log.With("suppressed", n)
	}
	switch e.Kind {
	case EventBoardOffline, EventUncommandedOpen, EventLockJammed:
		log.Warn("hardware event", "event", string(e.Kind), "compartment", e.Compartment, "board", e.Board)
	case EventOccupancyChanged:
		log.Info("hardware event", "event", string(e.Kind), "compartment", e.Compartment, "occupancy", e.Occupancy.String())
	default:
		log.Info("hardware event", "event", string(e.Kind), "compartment", e.Compartment, "board", e.Board)
	}
}
