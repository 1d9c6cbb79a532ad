package broker

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/mochi-mqtt/server/v2/system"
)

// TestConnectionEndsAggregated: mochi's line for every connection that ended with an
// error (its listener logs it with an empty message) is counted, not logged, and the
// tick logs one line with the count and the last error.
func TestConnectionEndsAggregated(t *testing.T) {
	var buf bytes.Buffer
	base := slog.New(slog.NewTextHandler(&buf, nil))
	ends := &connEnds{}
	mochiLog := slog.New(quietDrops{base.Handler(), ends}).With("component", "broker")
	for range 500 {
		mochiLog.Warn("", "error", "read tcp 127.0.0.1:1883->127.0.0.1:5000: use of closed network connection")
	}
	mochiLog.Warn("client store quota reached", "client", "c")
	mochiLog.Warn("something else")
	if got := strings.Count(buf.String(), "\n"); got != 1 || !strings.Contains(buf.String(), "something else") {
		t.Fatalf("before the tick: %d lines, want only the unrelated one:\n%s", got, buf.String())
	}
	buf.Reset()
	h := &flowHook{log: base, ends: ends}
	h.OnSysInfoTick(&system.Info{})
	out := buf.String()
	if strings.Count(out, "\n") != 1 || !strings.Contains(out, "connections=500") || !strings.Contains(out, "use of closed network connection") {
		t.Fatalf("tick: %q, want one line counting 500 connections with the last error", out)
	}
	buf.Reset()
	h.OnSysInfoTick(&system.Info{})
	if buf.Len() != 0 {
		t.Errorf("a tick with nothing new logged %q", buf.String())
	}
}
