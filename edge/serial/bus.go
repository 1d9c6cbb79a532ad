package serial

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
	"github.com/larder-lockers/larder/protocol/board"
)

// Defaults for the zero values of Config.
const (
	DefaultRetries         = 3
	DefaultConfirmInterval = 200 * time.Millisecond
	DefaultConfirmTimeout  = 2 * time.Second
	DefaultOfflineAfter    = 2500 * time.Millisecond
	// DefaultTurnaround is the board's answer delay allowed on top of the
	// wire time when CommandTimeout is zero.
	DefaultTurnaround = 100 * time.Millisecond
	// DefaultPulse is how long a modbus-rtu relay is held on for an unlock,
	// and MaxPulse the longest allowed: a latch coil held energised overheats.
	DefaultPulse = 300 * time.Millisecond
	MaxPulse     = time.Second
)

// WireTime is how long n bytes take on a line at baud, 8N1 (10 bits each).
func WireTime(baud, n int) time.Duration {
	return time.Duration(n) * 10 * time.Second / time.Duration(baud)
}

// Config describes one bus. Profile and Dial (or Open's address) are
// required; every zero duration takes the default named beside it.
type Config struct {
	Profile  board.Profile
	Polarity board.Polarity // bcc8a feedback and modbus-rtu door-input polarity; zero is normal
	// Modbus lays out modbus-rtu boards (locks per board, first coil, first
	// input); the zero value is 16 locks from address 0. Other profiles
	// ignore it.
	Modbus board.ModbusMap
	// Pulse is how long a modbus-rtu relay is held on for an unlock (its
	// boards do not time pulses; the bus writes the coil on, then off);
	// zero means DefaultPulse, more than MaxPulse is cut to MaxPulse. The
	// other profiles' boards time their own pulses and ignore it.
	Pulse time.Duration
	// Baud is the line speed; zero means Profile.Baud(). It sets the serial
	// port's speed (Open) and the default CommandTimeout.
	Baud int
	// Map gives each compartment's board and lock. Nil means the boards in
	// Boards, numbered as Profile.Compartment does (kerong board 0 lock 1 is
	// compartment 1, board 1 lock 1 is 17).
	Map    hw.Map
	Boards []int
	// Dial opens the transport. It is called lazily and again after an I/O
	// error (a USB adapter unplugged, a TCP converter restarted).
	Dial func() (Port, error)
	// CommandTimeout is how long one try waits for its reply; zero means
	// the wire time of a command and the longest reply plus
	// DefaultTurnaround.
	CommandTimeout time.Duration
	// Retries after a failed try (timeout or garbage); zero means
	// DefaultRetries, negative means none. A board that is offline gets a
	// single try, so that a dead board costs one timeout per poll.
	Retries int
	// ConfirmInterval between status reads while confirming an unlock;
	// zero means DefaultConfirmInterval.
	ConfirmInterval time.Duration
	// ConfirmTimeout after which an unlock whose lock still reads closed is
	// reported jammed; zero means DefaultConfirmTimeout.
	ConfirmTimeout time.Duration
	// OfflineAfter is how long a board may go without a valid reply before
	// it is reported offline; zero means DefaultOfflineAfter.
	OfflineAfter time.Duration
	// Stagger spaces unlock commands; nil means a Stagger of this bus's own
	// with the default gap. Share one across buses on one power supply.
	Stagger *hw.Stagger
	// Logger: nil discards.
	Logger *slog.Logger
}

// Stats are the bus's cumulative counters, for the daemon's metrics.
type Stats struct {
	Tries      uint64 // commands written, retries included
	Answered   uint64 // tries that got their reply
	Retries    uint64 // tries after a failed one
	Timeouts   uint64 // tries that got no valid reply in time
	BadReplies uint64 // tries that got bytes but no valid reply (garbage)
	Discarded  uint64 // garbage bytes skipped while resynchronising
	Failed     uint64 // exchanges that failed after all their tries (each unlock send counts)
	Reopens    uint64 // transport (re)opens
	Unlocks    uint64 // unlocks confirmed by status
	Jammed     uint64 // unlocks reported jammed
	Exceptions uint64 // commands a modbus-rtu board refused with an exception
	// ReleaseFailed counts modbus-rtu relays whose switch-off was not
	// acknowledged after every try; each is sent again before every poll of
	// its board until it is.
	ReleaseFailed uint64
}

