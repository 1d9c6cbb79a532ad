package board_test

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/larder-lockers/larder/protocol/board"
)

func hx(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	kerong    = board.Codec{Profile: board.KerongCU16}
	bcc       = board.Codec{Profile: board.BCC8A}
	bccInvert = board.Codec{Profile: board.BCC8A, Polarity: board.PolarityInverted}
)

func TestCommandRoundTripAllAddresses(t *testing.T) {
	for _, c := range []board.Codec{kerong, bcc} {
		lo, hi := c.Profile.BoardRange()
		for b := lo; b <= hi; b++ {
			cmds := []board.Command{{Op: board.OpStatus, Board: b}}
			for l := 1; l <= c.Profile.LocksPerBoard(); l++ {
				cmds = append(cmds, board.Command{Op: board.OpUnlock, Board: b, Lock: l})
				if c.Profile == board.BCC8A {
					cmds = append(cmds, board.Command{Op: board.OpQuery, Board: b, Lock: l})
				}
			}
			for _, cmd := range cmds {
				f, err := c.EncodeCommand(cmd)
				if err != nil {
					t.Fatalf("%s %+v: %v", c.Profile, cmd, err)
				}
				got, err := c.DecodeCommand(f)
				if err != nil || got != cmd {
					t.Fatalf("%s %+v: round trip got %+v, %v", c.Profile, cmd, got, err)
				}
			}
		}
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name  string
		codec board.Codec
		reply bool
		frame string
		want  error
	}{
		{"kerong bad sum", kerong, false, "02 00 30 03 36", board.ErrChecksum},
		{"kerong no ETX", kerong, false, "02 00 30 04 36", board.ErrFrame},
		{"kerong no STX", kerong, false, "01 00 30 03 34", board.ErrFrame},
		{"kerong short", kerong, false, "02 00 30 03", board.ErrLength},
		{"kerong long", kerong, false, "02 00 30 03 35 00", board.ErrLength},
		{"kerong unknown cmd", kerong, false, "02 00 32 03 37", board.ErrFrame},
		{"kerong status with lock nibble", kerong, false, "02 01 30 03 36", board.ErrAddress},
		{"bcc bad bcc", bcc, false, "8A 01 01 11 9C", board.ErrChecksum},
		{"bcc board 0", bcc, false, "8A 00 01 11 9A", board.ErrAddress},
		{"bcc board 33", bcc, false, "8A 21 01 11 BB", board.ErrAddress},
		{"bcc lock 25", bcc, false, "8A 01 19 11 83", board.ErrAddress},
		{"bcc wrong length", bcc, false, "8A 01 01 11", board.ErrLength},
		{"bcc open with query func", bcc, false, "8A 01 01 33 B9", board.ErrFrame},
		{"kerong reply short status", kerong, true, "02 00 35 00 00 00 00 03", board.ErrLength},
		{"kerong reply bad sum", kerong, true, "02 00 35 00 00 00 00 03 00", board.ErrChecksum},
		{"kerong reply no ETX", kerong, true, "02 00 35 00 00 00 00 04 3B", board.ErrFrame},
		{"kerong reply unknown", kerong, true, "02 00 30 03 35", board.ErrFrame},
		{"bcc reply bad state", bcc, true, "80 01 01 22 A2", board.ErrFrame},
		{"bcc reply bad bcc", bcc, true, "80 01 01 11 90", board.ErrChecksum},
		{"bcc reply board 0", bcc, true, "80 00 01 11 90", board.ErrAddress},
		{"bcc reply all wrong func", bcc, true, "80 01 00 00 00 00 11 90", board.ErrFrame},
		{"bcc reply unknown head", bcc, true, "81 01 01 11 90", board.ErrFrame},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.reply {
				_, err = tc.codec.DecodeReply(hx(t, tc.frame))
			} else {
				_, err = tc.codec.DecodeCommand(hx(t, tc.frame))
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	tests := []struct {
		name  string
		codec board.Codec
		cmd   board.Command
		want  error
	}{
		{"kerong board 16", kerong, board.Command{Op: board.OpStatus, Board: 16}, board.ErrAddress},
		{"kerong lock 17", kerong, board.Command{Op: board.OpUnlock, Board: 0, Lock: 17}, board.ErrAddress},
		{"kerong lock 0 unlock", kerong, board.Command{Op: board.OpUnlock, Board: 0}, board.ErrAddress},
		{"kerong query", kerong, board.Command{Op: board.OpQuery, Board: 0, Lock: 1}, board.ErrUnsupported},
		{"bcc unlock all", bcc, board.Command{Op: board.OpUnlockAll, Board: 1}, board.ErrUnsupported},
		{"bcc board 0", bcc, board.Command{Op: board.OpStatus, Board: 0}, board.ErrAddress},
		{"status with lock", bcc, board.Command{Op: board.OpStatus, Board: 1, Lock: 3}, board.ErrAddress},
		{"unknown op", bcc, board.Command{Op: 99, Board: 1}, board.ErrUnsupported},
		{"unknown profile", board.Codec{Profile: "x"}, board.Command{Op: board.OpStatus}, board.ErrProfile},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.codec.EncodeCommand(tc.cmd); !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestProfileFacts(t *testing.T) {
	if _, err := board.ParseProfile("nope"); !errors.Is(err, board.ErrProfile) {
		t.Errorf("ParseProfile(nope) = %v", err)
	}
	for _, tc := range []struct {
		p                   board.Profile
		baud, locks, lo, hi int
		ir                  bool
	}{
		{board.KerongCU16, 19200, 16, 0, 15, true},
		{board.BCC8A, 9600, 24, 1, 32, false},
	} {
		p, err := board.ParseProfile(string(tc.p))
		if err != nil {
			t.Fatal(err)
		}
		lo, hi := p.BoardRange()
		if p.Baud() != tc.baud || p.LocksPerBoard() != tc.locks || lo != tc.lo || hi != tc.hi || p.HasOccupancy() != tc.ir {
			t.Errorf("%s facts wrong", p)
		}
		for n := 1; n <= p.MaxBoards()*p.LocksPerBoard(); n++ {
			b, l, err := p.Locate(n)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := p.Compartment(b, l); err != nil || got != n {
				t.Fatalf("%s compartment %d -> %d/%d -> %d %v", p, n, b, l, got, err)
			}
		}
		if _, _, err := p.Locate(0); !errors.Is(err, board.ErrAddress) {
			t.Errorf("Locate(0) = %v", err)
		}
	}
	if n, _ := board.KerongCU16.Compartment(1, 1); n != 17 {
		t.Errorf("kerong board 1 lock 1 = %d, want 17", n)
	}
	if n, _ := board.BCC8A.Compartment(2, 1); n != 25 {
		t.Errorf("bcc board 2 lock 1 = %d, want 25", n)
	}
}
