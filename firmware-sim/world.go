package sim

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/larder-lockers/larder/protocol/board"
)

// WorldConfig describes the simulated hardware of one bus.
type WorldConfig struct {
	Profile board.Profile
	// Boards is the number of boards on the bus; they take the lowest
	// addresses of the profile (kerong 0..Boards-1, bcc8a 1..Boards).
	Boards int
	// Zones gives the zone kind of each compartment (index n-1); nil puts
	// every compartment in the chilled zone. See ParseZones.
	Zones []string
	// Pulse is how long a latch stays released after an unlock (zero: 300 ms);
	// modbus-rtu latches stay released while the master holds the relay on.
	Pulse time.Duration
	// SpringDelay is how long a released latch takes to let the door spring
	// ajar; shorter pulses do not open the door (zero: 30 ms).
	SpringDelay time.Duration
	// BootTime is how long a board stays silent after a reset or power
	// restore (zero: 500 ms).
	BootTime time.Duration
	// Outside is the initial outside temperature, °C (NaN: 25).
	Outside float64
	// Thermal is the zone model (zero Step: DefaultThermalModel).
	Thermal ThermalModel
}

func (c *WorldConfig) defaults() {
	if c.Pulse == 0 {
		c.Pulse = 300 * time.Millisecond
	}
	if c.SpringDelay == 0 {
		c.SpringDelay = 30 * time.Millisecond
	}
	if c.BootTime == 0 {
		c.BootTime = 500 * time.Millisecond
	}
	if math.IsNaN(c.Outside) {
		c.Outside = 25
	}
	if c.Thermal.Step == 0 {
		c.Thermal = DefaultThermalModel()
	}
}

// Compartments is the number of compartments of the configured bus.
func (c WorldConfig) Compartments() int { return c.Boards * c.Profile.LocksPerBoard() }

// Error kinds of world operations; the control API maps them to HTTP statuses.
var (
	ErrInvalid  = errors.New("invalid request")
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("not possible in the current state")
)

var forever = time.Unix(1<<62, 0)

type compartment struct {
	n, board, lock int
	zone           *zone
	doorOpen       bool
	closedAt       time.Time // last time a person closed the door
	releasedFrom   time.Time // the latch is released in [releasedFrom, releasedUntil)
	releasedUntil  time.Time
	items          int
	pulses         int
	relay          bool // modbus-rtu: the coil is on (the master holds it)
	// fault knobs
	jammed     bool
	relayStuck bool
	leftOpen   bool
	irStuck    *bool
}

func (c *compartment) latched(now time.Time) bool {
	return now.Before(c.releasedFrom) || !now.Before(c.releasedUntil)
}

// springAt is when a released latch lets the closed door spring ajar.
func (c *compartment) springAt(d time.Duration) (time.Time, bool) {
	if c.doorOpen {
		return time.Time{}, false
	}
	s := c.releasedFrom
	if c.closedAt.After(s) {
		s = c.closedAt
	}
	if c.releasedUntil.Sub(s) < d {
		return time.Time{}, false
	}
	return s.Add(d), true
}

type boardState struct {
	addr      int
	unplugged bool
	bootUntil time.Time
	slow      time.Duration
}

// World is the simulated hardware of one bus: boards, their latches and
// sensors, the doors and contents of the compartments, and the temperature
// zones. Safe for concurrent use; mu guards everything below it. Time only
// moves when a method reads the clock: every method first brings the
// physics up to Clock.Now (see tick), so a FakeClock makes it deterministic.
type World struct {
	cfg   WorldConfig
	clock Clock

	mu      sync.Mutex
	powered bool
	outside float64
	boards  []*boardState
	comps   []*compartment
	zones   []*zone
	garble  float64
	drop    float64
}

// NewWorld builds the world at clock.Now(), everything closed, latched,
// empty and at setpoint.
func NewWorld(cfg WorldConfig, clock Clock) (*World, error) {
	cfg.defaults()
	if !cfg.Profile.Valid() {
		return nil, fmt.Errorf("sim: profile %q: %w", cfg.Profile, ErrInvalid)
	}
	if cfg.Boards < 1 || cfg.Boards > cfg.Profile.MaxBoards() {
		return nil, fmt.Errorf("sim: %d boards, want 1-%d: %w", cfg.Boards, cfg.Profile.MaxBoards(), ErrInvalid)
	}
	n := cfg.Compartments()
	if cfg.Zones == nil {
		cfg.Zones, _ = ParseZones("", n)
	}
	if len(cfg.Zones) != n {
		return nil, fmt.Errorf("sim: %d zone entries for %d compartments: %w", len(cfg.Zones), n, ErrInvalid)
	}
	if clock == nil {
		clock = RealClock
	}
	now := clock.Now()
	w := &World{cfg: cfg, clock: clock, powered: true, outside: cfg.Outside}
	lo, _ := cfg.Profile.BoardRange()
	for b := range cfg.Boards {
		w.boards = append(w.boards, &boardState{addr: lo + b})
	}
	for _, kind := range ZoneKinds {
		if !slices.Contains(cfg.Zones, kind) {
			continue
		}
		sp, cooled := Setpoint(kind)
		z := &zone{kind: kind, setpoint: sp, cooled: cooled, temp: sp, last: now}
		if !cooled {
			z.temp = w.outside
		}
		w.zones = append(w.zones, z)
	}
	for i := range n {
		b, l, _ := cfg.Profile.Locate(i + 1)
		c := &compartment{n: i + 1, board: b, lock: l, zone: w.zoneOf(cfg.Zones[i])}
		c.zone.members = append(c.zone.members, c.n)
		w.comps = append(w.comps, c)
	}
	return w, nil
}

