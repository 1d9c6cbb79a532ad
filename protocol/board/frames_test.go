package board_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/larder-lockers/larder/protocol/board"
)

// frameExample is one entry of a testdata/<profile>.json file: a frame of a board
// profile with its meaning, as vendors and the docs quote it. Each file is a JSON array
// of
//
//	{"name": "unlock lock 3 of board 1", "profile": "kerong-cu16", "polarity": "inverted",
//	 "direction": "command", "meaning": "unlock board=1 lock=3", "hex": "02 12 31 03 48"}
//
// polarity is optional (bcc8a feedback, modbus-rtu door inputs; absent: normal);
// direction is command (edge → board) or reply (board → edge); hex is the frame, two
// hex digits per byte, separated by spaces. meaning is what the frame says, in the grammar of the ```frames blocks of
// docs/lock-boards.md:
//
//	command status|query|unlock|unlock_all board=B [lock=L]
//	reply   status board=B [closed=LIST] [occupied=LIST]
//	reply   lock|unlock|event board=B lock=L open|closed
//	reply   unlock board=B all
//
// modbus-rtu frames have a grammar of their own (parseModbusMeaning). LIST is lock
// numbers and ranges: 1,9,16 or 1-16. TestFrameExamples checks every entry against the
// codec both ways; TestLockBoardsDoc checks that every frame the page shows is an entry.
type frameExample struct {
	Name      string `json:"name"`
	Profile   string `json:"profile"`
	Polarity  string `json:"polarity,omitempty"`
	Direction string `json:"direction"`
	Meaning   string `json:"meaning"`
	Hex       string `json:"hex"`

	// Parsed from the fields above.
	codec board.Codec
	cmd   *board.Command
	reply *board.Reply
	frame []byte
	// Where it came from, for messages: file#index, or the doc's line.
	text string
	line int
}

// loadFrames reads every testdata/*.json frame file.
func loadFrames(tb testing.TB) []frameExample {
	tb.Helper()
	files, err := filepath.Glob("testdata/*.json")
	if err != nil || len(files) == 0 {
		tb.Fatalf("no frame examples in testdata/: %v", err)
	}
	var out []frameExample
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		var exs []frameExample
		if err := dec.Decode(&exs); err != nil {
			tb.Fatalf("%s: %v", f, err)
		}
		for i, ex := range exs {
			if err := ex.parse(); err != nil {
				tb.Fatalf("%s[%d] %q: %v", f, i, ex.Name, err)
			}
			ex.text = fmt.Sprintf("%s[%d] %s", filepath.Base(f), i, ex.Name)
			out = append(out, ex)
		}
	}
	return out
}

// framesOf returns the frames of one direction ("command" or "reply").
func framesOf(tb testing.TB, direction string) []frameExample {
	var out []frameExample
	for _, ex := range loadFrames(tb) {
		if ex.Direction == direction {
			out = append(out, ex)
		}
	}
	return out
}

// TestFrameExamples checks every frame example of testdata/ against the codec: the
// meaning encodes to the frame and the frame decodes to the meaning.
func TestFrameExamples(t *testing.T) {
	for _, ex := range loadFrames(t) {
		t.Run(ex.text, func(t *testing.T) {
			if ex.cmd != nil {
				got, err := ex.codec.EncodeCommand(*ex.cmd)
				if err != nil {
					t.Fatalf("%s: %v", ex.Meaning, err)
				}
				if !bytes.Equal(got, ex.frame) {
					t.Errorf("%s: codec encodes % X, want % X", ex.Meaning, got, ex.frame)
				}
				cmd, err := ex.codec.DecodeCommand(ex.frame)
				if err != nil {
					t.Fatalf("%s: %v", ex.Meaning, err)
				}
				if diff := cmp.Diff(*ex.cmd, cmd); diff != "" {
					t.Errorf("%s: decode (-data +codec):\n%s", ex.Meaning, diff)
				}
				return
			}
			got, err := ex.codec.EncodeReply(*ex.reply)
			if err != nil {
				t.Fatalf("%s: %v", ex.Meaning, err)
			}
			if !bytes.Equal(got, ex.frame) {
				t.Errorf("%s: codec encodes % X, want % X", ex.Meaning, got, ex.frame)
			}
			r, err := ex.codec.DecodeReply(ex.frame)
			if err != nil {
				t.Fatalf("%s: %v", ex.Meaning, err)
			}
			if diff := cmp.Diff(*ex.reply, r); diff != "" {
				t.Errorf("%s: decode (-data +codec):\n%s", ex.Meaning, diff)
			}
		})
	}
}