// Bus drives every board on one serial line. It implements hw.Latch,
// hw.Sensors and hw.Halter and is safe for concurrent use: mu serialises
// the exchanges (one command in flight per bus); confirmation polling and
// staggering happen outside it so that other commands interleave.
type Bus struct {
	cfg     Config
	codec   board.Codec
	log     *slog.Logger
	m       hw.Map
	boards  []int
	stagger *hw.Stagger
	timeout time.Duration // per try
	quiet   time.Duration // a silence this long after some bytes ends a try
	retries int
	pulse   time.Duration // modbus-rtu: how long a relay is held on

	mu     sync.Mutex // guards everything below; held for a whole exchange
	port   Port       // nil until dialled, and after an I/O error
	dec    *board.ReplyDecoder
	buf    []byte
	health map[int]*hw.BoardState
	stats  Stats
	closed bool
	// pending are modbus-rtu relays whose switch-off was never acknowledged.
	pending map[hw.Addr]bool
	// refused is the last exception each board answered, so that a
	// misconfigured map is logged once, not at every poll.
	refused map[int]board.Exception
}

// Open returns a Bus on addr: "tcp://host:port" or a serial device path
// (opened at cfg.Baud, or the profile's speed).
func Open(addr string, cfg Config) (*Bus, error) {
	baud := cfg.Baud
	if baud == 0 {
		baud = cfg.Profile.Baud()
	}
	cfg.Dial = func() (Port, error) { return Dial(addr, baud) }
	return New(cfg)
}

// New returns a Bus. It tries to open the transport once; failing that, it
// still returns the Bus, whose boards read offline until a later try of the
// transport succeeds, so that one dead line does not stop the daemon.
func New(cfg Config) (*Bus, error) {
	if !cfg.Profile.Valid() {
		return nil, fmt.Errorf("serial: %w: %q", board.ErrProfile, cfg.Profile)
	}
	if cfg.Dial == nil {
		return nil, errors.New("serial: no transport (Dial)")
	}
	if cfg.Baud == 0 {
		cfg.Baud = cfg.Profile.Baud()
	}
	codec := board.Codec{Profile: cfg.Profile, Polarity: cfg.Polarity, Modbus: cfg.Modbus}
	if err := cfg.Modbus.Validate(); err != nil {
		return nil, fmt.Errorf("serial: %w", err)
	}
	m := cfg.Map
	if m == nil {
		m = hw.Map{}
		for _, bd := range cfg.Boards {
			for l := 1; l <= codec.Locks(); l++ {
				c, err := cfg.Profile.Compartment(bd, l)
				if err != nil {
					return nil, fmt.Errorf("serial: board %d: %w", bd, err)
				}
				m[c] = hw.Addr{Board: bd, Lock: l}
			}
		}
	}
	lo, hi := cfg.Profile.BoardRange()
	if err := m.Validate(lo, hi, codec.Locks()); err != nil {
		return nil, fmt.Errorf("serial: %w", err)
	}
	if cfg.ConfirmInterval <= 0 {
		cfg.ConfirmInterval = DefaultConfirmInterval
	}
	if cfg.ConfirmTimeout <= 0 {
		cfg.ConfirmTimeout = DefaultConfirmTimeout
	}
	if cfg.OfflineAfter <= 0 {
		cfg.OfflineAfter = DefaultOfflineAfter
	}
	b := &Bus{
		cfg:     cfg,
		codec:   codec,
		log:     cfg.Logger,
		m:       m,
		boards:  m.Boards(),
		stagger: cfg.Stagger,
		timeout: cfg.CommandTimeout,
		retries: cfg.Retries,
		buf:     make([]byte, 256),
		health:  map[int]*hw.BoardState{},
		pending: map[hw.Addr]bool{},
		refused: map[int]board.Exception{},
		pulse:   min(cfg.Pulse, MaxPulse),
	}
	if b.pulse <= 0 {
		b.pulse = DefaultPulse
	}
	if b.log == nil {
		b.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if b.stagger == nil {
		b.stagger = &hw.Stagger{}
	}
	if b.timeout <= 0 {
		b.timeout = WireTime(cfg.Baud, cfg.Profile.CommandLen()+cfg.Profile.MaxFrameLen()) + DefaultTurnaround
	}
	switch {
	case b.retries == 0:
		b.retries = DefaultRetries
	case b.retries < 0:
		b.retries = 0
	}
	// Ten character times is far more than any gap inside a frame on a real
	// line; the fixed part absorbs USB adapters' latency timers (16 ms on
	// FTDI chips), OS scheduling and pty/TCP chunking. It stays well under
	// the command timeout, so garbage still costs less than a timeout.
	b.quiet = WireTime(cfg.Baud, 10) + 40*time.Millisecond
	b.dec = board.NewReplyDecoder(b.codec)
	for _, bd := range b.boards {
		b.health[bd] = &hw.BoardState{}
	}
	b.mu.Lock()
	if err := b.openLocked(); err != nil {
		b.log.Warn("bus transport unavailable", "err", err)
	}
	b.mu.Unlock()
	return b, nil
}

// Map returns the compartment map in use (do not modify it).
func (b *Bus) Map() hw.Map { return b.m }

// Stats returns a copy of the counters.
func (b *Bus) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.stats
	s.Discarded = b.dec.Discarded()
	return s
}

