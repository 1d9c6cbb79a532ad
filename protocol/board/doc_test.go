package board_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/larder-lockers/larder/protocol/board"
)

// lockBoardsDoc is the vendor-facing description of the board protocols. Its
// examples are checked here so that the page cannot drift from the codec.
const lockBoardsDoc = "../../docs/lock-boards.md"

// docExample is one line of a ```frames block:
//
//	PROFILE[/inverted] command OP board=B [lock=L]                          => HEX
//	PROFILE[/inverted] reply status board=B [closed=LIST] [occupied=LIST]   => HEX
//	PROFILE[/inverted] reply lock|unlock|event board=B lock=L open|closed   => HEX
//	kerong-cu16 reply unlock board=B all                                    => HEX
//
// LIST is lock numbers and ranges: 1,9,16 or 1-16.
type docExample struct {
	line  int
	text  string
	codec board.Codec
	cmd   *board.Command
	reply *board.Reply
	frame []byte
}

// TestLockBoardsDoc checks every example frame of docs/lock-boards.md against the
// codec, both ways, and that every byte string quoted elsewhere in the page is one
// of those checked frames.
func TestLockBoardsDoc(t *testing.T) {
	doc, err := os.ReadFile(lockBoardsDoc)
	if err != nil {
		t.Fatal(err)
	}
	examples, err := parseDocExamples(doc)
	if err != nil {
		t.Fatal(err)
	}
	// The page shows every command and reply kind of both profiles; far fewer
	// examples means a block lost its marker and went unchecked.
	if len(examples) < 20 {
		t.Fatalf("%s: %d checked frames, want at least 20", lockBoardsDoc, len(examples))
	}
	checked := map[string]bool{}
	for _, ex := range examples {
		checked[fmt.Sprintf("% X", ex.frame)] = true
		t.Run(fmt.Sprintf("line %d", ex.line), func(t *testing.T) {
			if ex.cmd != nil {
				got, err := ex.codec.EncodeCommand(*ex.cmd)
				if err != nil {
					t.Fatalf("%s: %v", ex.text, err)
				}
				if !bytes.Equal(got, ex.frame) {
					t.Errorf("%s: codec encodes % X", ex.text, got)
				}
				cmd, err := ex.codec.DecodeCommand(ex.frame)
				if err != nil {
					t.Fatalf("%s: %v", ex.text, err)
				}
				if diff := cmp.Diff(*ex.cmd, cmd); diff != "" {
					t.Errorf("%s: decode (-doc +codec):\n%s", ex.text, diff)
				}
				return
			}
			got, err := ex.codec.EncodeReply(*ex.reply)
			if err != nil {
				t.Fatalf("%s: %v", ex.text, err)
			}
			if !bytes.Equal(got, ex.frame) {
				t.Errorf("%s: codec encodes % X", ex.text, got)
			}
			r, err := ex.codec.DecodeReply(ex.frame)
			if err != nil {
				t.Fatalf("%s: %v", ex.text, err)
			}
			if diff := cmp.Diff(*ex.reply, r); diff != "" {
				t.Errorf("%s: decode (-doc +codec):\n%s", ex.text, diff)
			}
		})
	}
	// Byte strings in running text (`02 00 30 03 35`) must be checked frames too.
	quoted := regexp.MustCompile("`((?:[0-9A-Fa-f]{2} ){3,}[0-9A-Fa-f]{2})`")
	for _, m := range quoted.FindAllSubmatch(doc, -1) {
		if q := strings.ToUpper(string(m[1])); !checked[q] {
			t.Errorf("%s quotes `%s`, which is not one of its checked frames", lockBoardsDoc, m[1])
		}
	}
}

func parseDocExamples(doc []byte) ([]docExample, error) {
	var out []docExample
	in := false
	sc := bufio.NewScanner(bytes.NewReader(doc))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "```frames":
			in = true
			continue
		case strings.HasPrefix(line, "```"):
			in = false
			continue
		case !in || line == "":
			continue
		}
		ex, err := parseDocExample(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %q: %w", lockBoardsDoc, n, line, err)
		}
		ex.line = n
		out = append(out, ex)
	}
	return out, sc.Err()
}

func parseDocExample(line string) (docExample, error) {
	ex := docExample{text: line}
	spec, hexs, ok := strings.Cut(line, "=>")
	if !ok {
		return ex, fmt.Errorf("no =>")
	}
	frame, err := hexBytes(hexs)
	if err != nil {
		return ex, err
	}
	ex.frame = frame
	f := strings.Fields(spec)
	if len(f) < 3 {
		return ex, fmt.Errorf("want PROFILE DIRECTION KIND ...")
	}
	prof, pol, _ := strings.Cut(f[0], "/")
	p, err := board.ParseProfile(prof)
	if err != nil {
		return ex, err
	}
	ex.codec = board.Codec{Profile: p}
	if pol != "" {
		if ex.codec.Polarity, err = board.ParsePolarity(pol); err != nil {
			return ex, err
		}
	}
	if p == board.ModbusRTU {
		ex.cmd, ex.reply, err = parseModbusMeaning(ex.codec, f[1], strings.Join(f[2:], " "))
		return ex, err
	}
	args := map[string]string{}
	for _, a := range f[3:] {
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
		return ex, err
	}
	lock, err := num("lock")
	if err != nil {
		return ex, err
	}
	switch f[1] {
	case "command":
		ops := map[string]board.Op{"status": board.OpStatus, "query": board.OpQuery, "unlock": board.OpUnlock, "unlock_all": board.OpUnlockAll}
		op, ok := ops[f[2]]
		if !ok {
			return ex, fmt.Errorf("unknown command %q", f[2])
		}
		ex.cmd = &board.Command{Op: op, Board: bd, Lock: lock}
	case "reply":
		n := p.LocksPerBoard()
		r := board.Reply{Board: bd, Lock: lock}
		switch f[2] {
		case "status":
			closed, err := lockList(args["closed"], n)
			if err != nil {
				return ex, err
			}
			delete(args, "closed")
			r.Kind, r.Status = board.ReplyStatus, board.Status{Board: bd, Closed: closed}
			if p.HasOccupancy() {
				if r.Status.Occupied, err = lockList(args["occupied"], n); err != nil {
					return ex, err
				}
			}
			delete(args, "occupied")
		case "lock", "unlock", "event":
			r.Kind = map[string]board.ReplyKind{"lock": board.ReplyLock, "unlock": board.ReplyUnlock, "event": board.ReplyEvent}[f[2]]
			r.All = flag("all")
			r.Closed = flag("closed")
			flag("open")
		default:
			return ex, fmt.Errorf("unknown reply %q", f[2])
		}
		ex.reply = &r
	default:
		return ex, fmt.Errorf("direction %q: want command or reply", f[1])
	}
	if len(args) > 0 {
		return ex, fmt.Errorf("unknown arguments %v", args)
	}
	return ex, nil
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
