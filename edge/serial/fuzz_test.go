package serial_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/larder-lockers/larder/edge/hw"
	"github.com/larder-lockers/larder/edge/serial"
	"github.com/larder-lockers/larder/protocol/board"
)

// linePort is an in-memory Port: every command written is answered with
// the next canned chunk of bytes. Reads without data wait out the timeout,
// as a tty does.
type linePort struct {
	replies [][]byte
	pending []byte
	timeout time.Duration
}

func (p *linePort) Write(b []byte) (int, error) {
	if len(p.replies) > 0 {
		p.pending = append(p.pending, p.replies[0]...)
		p.replies = p.replies[1:]
	}
	return len(b), nil
}

func (p *linePort) Read(b []byte) (int, error) {
	if len(p.pending) == 0 {
		time.Sleep(p.timeout)
		return 0, nil
	}
	n := copy(b, p.pending)
	p.pending = p.pending[n:]
	return n, nil
}

func (p *linePort) SetReadTimeout(d time.Duration) error { p.timeout = d; return nil }
func (p *linePort) ResetInput() error                    { p.pending = nil; return nil }
func (p *linePort) Close() error                         { return nil }

// FuzzBusReplies feeds arbitrary bytes to a bus as the replies to its
// status commands. The bus must not panic or hang, and a door it reports
// known must be the one in a valid status frame for that board found in
// those bytes: garbage may cost retries and leave the state unknown, never
// invent one.
func FuzzBusReplies(f *testing.F) {
	for _, p := range board.Profiles {
		c := board.Codec{Profile: p}
		lo, _ := p.BoardRange()
		closed := make([]bool, p.LocksPerBoard())
		closed[0] = true
		good, err := c.EncodeReply(board.Reply{Kind: board.ReplyStatus, Board: lo, Status: board.Status{Closed: closed}})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(p), good)
		f.Add(string(p), append([]byte{0x02, 0x80, 0x8A, 0xFF}, good...))
		bad := bytes.Clone(good)
		bad[3] ^= 0x01
		f.Add(string(p), bad)
		f.Add(string(p), good[:4])
	}
	f.Fuzz(func(t *testing.T, profile string, data []byte) {
		p, err := board.ParseProfile(profile)
		if err != nil {
			return
		}
		lo, _ := p.BoardRange()
		port := &linePort{replies: [][]byte{data, data}}
		b, err := serial.New(serial.Config{
			Profile: p, Boards: []int{lo}, Retries: 1, CommandTimeout: 2 * time.Millisecond,
			Dial: func() (serial.Port, error) { return port, nil },
		})
		if err != nil {
			t.Fatal(err)
		}
		snap, err := b.Snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		// The oracle: the first valid status frame of board lo in data.
		dec := board.NewReplyDecoder(board.Codec{Profile: p})
		dec.Feed(data)
		var want *board.Status
		for {
			r, _, ok := dec.Next()
			if !ok {
				break
			}
			if r.Kind == board.ReplyStatus && r.Board == lo {
				want = &r.Status
				break
			}
		}
		for c := 1; c <= p.LocksPerBoard(); c++ {
			got := snap.Compartments[c].Door
			if got == hw.DoorUnknown {
				continue
			}
			if want == nil {
				t.Fatalf("door %d reads %v from bytes with no valid status frame: % x", c, got, data)
			}
			if (got == hw.DoorClosed) != want.Closed[c-1] {
				t.Fatalf("door %d reads %v, the frame says closed=%v", c, got, want.Closed[c-1])
			}
		}
		if want != nil && snap.Compartments[1].Door == hw.DoorUnknown {
			t.Fatalf("a valid status frame was not taken: % x", data)
		}
	})
}