// Halt implements hw.Halter. Kerong and bcc8a boards time their latch
// pulses in their own firmware, so the bus master has no relay it could
// leave energised and Halt returns nil. Modbus-rtu boards hold a coil until
// told otherwise: Halt writes every coil of the map off on every board
// (Write Multiple Coils), with every try even for a board believed offline,
// and returns the boards it could not reach.
func (b *Bus) Halt() error {
	if b.codec.Profile != board.ModbusRTU {
		return nil
	}
	var errs []error
	for _, bd := range b.boards {
		_, err := b.exchange(context.Background(), board.Command{Op: board.OpHalt, Board: bd},
			func(r board.Reply) bool { return r.Kind == board.ReplyHalt && r.Board == bd }, 1+b.retries, false)
		if err != nil {
			errs = append(errs, fmt.Errorf("serial: halt board %d: %w", bd, err))
			continue
		}
		b.mu.Lock()
		for a := range b.pending {
			if a.Board == bd {
				delete(b.pending, a)
			}
		}
		b.mu.Unlock()
	}
	return errors.Join(errs...)
}

// Close closes the transport; later calls fail with hw.ErrClosed.
// Idempotent.
func (b *Bus) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	if b.port != nil {
		err := b.port.Close()
		b.port = nil
		return err
	}
	return nil
}

// Unlock implements hw.Latch: staggered unlock command, then status reads
// every ConfirmInterval until the lock reads open (nil) or ConfirmTimeout
// passes (hw.ErrJammed). When an unlock gets no acknowledgement the bus
// reads the status before sending it again: the command may have pulsed the
// latch and only the acknowledgement been lost, and an open lock needs no
// second pulse. On modbus-rtu the relay is switched off Pulse after the
// unlock command (at once if ctx ends first), before the confirmation.
func (b *Bus) Unlock(ctx context.Context, compartment int) error {
	a, err := b.m.Lookup(compartment)
	if err != nil {
		return fmt.Errorf("serial: unlock: %w", err)
	}
	start := time.Now()
	open, err := b.sendUnlock(ctx, compartment, a)
	if err != nil {
		return err
	}
	if open {
		return b.confirmed(compartment, start)
	}

	deadline := start.Add(b.cfg.ConfirmTimeout)
	for {
		open, err := b.lockOpen(ctx, a, 1+b.retries)
		switch {
		case ctx.Err() != nil:
			return fmt.Errorf("serial: unlock %d: %w", compartment, ctx.Err())
		case err != nil:
			return fmt.Errorf("serial: unlock %d: confirm: %w", compartment, err)
		case open:
			return b.confirmed(compartment, start)
		}
		if time.Now().Add(b.cfg.ConfirmInterval).After(deadline) {
			b.mu.Lock()
			b.stats.Jammed++
			b.mu.Unlock()
			b.log.Warn("lock jammed", "compartment", compartment, "board", a.Board, "lock", a.Lock)
			return fmt.Errorf("serial: unlock %d (board %d lock %d): %w", compartment, a.Board, a.Lock, hw.ErrJammed)
		}
		t := time.NewTimer(b.cfg.ConfirmInterval)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("serial: unlock %d: %w", compartment, ctx.Err())
		}
	}
}

