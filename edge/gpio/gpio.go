package gpio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/larder-lockers/larder/edge/hw"
	pgpio "periph.io/x/conn/v3/gpio"
)

// Defaults and limits. Zero Config fields take the defaults.
const (
	DefaultPulse          = 300 * time.Millisecond
	MaxPulse              = time.Second // longer pulses are cut to this
	DefaultDebounce       = 30 * time.Millisecond
	DefaultConfirmTimeout = 2 * time.Second
	// samplePeriod bounds how long a watcher blocks in WaitForEdge: it is how
	// often a quiet switch is re-sampled and how quickly Close is noticed.
	samplePeriod = 250 * time.Millisecond
)

// Config describes one GPIO-wired bank.
type Config struct {
	// Relays maps compartment numbers to latch relay outputs. Required.
	Relays map[int]pgpio.PinOut
	// Doors maps compartment numbers to door-switch inputs. Optional per
	// compartment; each pin must support edge detection.
	Doors map[int]pgpio.PinIn
	// RelayActiveLow: the relay energises when the pin is Low.
	RelayActiveLow bool
	// DoorOpenLow: an open door reads Low (zero value: an open door reads
	// High, the usual switch-to-ground wiring with the pull-up).
	DoorOpenLow bool
	// Pulse is the latch pulse length; zero means DefaultPulse, anything
	// above MaxPulse is cut to MaxPulse.
	Pulse time.Duration
	// Debounce is how long a switch must be quiet before its level counts;
	// zero means DefaultDebounce.
	Debounce time.Duration
	// ConfirmTimeout bounds the wait for the door switch after a pulse; zero
	// means DefaultConfirmTimeout.
	ConfirmTimeout time.Duration
	// Stagger spaces pulses; nil means a Stagger of this driver's own with
	// the default gap. Share one between drivers on one power supply.
	Stagger *hw.Stagger
	// Logger: nil discards.
	Logger *slog.Logger
}

// Driver is a GPIO-wired bank. Safe for concurrent use.
type Driver struct {
	cfg     Config
	log     *slog.Logger
	stagger *hw.Stagger
	relays  map[int]*relay
	doors   map[int]*door

	stop      chan struct{} // closed by Close to end the watchers
	wg        sync.WaitGroup
	closeOnce sync.Once
}

type relay struct {
	pin       pgpio.PinOut
	activeLow bool
	mu        sync.Mutex // one pulse at a time per relay
}

func (r *relay) set(on bool) error {
	// on XOR activeLow gives the level: active-high on = High.
	return r.pin.Out(pgpio.Level(on != r.activeLow))
}

type door struct {
	pin     pgpio.PinIn
	openLow bool

	mu      sync.Mutex    // guards state and changed
	state   hw.Door       // debounced
	changed chan struct{} // closed and replaced on every state change
}

func (d *door) level(l pgpio.Level) hw.Door {
	if bool(l) != d.openLow {
		return hw.DoorOpen
	}
	return hw.DoorClosed
}

func (d *door) set(s hw.Door) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.state == s {
		return false
	}
	d.state = s
	close(d.changed)
	d.changed = make(chan struct{})
	return true
}

func (d *door) get() (hw.Door, <-chan struct{}) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.state, d.changed
}

