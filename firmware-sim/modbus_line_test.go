package sim_test

import (
	"bytes"
	"encoding/hex"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	sim "github.com/larder-lockers/larder/firmware-sim"
	"github.com/larder-lockers/larder/protocol/board"
)

// TestModbusLineSilenceEndsAFrame: a request cut off mid-frame (here the
// head of a Write Multiple Coils announcing 255 data bytes) must not swallow
// the next one: the silence of 3.5 characters before it ends the first.
func TestModbusLineSilenceEndsAFrame(t *testing.T) {
	cfg := sim.DefaultConfig()
	cfg.Profile, cfg.PTY, cfg.Listen = board.ModbusRTU, false, "tcp://127.0.0.1:0"
	m := startMain(t, cfg)
	conn, err := net.Dial("tcp", m.SerialAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(hexb(t, "01 0F 00 00 00 10 FF")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // ≫ t3.5 = 3.6 ms at 9600 baud
	status := hexb(t, "01 02 00 00 00 10 79 C6")
	if _, err := conn.Write(status); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(time.Second))
	got := make([]byte, 7)
	if _, err := io.ReadFull(conn, got); err != nil {
		t.Fatalf("no answer after the silence: %v", err)
	}
	want := hexb(t, "01 02 02 FF FF B8 08") // every door closed
	if !bytes.Equal(got, want) {
		t.Errorf("answer % X, want % X", got, want)
	}
	if info := m.Bus().Info(); info.Discarded != 7 || info.Commands != 1 {
		t.Errorf("bus info %+v: want the 7 cut-off bytes discarded, one command", info)
	}
}

func hexb(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