// sendUnlock sends the unlock command of a, and reports whether the lock
// was already seen open while looking after a lost acknowledgement.
func (b *Bus) sendUnlock(ctx context.Context, compartment int, a hw.Addr) (bool, error) {
	cmd := board.Command{Op: board.OpUnlock, Board: a.Board, Lock: a.Lock}
	isAck := func(r board.Reply) bool {
		return r.Kind == board.ReplyUnlock && r.Board == a.Board && r.Lock == a.Lock
	}
	var sent time.Time // when the relay was last told to switch on
	if b.codec.Profile == board.ModbusRTU {
		// Whatever happens below, the relay may be on: switch it off.
		defer func() { b.release(ctx, compartment, a, sent) }()
	}
	// Unlocks get every try even on a board believed offline: someone is
	// standing at the door, and the board may just have come back.
	for i := 0; ; i++ {
		_, err := b.exchange(ctx, cmd, isAck, 1, true)
		sent = time.Now()
		if err == nil {
			return false, nil
		}
		if ctx.Err() != nil {
			return false, fmt.Errorf("serial: unlock %d: %w", compartment, ctx.Err())
		}
		if i >= b.retries || isException(err) {
			return false, fmt.Errorf("serial: unlock %d (board %d lock %d): %w", compartment, a.Board, a.Lock, err)
		}
		// No acknowledgement. Look before pulsing again.
		open, err := b.lockOpen(ctx, a, 1+b.retries)
		if ctx.Err() != nil {
			return false, fmt.Errorf("serial: unlock %d: %w", compartment, ctx.Err())
		}
		if err != nil {
			return false, fmt.Errorf("serial: unlock %d (board %d lock %d): %w", compartment, a.Board, a.Lock, err)
		}
		if open {
			return true, nil
		}
	}
}

// release switches a's modbus-rtu relay off once Pulse has passed since
// sent (at once if ctx ends first), with every try. A switch-off never
// acknowledged leaves a pending: the bus sends it again before each poll of
// the board (Snapshot) until the board acknowledges it, and Halt switches
// every relay off.
func (b *Bus) release(ctx context.Context, compartment int, a hw.Addr, sent time.Time) {
	if d := time.Until(sent.Add(b.pulse)); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	err := b.releaseNow(context.WithoutCancel(ctx), a, 1+b.retries)
	// A refused coil was never switched on; a closed bus was halted first.
	if err != nil && !isException(err) && !errors.Is(err, hw.ErrClosed) {
		b.mu.Lock()
		b.stats.ReleaseFailed++
		b.mu.Unlock()
		b.log.Error("relay may still be on", "compartment", compartment, "board", a.Board, "lock", a.Lock, "err", err)
	}
}

// releaseNow sends a's switch-off and keeps a pending unless it was
// acknowledged (or refused, or the bus is closed: Close follows a Halt).
func (b *Bus) releaseNow(ctx context.Context, a hw.Addr, tries int) error {
	_, err := b.exchange(ctx, board.Command{Op: board.OpRelease, Board: a.Board, Lock: a.Lock},
		func(r board.Reply) bool {
			return r.Kind == board.ReplyRelease && r.Board == a.Board && r.Lock == a.Lock
		}, tries, false)
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case err == nil || isException(err):
		if b.pending[a] {
			delete(b.pending, a)
			b.log.Info("relay switched off", "board", a.Board, "lock", a.Lock)
		}
	case !errors.Is(err, hw.ErrClosed):
		b.pending[a] = true
	}
	return err
}

// isException reports a command refused by a modbus-rtu board.
func isException(err error) bool {
	var ex board.Exception
	return errors.As(err, &ex)
}

func (b *Bus) confirmed(compartment int, start time.Time) error {
	b.mu.Lock()
	b.stats.Unlocks++
	b.mu.Unlock()
	b.log.Debug("unlock confirmed", "compartment", compartment, "elapsed", time.Since(start))
	return nil
}

// lockOpen reads a's board status and reports whether a's lock reads open.
func (b *Bus) lockOpen(ctx context.Context, a hw.Addr, tries int) (bool, error) {
	st, err := b.status(ctx, a.Board, tries)
	if err != nil {
		return false, err
	}
	if a.Lock > len(st.Closed) {
		return false, fmt.Errorf("board %d: status has %d locks: %w", a.Board, len(st.Closed), hw.ErrBadReply)
	}
	return !st.Closed[a.Lock-1], nil
}

func (b *Bus) status(ctx context.Context, bd, tries int) (board.Status, error) {
	r, err := b.exchange(ctx, board.Command{Op: board.OpStatus, Board: bd},
		func(r board.Reply) bool { return r.Kind == board.ReplyStatus && r.Board == bd }, tries, false)
	if err != nil {
		return board.Status{}, err
	}
	return r.Status, nil
}

