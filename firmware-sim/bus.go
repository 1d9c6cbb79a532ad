package sim

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/larder-lockers/larder/protocol/board"
)

// BusConfig sets the line of a Bus.
type BusConfig struct {
	// Polarity of the simulated bcc8a lock feedback and modbus-rtu door
	// inputs (kerong ignores it).
	Polarity board.Polarity
	// Baud of the line (zero: the profile's default).
	Baud int
	// Turnaround is the time a board takes between the end of a command
	// and the start of its reply (zero: DefaultTurnaround).
	Turnaround time.Duration
	// Seed seeds the line-fault RNG, so that a replay garbles the same bytes.
	Seed uint64
	// Events makes bcc8a boards send unsolicited 0x82 frames when a lock's
	// feedback changes (checked every EventPoll, zero: 50 ms).
	Events    bool
	EventPoll time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
}

// DefaultTurnaround is a realistic board turnaround (microcontroller
// parsing the frame, reading its inputs, switching the RS-485 driver).
const DefaultTurnaround = 5 * time.Millisecond

// BusInfo describes the line and its counters (GET /v1/bus).
type BusInfo struct {
	Profile      string  `json:"profile"`
	Baud         int     `json:"baud"`
	CharTimeUS   float64 `json:"char_time_us"`
	TurnaroundUS float64 `json:"turnaround_us"`
	Boards       []int   `json:"boards"`
	Commands     uint64  `json:"commands"`      // valid command frames received
	Replies      uint64  `json:"replies"`       // reply frames sent
	Unanswered   uint64  `json:"unanswered"`    // commands no board answered
	Events       uint64  `json:"events"`        // unsolicited frames sent
	Discarded    uint64  `json:"discarded"`     // received bytes skipped while resynchronising
	GarbledBytes uint64  `json:"garbled_bytes"` // bytes corrupted by the garble fault
	DroppedBytes uint64  `json:"dropped_bytes"` // bytes lost by the drop fault
	Connections  uint64  `json:"connections"`   // streams served so far
}

// Bus serves a World on a byte stream, as the boards on an RS-485 line.
type Bus struct {
	w     *World
	codec board.Codec
	cfg   BusConfig
	log   *slog.Logger

	rngMu sync.Mutex
	rng   *rand.Rand

	commands, replies, unanswered, events atomic.Uint64
	discarded, garbled, dropped, conns    atomic.Uint64
}

