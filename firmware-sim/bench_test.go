package sim_test

import (
	"io"
	"net"
	"testing"
	"time"

	sim "github.com/larder-lockers/larder/firmware-sim"
	"github.com/larder-lockers/larder/protocol/board"
)

// BenchmarkStatusExchange measures one kerong status exchange over the
// simulator's TCP line and reports it as a ratio of the wire floor (command
// and reply wire time plus turnaround, which a real bus cannot beat) and, as
// a same-run baseline, the loopback round trip of an echo server moving the
// same bytes without any emulation.
func BenchmarkStatusExchange(b *testing.B) {
	for _, tc := range []struct {
		name string
		pty  bool
	}{{"tcp", false}, {"pty", true}} {
		b.Run(tc.name, func(b *testing.B) {
			cfg := sim.DefaultConfig()
			if !tc.pty {
				cfg.PTY, cfg.Listen = false, "tcp://127.0.0.1:0"
			}
			cfg.Control = "127.0.0.1:0"
			m, err := sim.NewMain(cfg)
			if err != nil {
				b.Fatal(err)
			}
			go m.Run(b.Context())
			<-m.Ready()
			defer m.Close()
			var line deadliner
			if tc.pty {
				line = openPTYLine(b, m.SerialPath())
			} else {
				c, err := net.Dial("tcp", m.SerialAddr())
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				line = c.(*net.TCPConn)
			}
			codec := board.Codec{Profile: board.KerongCU16}
			ms := newMaster(b, line, codec)
			echo := echoRTT(b, 50)
			floor := m.Bus().TransactionFloor(5, 9)
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				if _, ok := ms.do(board.Command{Op: board.OpStatus, Board: 0}, time.Second); !ok {
					b.Fatal("no reply")
				}
			}
			per := time.Since(start) / time.Duration(b.N)
			b.ReportMetric(float64(per)/float64(floor), "x_wire_floor")
			b.ReportMetric(float64(floor.Microseconds()), "floor_us")
			b.ReportMetric(float64(echo.Microseconds()), "echo_rtt_us")
			b.ReportMetric(float64(per-floor)/float64(echo), "overhead_x_echo")
		})
	}
}

// echoRTT is the mean loopback TCP round trip of 5 bytes out, 9 back.
func echoRTT(b *testing.B, n int) time.Duration {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 9)
		for {
			if _, err := io.ReadFull(c, buf[:5]); err != nil {
				return
			}
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 9)
	start := time.Now()
	for range n {
		c.Write(buf[:5])
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start) / time.Duration(n)
}