// Snapshot implements hw.Sensors: one status read per board, in address
// order. A board that does not answer leaves its compartments Unknown.
func (b *Bus) Snapshot(ctx context.Context) (hw.Snapshot, error) {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return hw.Snapshot{}, fmt.Errorf("serial: snapshot: %w", hw.ErrClosed)
	}
	statuses := make(map[int]board.Status, len(b.boards))
	for _, bd := range b.boards {
		for _, a := range b.pendingOn(bd) {
			if err := b.releaseNow(ctx, a, b.triesFor(bd)); err != nil && !isException(err) {
				break // the board does not answer: one timeout is enough for this poll
			}
		}
		st, err := b.status(ctx, bd, b.triesFor(bd))
		if ctx.Err() != nil {
			return hw.Snapshot{}, fmt.Errorf("serial: snapshot: %w", ctx.Err())
		}
		if err == nil {
			statuses[bd] = st
		}
	}
	snap := hw.Snapshot{
		At:           time.Now(),
		Compartments: make(map[int]hw.CompartmentState, len(b.m)),
		Boards:       make(map[int]hw.BoardState, len(b.boards)),
	}
	for c, a := range b.m {
		cs := hw.CompartmentState{Board: a.Board}
		if st, ok := statuses[a.Board]; ok && a.Lock <= len(st.Closed) {
			cs.Door = hw.DoorOpen
			if st.Closed[a.Lock-1] {
				cs.Door = hw.DoorClosed
			}
			if st.Occupied != nil && a.Lock <= len(st.Occupied) {
				cs.Occupancy = hw.Empty
				if st.Occupied[a.Lock-1] {
					cs.Occupancy = hw.Occupied
				}
			}
		}
		snap.Compartments[c] = cs
	}
	b.mu.Lock()
	for _, bd := range b.boards {
		snap.Boards[bd] = *b.health[bd]
	}
	b.mu.Unlock()
	return snap, nil
}

// pendingOn lists the relays of bd whose switch-off is pending.
func (b *Bus) pendingOn(bd int) []hw.Addr {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []hw.Addr
	for a := range b.pending {
		if a.Board == bd {
			out = append(out, a)
		}
	}
	return out
}

// triesFor is 1 for a board currently offline, else 1 + retries.
func (b *Bus) triesFor(bd int) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if h := b.health[bd]; h != nil && !h.Online {
		return 1
	}
	return 1 + b.retries
}

// exchange sends cmd and waits for a reply that match accepts, trying up
// to tries times. It records the outcome in the board's health. Failures
// wrap hw.ErrBoardOffline (and the last try's error). A modbus-rtu
// exception is an answer: it ends the exchange at once with an error
// wrapping the board.Exception, and the board counts as online.
//
// With stagger set (latch pulses) each try waits its turn on the Stagger
// right before writing, while holding the bus: the spacing must hold between
// the commands actually written, and a slot taken before queueing for the
// bus would be spent waiting behind other exchanges. The bus is held at most
// one gap longer.
func (b *Bus) exchange(ctx context.Context, cmd board.Command, match func(board.Reply) bool, tries int, stagger bool) (board.Reply, error) {
	frame, err := b.codec.EncodeCommand(cmd)
	if err != nil {
		return board.Reply{}, err
	}
	fn := b.codec.Function(cmd.Op)
	accept := func(r board.Reply) bool {
		return match(r) || (r.Kind == board.ReplyException && r.Board == cmd.Board && r.Function == fn)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return board.Reply{}, hw.ErrClosed
	}
	var last error
	for i := range tries {
		if err := ctx.Err(); err != nil {
			return board.Reply{}, err
		}
		if i > 0 {
			b.stats.Retries++
		}
		r, err := b.tryLocked(ctx, frame, accept, stagger)
		if err == nil {
			b.answeredLocked(cmd.Board)
			if r.Kind == board.ReplyException && !match(r) {
				return board.Reply{}, b.refusedLocked(cmd, r.Exception)
			}
			delete(b.refused, cmd.Board)
			return r, nil
		}
		if ctx.Err() != nil {
			return board.Reply{}, ctx.Err()
		}
		last = err
	}
	b.silentLocked(cmd.Board, last)
	b.stats.Failed++
	return board.Reply{}, fmt.Errorf("%s board %d: %w: %w", cmd.Op, cmd.Board, hw.ErrBoardOffline, last)
}

func (b *Bus) openLocked() error {
	if b.port != nil {
		return nil
	}
	p, err := b.cfg.Dial()
	if err != nil {
		return err
	}
	b.port = p
	b.stats.Reopens++
	return nil
}