// parse fills the codec, command or reply, and frame from the JSON fields.
func (ex *frameExample) parse() error {
	frame, err := hexBytes(ex.Hex)
	if err != nil {
		return err
	}
	ex.frame = frame
	p, err := board.ParseProfile(ex.Profile)
	if err != nil {
		return err
	}
	ex.codec = board.Codec{Profile: p}
	if ex.Polarity != "" {
		if ex.codec.Polarity, err = board.ParsePolarity(ex.Polarity); err != nil {
			return err
		}
	}
	if p == board.ModbusRTU { // its own grammar: parseModbusMeaning
		ex.cmd, ex.reply, err = parseModbusMeaning(ex.codec, ex.Direction, ex.Meaning)
		return err
	}
	f := strings.Fields(ex.Meaning)
	if len(f) == 0 {
		return fmt.Errorf("no meaning")
	}
	args := map[string]string{}
	for _, a := range f[1:] {
		k, v, _ := strings.Cut(a, "=")
		args[k] = v
	}
	num := func(k string) (int, error) {
		v, ok := args[k]
		delete(args, k)
		if !ok {
			return 0, nil
		}
		return strconv.Atoi(v)
	}
	flag := func(k string) bool {
		_, ok := args[k]
		delete(args, k)
		return ok
	}
	bd, err := num("board")
	if err != nil {
		return err
	}
	lock, err := num("lock")
	if err != nil {
		return err
	}
	switch ex.Direction {
	case "command":
		ops := map[string]board.Op{"status": board.OpStatus, "query": board.OpQuery, "unlock": board.OpUnlock, "unlock_all": board.OpUnlockAll}
		op, ok := ops[f[0]]
		if !ok {
			return fmt.Errorf("unknown command %q", f[0])
		}
		ex.cmd = &board.Command{Op: op, Board: bd, Lock: lock}
	case "reply":
		n := p.LocksPerBoard()
		r := board.Reply{Board: bd, Lock: lock}
		switch f[0] {
		case "status":
			closed, err := lockList(args["closed"], n)
			if err != nil {
				return err
			}
			delete(args, "closed")
			r.Kind, r.Status = board.ReplyStatus, board.Status{Board: bd, Closed: closed}
			if p.HasOccupancy() {
				if r.Status.Occupied, err = lockList(args["occupied"], n); err != nil {
					return err
				}
			}
			delete(args, "occupied")
		case "lock", "unlock", "event":
			r.Kind = map[string]board.ReplyKind{"lock": board.ReplyLock, "unlock": board.ReplyUnlock, "event": board.ReplyEvent}[f[0]]
			r.All = flag("all")
			r.Closed = flag("closed")
			flag("open")
		default:
			return fmt.Errorf("unknown reply %q", f[0])
		}
		ex.reply = &r
	default:
		return fmt.Errorf("direction %q: want command or reply", ex.Direction)
	}
	if len(args) > 0 {
		return fmt.Errorf("unknown arguments %v", args)
	}
	return nil
}

func hexBytes(s string) ([]byte, error) {
	var out []byte
	for _, h := range strings.Fields(s) {
		v, err := strconv.ParseUint(h, 16, 8)
		if err != nil || len(h) != 2 {
			return nil, fmt.Errorf("byte %q: want two hex digits", h)
		}
		out = append(out, byte(v))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no frame")
	}
	return out, nil
}

// lockList turns "1,9,16" or "1-16" into n booleans (lock i+1 at index i).
func lockList(s string, n int) ([]bool, error) {
	out := make([]bool, n)
	if s == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, err
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				return nil, err
			}
		}
		for i := a; i <= b; i++ {
			if i < 1 || i > n {
				return nil, fmt.Errorf("lock %d not in 1–%d", i, n)
			}
			out[i-1] = true
		}
	}
	return out, nil
}
