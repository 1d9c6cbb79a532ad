package sim_test

import (
	"testing"
	"time"

	sim "github.com/larder-lockers/larder/firmware-sim"
	"github.com/larder-lockers/larder/protocol/board"
	"go.bug.st/serial"
)

// TestPTYWithSerialLibrary opens the pty the way the edge opens a real
// adapter (go.bug.st/serial, baud and read timeout set), to prove the device
// path is a drop-in for /dev/ttyUSB0.
func TestPTYWithSerialLibrary(t *testing.T) {
	cfg := sim.DefaultConfig()
	cfg.Profile = board.BCC8A
	m := startMain(t, cfg)
	port, err := serial.Open(m.SerialPath(), &serial.Mode{BaudRate: 9600, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit})
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	if err := port.SetReadTimeout(300 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	codec := board.Codec{Profile: board.BCC8A}
	f, _ := codec.EncodeCommand(board.Command{Op: board.OpStatus, Board: 1})
	if err := port.ResetInputBuffer(); err != nil {
		t.Fatal(err)
	}
	if _, err := port.Write(f); err != nil {
		t.Fatal(err)
	}
	dec := board.NewReplyDecoder(codec)
	r, err := dec.Read(port)
	if err != nil {
		t.Fatal(err)
	}
	if r.Kind != board.ReplyStatus || r.Board != 1 || len(r.Status.Closed) != 24 || !r.Status.Closed[23] {
		t.Fatalf("reply %+v", r)
	}
	// A silent address ends in a read timeout, not a hang.
	f, _ = codec.EncodeCommand(board.Command{Op: board.OpStatus, Board: 5})
	port.Write(f)
	if _, err := dec.Read(port); err != board.ErrNoData {
		t.Fatalf("silent board: %v, want ErrNoData", err)
	}
}