// dropLocked closes a transport that failed, so the next try reopens it.
func (b *Bus) dropLocked(err error) {
	b.log.Warn("bus transport failed", "err", err)
	b.port.Close()
	b.port = nil
}

// tryLocked is one try: flush, write, read until a matching reply, the
// timeout, or a silence after bytes that made no valid reply.
func (b *Bus) tryLocked(ctx context.Context, frame []byte, match func(board.Reply) bool, stagger bool) (board.Reply, error) {
	if err := b.openLocked(); err != nil {
		return board.Reply{}, err
	}
	if err := b.port.ResetInput(); err != nil {
		b.dropLocked(err)
		return board.Reply{}, err
	}
	b.dec.Reset()
	discarded := b.dec.Discarded()
	if stagger {
		if err := b.stagger.Wait(ctx); err != nil {
			return board.Reply{}, err
		}
	}
	b.stats.Tries++
	if _, err := b.port.Write(frame); err != nil {
		b.dropLocked(err)
		return board.Reply{}, err
	}
	deadline := time.Now().Add(b.timeout)
	got := 0
	for {
		rem := time.Until(deadline)
		if rem <= 0 {
			break
		}
		if got > 0 {
			rem = min(rem, b.quiet)
		}
		// While nothing has come, read in slices so that a cancelled context
		// is noticed within 50 ms.
		if err := b.port.SetReadTimeout(min(rem, 50*time.Millisecond)); err != nil {
			b.dropLocked(err)
			return board.Reply{}, err
		}
		n, err := b.port.Read(b.buf)
		if n > 0 {
			got += n
			b.dec.Feed(b.buf[:n])
			for {
				r, _, ok := b.dec.Next()
				if !ok {
					break
				}
				if match(r) {
					b.stats.Answered++
					return r, nil
				}
				// A stale or unsolicited frame (bcc8a 0x82): not ours.
			}
		}
		if err != nil {
			b.dropLocked(err)
			return board.Reply{}, err
		}
		if ctx.Err() != nil {
			return board.Reply{}, ctx.Err()
		}
		if n == 0 && got > 0 {
			// Bytes came, then silence, and no valid reply among them:
			// garbage. Retrying now beats waiting out the timeout. The
			// silence is far longer than 3.5 characters: it ends any
			// modbus-rtu frame.
			b.dec.Gap()
			if b.dec.Discarded() > discarded || b.dec.Buffered() > 0 {
				b.stats.BadReplies++
				return board.Reply{}, hw.ErrBadReply
			}
		}
	}
	if got > 0 {
		b.stats.BadReplies++
		return board.Reply{}, hw.ErrBadReply
	}
	b.stats.Timeouts++
	return board.Reply{}, hw.ErrTimeout
}

// refusedLocked counts an exception from cmd's board and logs it when it
// differs from the board's last one.
func (b *Bus) refusedLocked(cmd board.Command, ex board.Exception) error {
	b.stats.Exceptions++
	if b.refused[cmd.Board] != ex {
		b.refused[cmd.Board] = ex
		b.log.Warn("board refused a command", "board", cmd.Board, "op", cmd.Op.String(), "lock", cmd.Lock, "err", ex)
	}
	return fmt.Errorf("%s board %d: %w", cmd.Op, cmd.Board, ex)
}

// answeredLocked records a valid reply from bd.
func (b *Bus) answeredLocked(bd int) {
	h := b.health[bd]
	if h == nil {
		return
	}
	if !h.Online {
		b.log.Info("board online", "board", bd)
	}
	h.Online, h.LastSeen, h.Failures = true, time.Now(), 0
}

// silentLocked records a command to bd that got no valid reply; the board
// goes offline once it has been silent for OfflineAfter (or if it has never
// answered).
func (b *Bus) silentLocked(bd int, err error) {
	h := b.health[bd]
	if h == nil {
		return
	}
	h.Failures++
	if h.Online && time.Since(h.LastSeen) >= b.cfg.OfflineAfter {
		h.Online = false
		b.log.Warn("board offline", "board", bd, "failures", h.Failures, "err", err)
	}
}

var (
	_ hw.Latch   = (*Bus)(nil)
	_ hw.Sensors = (*Bus)(nil)
	_ hw.Halter  = (*Bus)(nil)
)

// Boards returns the board addresses on this bus, in order.
func (b *Bus) Boards() []int { return slices.Clone(b.boards) }