// New switches every relay off, configures the door switches, reads their
// initial levels and starts one watcher goroutine per switch. Close stops
// them.
func New(cfg Config) (*Driver, error) {
	if len(cfg.Relays) == 0 {
		return nil, errors.New("gpio: no relays configured")
	}
	for c := range cfg.Relays {
		if c < 1 {
			return nil, fmt.Errorf("gpio: compartment %d: numbers start at 1", c)
		}
	}
	for c := range cfg.Doors {
		if _, ok := cfg.Relays[c]; !ok {
			return nil, fmt.Errorf("gpio: door switch for compartment %d, which has no relay", c)
		}
	}
	if cfg.Pulse <= 0 {
		cfg.Pulse = DefaultPulse
	}
	cfg.Pulse = min(cfg.Pulse, MaxPulse)
	if cfg.Debounce <= 0 {
		cfg.Debounce = DefaultDebounce
	}
	if cfg.ConfirmTimeout <= 0 {
		cfg.ConfirmTimeout = DefaultConfirmTimeout
	}
	d := &Driver{
		cfg:     cfg,
		log:     cfg.Logger,
		stagger: cfg.Stagger,
		relays:  make(map[int]*relay, len(cfg.Relays)),
		doors:   make(map[int]*door, len(cfg.Doors)),
		stop:    make(chan struct{}),
	}
	if d.log == nil {
		d.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if d.stagger == nil {
		d.stagger = &hw.Stagger{}
	}
	for c, p := range cfg.Relays {
		d.relays[c] = &relay{pin: p, activeLow: cfg.RelayActiveLow}
	}
	// Relays off first: a daemon restarted mid-pulse must not leave a coil
	// energised while it sets up the rest.
	if err := d.Halt(); err != nil {
		return nil, err
	}
	for c, p := range cfg.Doors {
		if err := p.In(pgpio.PullUp, pgpio.BothEdges); err != nil {
			return nil, fmt.Errorf("gpio: door switch %d (%s): %w", c, p, err)
		}
		w := &door{pin: p, openLow: cfg.DoorOpenLow, changed: make(chan struct{})}
		w.state = w.level(p.Read())
		d.doors[c] = w
	}
	for c, w := range d.doors {
		d.wg.Add(1)
		go d.watch(c, w)
	}
	return d, nil
}

// Halt implements hw.Halter: every relay off. It does not take the relays'
// pulse locks, so it cuts a pulse in progress (whose deferred off then
// repeats it harmlessly).
func (d *Driver) Halt() error {
	var errs []error
	for _, c := range slices.Sorted(maps.Keys(d.relays)) {
		if err := d.relays[c].set(false); err != nil {
			errs = append(errs, fmt.Errorf("gpio: relay %d off: %w", c, err))
		}
	}
	return errors.Join(errs...)
}

// Close halts the relays and stops the door watchers. Idempotent.
func (d *Driver) Close() error {
	err := d.Halt()
	d.closeOnce.Do(func() { close(d.stop) })
	d.wg.Wait()
	return err
}

// Unlock implements hw.Latch (see the package doc for confirmation).
func (d *Driver) Unlock(ctx context.Context, compartment int) error {
	r, ok := d.relays[compartment]
	if !ok {
		return fmt.Errorf("gpio: unlock %d: %w", compartment, hw.ErrUnknownCompartment)
	}
	select {
	case <-d.stop:
		return fmt.Errorf("gpio: unlock %d: %w", compartment, hw.ErrClosed)
	default:
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := d.stagger.Wait(ctx); err != nil {
		return fmt.Errorf("gpio: unlock %d: %w", compartment, err)
	}
	if err := d.pulse(ctx, r); err != nil {
		d.log.Error("relay pulse failed", "compartment", compartment, "err", err)
		return fmt.Errorf("gpio: unlock %d: %w", compartment, err)
	}
	w, ok := d.doors[compartment]
	if !ok {
		return nil // no switch: nothing to confirm with
	}
	t := time.NewTimer(d.cfg.ConfirmTimeout)
	defer t.Stop()
	for {
		s, changed := w.get()
		if s == hw.DoorOpen {
			return nil
		}
		select {
		case <-changed:
		case <-t.C:
			d.log.Warn("lock jammed", "compartment", compartment)
			return fmt.Errorf("gpio: unlock %d: %w", compartment, hw.ErrJammed)
		case <-ctx.Done():
			return fmt.Errorf("gpio: unlock %d: %w", compartment, ctx.Err())
		}
	}
}

// pulse energises r for the configured pulse, or until ctx ends, and always
// leaves it off.
func (d *Driver) pulse(ctx context.Context, r *relay) (err error) {
	defer func() {
		// A fresh Out call, independent of ctx and of whether "on" worked:
		// the relay must be off whatever happened above.
		if offErr := r.set(false); offErr != nil {
			// One retry: a transient sysfs write error must not leave a coil on.
			if offErr = r.set(false); offErr != nil {
				err = errors.Join(err, fmt.Errorf("relay off: %w", offErr))
			}
		}
	}()
	if err := r.set(true); err != nil {
		return fmt.Errorf("relay on: %w", err)
	}
	t := time.NewTimer(d.cfg.Pulse)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		// The latch may or may not have released with a cut pulse; the
		// caller sees the context error and the door switch will tell.
		return ctx.Err()
	}
}

// watch follows one door switch until Close.
func (d *Driver) watch(c int, w *door) {
	defer d.wg.Done()
	for {
		select {
		case <-d.stop:
			return
		default:
		}
		if w.pin.WaitForEdge(samplePeriod) {
			// Contacts bounce: wait until the line has been quiet for the
			// debounce time, then believe the level.
			for w.pin.WaitForEdge(d.cfg.Debounce) {
				select {
				case <-d.stop:
					return
				default:
				}
			}
		}
		s := w.level(w.pin.Read())
		if w.set(s) {
			d.log.Info("door switch changed", "compartment", c, "door", s.String())
		}
	}
}

// Snapshot implements hw.Sensors. GPIO banks have no occupancy sensing and
// one pseudo-board, 0, that is always online.
func (d *Driver) Snapshot(ctx context.Context) (hw.Snapshot, error) {
	select {
	case <-d.stop:
		return hw.Snapshot{}, fmt.Errorf("gpio: snapshot: %w", hw.ErrClosed)
	default:
	}
	now := time.Now()
	s := hw.Snapshot{
		At:           now,
		Compartments: make(map[int]hw.CompartmentState, len(d.relays)),
		Boards:       map[int]hw.BoardState{0: {Online: true, LastSeen: now}},
	}
	for c := range d.relays {
		st := hw.CompartmentState{Board: 0, Door: hw.DoorUnknown}
		if w, ok := d.doors[c]; ok {
			st.Door, _ = w.get()
		}
		s.Compartments[c] = st
	}
	return s, nil
}

var (
	_ hw.Latch   = (*Driver)(nil)
	_ hw.Sensors = (*Driver)(nil)
	_ hw.Halter  = (*Driver)(nil)
)
