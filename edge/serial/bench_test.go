package serial_test

import (
	"context"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/larder-lockers/larder/edge/hw"
	"github.com/larder-lockers/larder/edge/serial"
	sim "github.com/larder-lockers/larder/firmware-sim"
	"github.com/larder-lockers/larder/protocol/board"
)

// BenchmarkUnlockRoundTrip measures the unlock round trip on a kerong-cu16
// bus at 19200 baud over a real pty to larder-sim: from the unlock command
// being written to the status read that confirms the release. Staggering is
// off (it is a deliberate wait before the write, not part of the round
// trip). Each b.N iteration takes LARDER_BENCH_N samples (default 200),
// round-robin over the 16 locks, each door shut again before its next
// unlock.
//
// Baseline, computed from the line's facts (docs/lock-boards.md): the wire floor is the
// unlock command and its acknowledgement (5 + 5 bytes) plus the status
// command and reply (5 + 9 bytes), 24 bytes at 10 bits each, plus the
// simulator's board turnaround once per exchange. Target: p99 ≤ 2 × that.
// A status exchange alone is measured in the same run, interleaved, as a
// second baseline: its p99 shows how much of the tail is the machine.
func BenchmarkUnlockRoundTrip(b *testing.B) {
	n := 200
	if v, err := strconv.Atoi(os.Getenv("LARDER_BENCH_N")); err == nil && v > 0 {
		n = v
	}
	const baud = 19200
	p := board.KerongCU16
	m, addr := startSim(b, p, 1, viaPTY, func(c *sim.Config) { c.Baud = baud })
	bus := simBus(b, addr, p, 1, func(c *serial.Config) {
		c.Baud = baud
		c.Stagger = &hw.Stagger{Gap: -1}
	})
	ctx := context.Background()
	w := m.World()

	wire := serial.WireTime(baud, p.CommandLen()+5) + serial.WireTime(baud, p.CommandLen()+p.StatusReplyLen())
	turn := m.Bus().Turnaround()
	floor := wire + 2*turn
	target := 2 * floor

	b.ResetTimer()
	for range b.N {
		var rtt, status []time.Duration
		for i := range n {
			c := i%p.LocksPerBoard() + 1
			shut(b, w, c)
			t0 := time.Now()
			if err := bus.Unlock(ctx, c); err != nil {
				b.Fatalf("unlock %d: %v", c, err)
			}
			rtt = append(rtt, time.Since(t0))
			// Second baseline, interleaved so that it sees the same machine
			// load: one status exchange on its own.
			t0 = time.Now()
			if _, err := bus.Snapshot(ctx); err != nil {
				b.Fatal(err)
			}
			status = append(status, time.Since(t0))
		}
		b.StopTimer()
		if os.Getenv("LARDER_BENCH_DEBUG") != "" {
			s := slices.Clone(rtt)
			slices.Sort(s)
			b.Logf("sorted tail %v; stats %+v", s[len(s)-12:], bus.Stats())
		}
		p50, p99 := pct(rtt, 50), pct(rtt, 99)
		b.ReportMetric(ms(p50), "p50_ms")
		b.ReportMetric(ms(p99), "p99_ms")
		b.ReportMetric(ms(floor), "floor_ms")
		b.ReportMetric(ms(target), "target_ms")
		b.ReportMetric(float64(p99)/float64(target), "p99/target")
		b.ReportMetric(ms(pct(status, 50)), "status_p50_ms")
		b.ReportMetric(ms(pct(status, 99)), "status_p99_ms")
		b.Logf("unlock round trip over pty at %d baud, %d unlocks: p50 %v p99 %v | wire %v + 2×turnaround %v = floor %v, target 2×floor %v, p99/target %.2f | status exchange alone p50 %v p99 %v (wire %v + turnaround %v)",
			baud, n, p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond), wire, turn, floor, target,
			float64(p99)/float64(target), pct(status, 50).Round(10*time.Microsecond), pct(status, 99).Round(10*time.Microsecond),
			serial.WireTime(baud, p.CommandLen()+p.StatusReplyLen()), turn)
		b.StartTimer()
	}
}

// shut makes sure compartment c is closed and latched before its unlock, so
// that every sample measures a real release.
func shut(b *testing.B, w *sim.World, c int) {
	for range 100 {
		st := w.Snapshot().Compartments[c-1]
		if st.HookClosed {
			return
		}
		w.Close(c) // refused or re-sprung while the pulse lasts: try again
		time.Sleep(10 * time.Millisecond)
	}
	b.Fatalf("compartment %d never latched again", c)
}

func pct(ds []time.Duration, q int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*q + 99) / 100
	return s[max(0, min(i, len(s))-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
