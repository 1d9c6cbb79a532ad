package mqtt

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestWarningsAggregateRepeats(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}}))
	now := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	w := newWarnings(log, func() time.Time { return now }, time.Minute)
	lines := func() []string {
		s := strings.TrimSpace(buf.String())
		if s == "" {
			return nil
		}
		return strings.Split(s, "\n")
	}

	const n = 1000
	for i := range n {
		w.Warn("event refused", "site", "yard-1", "seq", i+1)
		now = now.Add(time.Millisecond)
	}
	w.Warn("undecodable", "site", "yard-2")
	if got := lines(); len(got) != 2 {
		t.Fatalf("after %d repeats within the interval: %d lines, want 2 (the first of each kind):\n%s", n, len(got), buf.String())
	}
	w.flush() // the interval is not over: nothing yet
	if got := lines(); len(got) != 2 {
		t.Fatalf("flush within the interval logged:\n%s", buf.String())
	}

	now = now.Add(time.Minute)
	w.flush()
	got := lines()
	if len(got) != 3 {
		t.Fatalf("after the interval: %d lines, want 3:\n%s", len(got), buf.String())
	}
	if want := `level=WARN msg="event refused" repeated=999 seconds=61 site=yard-1 seq=1000`; got[2] != want {
		t.Errorf("summary line\n got %s\nwant %s", got[2], want)
	}

	// The kind was quiet for an interval: the next one is logged at once again.
	now = now.Add(time.Minute)
	w.flush()
	w.Error("event refused", "site", "yard-3")
	if got := lines(); len(got) != 4 || got[3] != `level=ERROR msg="event refused" site=yard-3` {
		t.Errorf("after a quiet interval:\n%s", buf.String())
	}
	// A repeat arriving after the interval carries the count of the previous one.
	w.Error("event refused", "site", "yard-3")
	now = now.Add(2 * time.Minute)
	w.Error("event refused", "site", "yard-4")
	if got := lines(); len(got) != 6 || !strings.Contains(got[4], "repeated=1 seconds=120 site=yard-3") ||
		got[5] != `level=ERROR msg="event refused" site=yard-4` {
		t.Errorf("repeat after the interval:\n%s", buf.String())
	}
}
