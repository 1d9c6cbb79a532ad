package serial_test

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/larder-lockers/larder/protocol/board"
)

// responder is a minimal board-side peer built on protocol/board, serving
// one TCP connection at a time on loopback. It answers at once (no wire
// time), so that tests of the bus logic are fast; the larder-sim tests cover
// timing and the real pty.
type responder struct {
	t     *testing.T
	codec board.Codec
	ln    net.Listener

	mu       sync.Mutex
	closed   map[int][]bool // board → lock i+1 closed
	occupied map[int][]bool
	jammed   map[[2]int]bool // {board, lock}
	silent   map[int]bool
	garble   int // corrupt this many next replies
	dropAcks int // perform but do not acknowledge this many next unlocks
	unlocks  map[[2]int]int
	unlockAt []time.Time
	conn     net.Conn
	// modbus-rtu: relays[board][i] is lock i+1's coil; releases counts
	// switch-offs by lock; dropReleases ignores that many next switch-offs
	// (lost on the line); refuse answers an op with an exception.
	relays       map[int][]bool
	releases     map[[2]int]int
	releaseAt    []time.Time
	dropReleases int
	halts        int
	refuse       map[board.Op]board.Exception
}

func newResponder(t *testing.T, p board.Profile, boards ...int) *responder {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &responder{
		t: t, codec: board.Codec{Profile: p}, ln: ln,
		closed: map[int][]bool{}, occupied: map[int][]bool{},
		jammed: map[[2]int]bool{}, silent: map[int]bool{}, unlocks: map[[2]int]int{},
		relays: map[int][]bool{}, releases: map[[2]int]int{}, refuse: map[board.Op]board.Exception{},
	}
	for _, b := range boards {
		r.closed[b] = make([]bool, p.LocksPerBoard())
		for i := range r.closed[b] {
			r.closed[b][i] = true
		}
		if p.HasOccupancy() {
			r.occupied[b] = make([]bool, p.LocksPerBoard())
		}
		r.relays[b] = make([]bool, p.LocksPerBoard())
	}
	go r.serve()
	t.Cleanup(func() {
		ln.Close()
		r.mu.Lock()
		if r.conn != nil {
			r.conn.Close()
		}
		r.mu.Unlock()
	})
	return r
}

func (r *responder) addr() string { return "tcp://" + r.ln.Addr().String() }

func (r *responder) serve() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		r.conn = c
		r.mu.Unlock()
		r.handle(c)
	}
}

// dropConn closes the current connection from the board side.
func (r *responder) dropConn() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conn != nil {
		r.conn.Close()
	}
}

func (r *responder) handle(c net.Conn) {
	defer c.Close()
	dec := board.NewCommandDecoder(r.codec)
	buf := make([]byte, 64)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		dec.Feed(buf[:n])
		for {
			cmd, _, ok := dec.Next()
			if !ok {
				break
			}
			if out := r.answer(cmd); out != nil {
				if _, err := c.Write(out); err != nil {
					return
				}
			}
		}
	}
}

func (r *responder) answer(cmd board.Command) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	closed, ok := r.closed[cmd.Board]
	if !ok || r.silent[cmd.Board] {
		return nil
	}
	var rep board.Reply
	if ex := r.refuse[cmd.Op]; ex != 0 {
		rep = board.Reply{Kind: board.ReplyException, Board: cmd.Board, Function: r.codec.Function(cmd.Op), Exception: ex}
		cmd.Op = 0 // answered below with the exception
	}
	switch cmd.Op {
	case board.OpStatus:
		rep = board.Reply{Kind: board.ReplyStatus, Board: cmd.Board, Status: board.Status{
			Board: cmd.Board, Closed: append([]bool(nil), closed...), Occupied: append([]bool(nil), r.occupied[cmd.Board]...),
		}}
		if !r.codec.Profile.HasOccupancy() {
			rep.Status.Occupied = nil
		}
	case board.OpUnlock:
		k := [2]int{cmd.Board, cmd.Lock}
		r.unlocks[k]++
		r.unlockAt = append(r.unlockAt, time.Now())
		r.relays[cmd.Board][cmd.Lock-1] = true
		if !r.jammed[k] {
			closed[cmd.Lock-1] = false
		}
		if r.dropAcks > 0 {
			r.dropAcks--
			return nil
		}
		rep = board.Reply{Kind: board.ReplyUnlock, Board: cmd.Board, Lock: cmd.Lock}
		if r.codec.Profile != board.ModbusRTU {
			rep.Closed = closed[cmd.Lock-1]
		}
	case board.OpRelease:
		if r.dropReleases > 0 {
			r.dropReleases--
			return nil
		}
		r.releases[[2]int{cmd.Board, cmd.Lock}]++
		r.releaseAt = append(r.releaseAt, time.Now())
		r.relays[cmd.Board][cmd.Lock-1] = false
		rep = board.Reply{Kind: board.ReplyRelease, Board: cmd.Board, Lock: cmd.Lock}
	case board.OpHalt:
		r.halts++
		clear(r.relays[cmd.Board])
		rep = board.Reply{Kind: board.ReplyHalt, Board: cmd.Board}
	case board.OpRelays:
		rep = board.Reply{Kind: board.ReplyRelays, Board: cmd.Board, Relays: append([]bool(nil), r.relays[cmd.Board]...)}
	case 0: // refused
	default:
		return nil
	}
	out, err := r.codec.EncodeReply(rep)
	if err != nil {
		r.t.Errorf("responder: encode %+v: %v", rep, err)
		return nil
	}
	if r.garble > 0 {
		r.garble--
		// Line noise before the frame and a flipped bit inside it: the
		// decoder must skip the first and reject the second.
		out = append([]byte{0x02, 0xFF, 0x8A, 0x13}, out...)
		out[len(out)-2] ^= 0x10
	}
	return out
}

func (r *responder) set(f func(r *responder)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(r)
}