// Config returns the world's configuration with defaults filled in.
func (w *World) Config() WorldConfig { return w.cfg }

func (w *World) zoneOf(kind string) *zone {
	for _, z := range w.zones {
		if z.kind == kind {
			return z
		}
	}
	return nil
}

// tick brings the physics up to now: doors spring ajar in time order and
// zones integrate between those events. Called with mu held.
func (w *World) tick(now time.Time) {
	for {
		var first *compartment
		var at time.Time
		for _, c := range w.comps {
			if t, ok := c.springAt(w.cfg.SpringDelay); ok && !t.After(now) && (first == nil || t.Before(at)) {
				first, at = c, t
			}
		}
		if first == nil {
			break
		}
		w.advanceZones(at)
		first.doorOpen = true
		first.zone.doorsOpen++
	}
	w.advanceZones(now)
}

func (w *World) advanceZones(t time.Time) {
	for _, z := range w.zones {
		z.advance(w.cfg.Thermal, t, w.outside, w.powered)
	}
}

func (w *World) lockNow() time.Time {
	w.mu.Lock()
	now := w.clock.Now()
	w.tick(now)
	return now
}

func (w *World) board(addr int) *boardState {
	lo, _ := w.cfg.Profile.BoardRange()
	if i := addr - lo; i >= 0 && i < len(w.boards) {
		return w.boards[i]
	}
	return nil
}

func (w *World) comp(n int) (*compartment, error) {
	if n < 1 || n > len(w.comps) {
		return nil, fmt.Errorf("sim: compartment %d (have 1-%d): %w", n, len(w.comps), ErrNotFound)
	}
	return w.comps[n-1], nil
}

func (w *World) responsive(b *boardState, now time.Time) bool {
	return b != nil && w.powered && !b.unplugged && !now.Before(b.bootUntil)
}

// pulse starts (or extends) a latch pulse.
func (w *World) pulse(c *compartment, now time.Time) {
	c.pulses++
	if c.jammed || !w.powered {
		return // the relay clicks, the latch does not move
	}
	if c.latched(now) {
		c.releasedFrom = now
	}
	if until := now.Add(w.cfg.Pulse); until.After(c.releasedUntil) {
		c.releasedUntil = until
	}
}

// Execute is a board receiving cmd on the bus now. It returns the reply the
// board sends and the extra delay of a slow-replies fault; ok is false when
// no board answers (no such address, unplugged, unpowered or booting).
// Modbus-rtu boards answer Modbus requests only (ExecuteModbus).
func (w *World) Execute(cmd board.Command) (r board.Reply, slow time.Duration, ok bool) {
	now := w.lockNow()
	defer w.mu.Unlock()
	b := w.board(cmd.Board)
	if !w.responsive(b, now) || w.cfg.Profile == board.ModbusRTU {
		return board.Reply{}, 0, false
	}
	n := w.cfg.Profile.LocksPerBoard()
	first := (b.addr - w.boards[0].addr) * n // index of lock 1
	switch cmd.Op {
	case board.OpStatus:
		return board.Reply{Kind: board.ReplyStatus, Board: b.addr, Status: w.status(b, now)}, b.slow, true
	case board.OpQuery:
		c := w.comps[first+cmd.Lock-1]
		return board.Reply{Kind: board.ReplyLock, Board: b.addr, Lock: cmd.Lock, Closed: w.hookClosed(c, now)}, b.slow, true
	case board.OpUnlock:
		c := w.comps[first+cmd.Lock-1]
		w.pulse(c, now)
		return board.Reply{Kind: board.ReplyUnlock, Board: b.addr, Lock: cmd.Lock, Closed: w.hookClosed(c, now)}, b.slow, true
	case board.OpUnlockAll:
		for _, c := range w.comps[first : first+n] {
			w.pulse(c, now)
		}
		return board.Reply{Kind: board.ReplyUnlock, Board: b.addr, All: true}, b.slow, true
	}
	return board.Reply{}, 0, false
}