// NewBus returns a bus serving w.
func NewBus(w *World, cfg BusConfig) *Bus {
	p := w.Config().Profile
	if cfg.Baud == 0 {
		cfg.Baud = p.Baud()
	}
	if cfg.Turnaround == 0 {
		cfg.Turnaround = DefaultTurnaround
	}
	if cfg.EventPoll == 0 {
		cfg.EventPoll = 50 * time.Millisecond
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Bus{
		w: w, cfg: cfg, log: log,
		codec: board.Codec{Profile: p, Polarity: cfg.Polarity},
		rng:   rand.New(rand.NewPCG(cfg.Seed, 0x1a2de5)),
	}
}

// CharTime is the wire time of one byte: 10 bits (8N1) at the baud rate.
func (b *Bus) CharTime() time.Duration {
	return time.Duration(10 * float64(time.Second) / float64(b.cfg.Baud))
}

// WireTime is the wire time of n bytes.
func (b *Bus) WireTime(n int) time.Duration { return time.Duration(n) * b.CharTime() }

// Turnaround is the board turnaround in use.
func (b *Bus) Turnaround() time.Duration { return b.cfg.Turnaround }

// Baud is the line speed in use.
func (b *Bus) Baud() int { return b.cfg.Baud }

// TransactionFloor is the shortest possible command/reply exchange: the
// command's and the reply's wire time plus the turnaround.
func (b *Bus) TransactionFloor(cmdLen, replyLen int) time.Duration {
	return b.WireTime(cmdLen+replyLen) + b.cfg.Turnaround
}

// Info returns the line description and counters.
func (b *Bus) Info() BusInfo {
	return BusInfo{
		Profile:      string(b.codec.Profile),
		Baud:         b.cfg.Baud,
		CharTimeUS:   float64(b.CharTime()) / float64(time.Microsecond),
		TurnaroundUS: float64(b.cfg.Turnaround) / float64(time.Microsecond),
		Boards:       b.w.BoardAddrs(),
		Commands:     b.commands.Load(),
		Replies:      b.replies.Load(),
		Unanswered:   b.unanswered.Load(),
		Events:       b.events.Load(),
		Discarded:    b.discarded.Load(),
		GarbledBytes: b.garbled.Load(),
		DroppedBytes: b.dropped.Load(),
		Connections:  b.conns.Load(),
	}
}

// lineFault decides the fate of one byte on the line: dropped, or
// possibly with one bit flipped.
func (b *Bus) lineFault(c byte) (byte, bool) {
	garble, drop := b.w.LineFaults()
	if garble == 0 && drop == 0 {
		return c, true
	}
	b.rngMu.Lock()
	defer b.rngMu.Unlock()
	if drop > 0 && b.rng.Float64() < drop {
		b.dropped.Add(1)
		return 0, false
	}
	if garble > 0 && b.rng.Float64() < garble {
		b.garbled.Add(1)
		return c ^ 1<<b.rng.IntN(8), true
	}
	return c, true
}

func sleepUntil(t time.Time) {
	if d := time.Until(t); d > 0 {
		time.Sleep(d)
	}
}

// Serve answers commands read from rw until rw fails or ctx is done; it
// closes rw before returning. It returns nil when ctx ended it.
func (b *Bus) Serve(ctx context.Context, rw io.ReadWriteCloser) error {
	b.conns.Add(1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var closeOnce sync.Once
	closeRW := func() { closeOnce.Do(func() { rw.Close() }) }
	defer closeRW()
	go func() { <-ctx.Done(); closeRW() }()

	var writeMu sync.Mutex // one frame on the wire at a time
	if b.cfg.Events && b.codec.Profile == board.BCC8A {
		var events sync.WaitGroup
		events.Go(func() { b.sendEvents(ctx, rw, &writeMu) })
		// Unblock the sender (a write blocked on a stuck reader included),
		// then wait for it.
		defer func() { cancel(); closeRW(); events.Wait() }()
	}

	var side slave = &commandSlave{b: b, dec: board.NewCommandDecoder(b.codec)}
	if b.codec.Profile == board.ModbusRTU {
		side = &modbusSlave{b: b, dec: board.NewModbusRequestDecoder()}
	}
	char := b.CharTime()
	silence := board.ModbusSilence(b.cfg.Baud)
	var lineAt time.Time // when the last received byte finished on the (virtual) wire
	buf := make([]byte, 256)
	for {
		n, err := rw.Read(buf)
		for _, c := range buf[:n] {
			now := time.Now()
			quiet := now.Sub(lineAt) >= silence
			if lineAt.Before(now) {
				lineAt = now
			}
			lineAt = lineAt.Add(char)
			c, ok := b.lineFault(c)
			if !ok {
				continue
			}
			before := side.discarded()
			side.feed(c, quiet)
			for {
				exec, ok := side.next()
				if !ok {
					break
				}
				b.commands.Add(1)
				writeMu.Lock()
				end, werr := b.answer(rw, exec, lineAt)
				writeMu.Unlock()
				if werr != nil {
					return b.ended(ctx, werr)
				}
				if end.After(lineAt) {
					lineAt = end
				}
			}
			b.discarded.Add(side.discarded() - before)
		}
		if err != nil {
			return b.ended(ctx, err)
		}
	}
}

func (b *Bus) ended(ctx context.Context, err error) error {
	if ctx.Err() != nil || errors.Is(err, io.EOF) || errors.Is(err, os.ErrClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// slave is the boards' side of one connection: it finds the commands in
// the bytes received and executes them.
type slave interface {
	// feed takes one received byte; quiet reports a silence of at least
	// 3.5 characters before it (the Modbus RTU frame delimiter).
	feed(c byte, quiet bool)
	// next returns the execution of the next whole command, or false.
	// exec returns the reply frame and a slow-replies delay, or false when
	// no board answers.
	next() (exec func() ([]byte, time.Duration, bool), ok bool)
	discarded() uint64
}

// commandSlave serves the profiles whose commands are board.Commands.
type commandSlave struct {
	b   *Bus
	dec *board.CommandDecoder
}

func (s *commandSlave) feed(c byte, _ bool) { s.dec.Feed([]byte{c}) }
func (s *commandSlave) discarded() uint64   { return s.dec.Discarded() }

func (s *commandSlave) next() (func() ([]byte, time.Duration, bool), bool) {
	cmd, _, ok := s.dec.Next()
	if !ok {
		return nil, false
	}
	return func() ([]byte, time.Duration, bool) {
		r, slow, ok := s.b.w.Execute(cmd)
		if !ok {
			s.b.log.Debug("no board answers", "board", cmd.Board, "op", cmd.Op.String())
			return nil, 0, false
		}
		frame, err := s.b.codec.EncodeReply(r)
		if err != nil {
			// Execute built the reply from the world: a broken invariant.
			panic("sim: encode reply: " + err.Error())
		}
		return frame, slow, true
	}, true
}

// answer executes a command whose last byte finished on the wire at
// cmdEnd, and writes the reply paced at the baud rate. It returns when the
// reply's last byte is on the wire.
func (b *Bus) answer(w io.Writer, exec func() ([]byte, time.Duration, bool), cmdEnd time.Time) (time.Time, error) {
	// The board acts on the command once it has received it.
	sleepUntil(cmdEnd)
	frame, slow, ok := exec()
	if !ok {
		b.unanswered.Add(1)
		return cmdEnd, nil
	}
	b.replies.Add(1)
	return b.transmit(w, frame, cmdEnd.Add(b.cfg.Turnaround+slow))
}

// transmit puts frame on the wire starting at start: byte i is written when
// its tenth bit would have arrived.
func (b *Bus) transmit(w io.Writer, frame []byte, start time.Time) (time.Time, error) {
	char := b.CharTime()
	end := start
	for i, c := range frame {
		end = start.Add(time.Duration(i+1) * char)
		c, ok := b.lineFault(c)
		if !ok {
			continue // lost on the wire; it still took its time
		}
		sleepUntil(end)
		if _, err := w.Write([]byte{c}); err != nil {
			return end, err
		}
	}
	sleepUntil(end)
	return end, nil
}

// sendEvents emits bcc8a 0x82 frames when a lock's feedback changes.
func (b *Bus) sendEvents(ctx context.Context, w io.Writer, writeMu *sync.Mutex) {
	last := map[int][]bool{}
	for _, a := range b.w.BoardAddrs() {
		if st, ok := b.w.BoardStatus(a); ok {
			last[a] = st.Closed
		}
	}
	t := time.NewTicker(b.cfg.EventPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, a := range b.w.BoardAddrs() {
			st, ok := b.w.BoardStatus(a)
			if !ok {
				continue // a silent board sends nothing
			}
			prev := last[a]
			last[a] = st.Closed
			for i, closed := range st.Closed {
				if prev == nil || prev[i] == closed {
					continue
				}
				f, err := b.codec.EncodeReply(board.Reply{Kind: board.ReplyEvent, Board: a, Lock: i + 1, Closed: closed})
				if err != nil {
					panic("sim: encode event: " + err.Error())
				}
				writeMu.Lock()
				_, err = b.transmit(w, f, time.Now())
				writeMu.Unlock()
				if err != nil {
					return
				}
				b.events.Add(1)
			}
		}
	}
}