func (w *World) hookClosed(c *compartment, now time.Time) bool {
	return !c.doorOpen && c.latched(now)
}

func (w *World) irReads(c *compartment) bool {
	if c.irStuck != nil {
		return *c.irStuck
	}
	return c.items > 0
}

func (w *World) status(b *boardState, now time.Time) board.Status {
	n := w.cfg.Profile.LocksPerBoard()
	first := (b.addr - w.boards[0].addr) * n
	st := board.Status{Board: b.addr, Closed: make([]bool, n)}
	if w.cfg.Profile.HasOccupancy() {
		st.Occupied = make([]bool, n)
	}
	for i, c := range w.comps[first : first+n] {
		st.Closed[i] = w.hookClosed(c, now)
		if st.Occupied != nil {
			st.Occupied[i] = w.irReads(c)
		}
	}
	return st
}

// BoardStatus is what board addr would report now; ok is false if it
// would not answer.
func (w *World) BoardStatus(addr int) (board.Status, bool) {
	now := w.lockNow()
	defer w.mu.Unlock()
	b := w.board(addr)
	if !w.responsive(b, now) {
		return board.Status{}, false
	}
	return w.status(b, now), true
}

// BoardAddrs lists the simulated board addresses.
func (w *World) BoardAddrs() []int {
	var out []int
	for _, b := range w.boards {
		out = append(out, b.addr)
	}
	return out
}

// LineFaults returns the bus-level garble and drop rates (per byte).
func (w *World) LineFaults() (garble, drop float64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.garble, w.drop
}

// Open is a person pulling the door of compartment n. A latched door opens
// only with force (which the edge should see as an uncommanded open).
func (w *World) Open(n int, force bool) error {
	now := w.lockNow()
	defer w.mu.Unlock()
	c, err := w.comp(n)
	if err != nil {
		return err
	}
	if c.doorOpen {
		return nil
	}
	if c.latched(now) && !force {
		return fmt.Errorf("sim: open compartment %d: door is locked (use force): %w", n, ErrConflict)
	}
	c.doorOpen = true
	c.zone.doorsOpen++
	return nil
}

// Close is a person pushing the door of compartment n shut. The latch
// catches it unless it is still released, in which case the spring pushes
// it ajar again after SpringDelay.
func (w *World) Close(n int) error {
	now := w.lockNow()
	defer w.mu.Unlock()
	c, err := w.comp(n)
	if err != nil {
		return err
	}
	if c.leftOpen {
		return fmt.Errorf("sim: close compartment %d: door is held open (door_left_open fault): %w", n, ErrConflict)
	}
	if !c.doorOpen {
		return nil
	}
	c.doorOpen = false
	c.closedAt = now
	c.zone.doorsOpen--
	return nil
}

// Put places k items (k ≤ 0 means 1) into compartment n; its door must be open.
func (w *World) Put(n, k int) error {
	w.lockNow()
	defer w.mu.Unlock()
	c, err := w.comp(n)
	if err != nil {
		return err
	}
	if !c.doorOpen {
		return fmt.Errorf("sim: put into compartment %d: door is closed: %w", n, ErrConflict)
	}
	c.items += max(k, 1)
	return nil
}

// Take removes k items (k ≤ 0 means all) from compartment n; its door must be open.
func (w *World) Take(n, k int) error {
	w.lockNow()
	defer w.mu.Unlock()
	c, err := w.comp(n)
	if err != nil {
		return err
	}
	if !c.doorOpen {
		return fmt.Errorf("sim: take from compartment %d: door is closed: %w", n, ErrConflict)
	}
	if c.items == 0 {
		return fmt.Errorf("sim: take from compartment %d: it is empty: %w", n, ErrConflict)
	}
	if k <= 0 || k > c.items {
		k = c.items
	}
	c.items -= k
	return nil
}

// SetOutside sets the outside temperature, °C.
func (w *World) SetOutside(celsius float64) error {
	if math.IsNaN(celsius) || celsius < -60 || celsius > 70 {
		return fmt.Errorf("sim: outside temperature %v: %w", celsius, ErrInvalid)
	}
	w.lockNow()
	defer w.mu.Unlock()
	w.outside = celsius
	return nil
}

// SetPower cuts (false) or restores (true) the power of the whole bank:
// boards fall silent, latches engage, compressors stop. On restore the
// boards boot for BootTime.
func (w *World) SetPower(on bool) {
	now := w.lockNow()
	defer w.mu.Unlock()
	if on == w.powered {
		return
	}
	w.powered = on
	for _, c := range w.comps {
		if !on {
			c.releasedUntil = minTime(c.releasedUntil, now)
			c.relay = false // modbus-rtu boards start with every coil off
		} else if c.relayStuck {
			c.releasedFrom, c.releasedUntil = now, forever
		}
	}
	if on {
		for _, b := range w.boards {
			b.bootUntil = now.Add(w.cfg.BootTime)
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
