package mqtt

import (
	"testing"

	"github.com/larder-lockers/larder/protocol"
)

// The queue refuses only events, only of a site past its bound or when the worker's
// total is reached, and taking the queue makes room again. A status, a birth or a
// command timeout is never refused: the edge would not send it again.
func TestQueueBoundsEventsOnly(t *testing.T) {
	q := newQueue(5, 3)
	ev := func(site string) task { return task{site: site, ch: protocol.ChanEvents} }
	for i := range 3 {
		if !q.push(ev("a")) {
			t.Fatalf("event %d of a refused below the site bound", i+1)
		}
	}
	if q.push(ev("a")) {
		t.Fatal("4th event of a accepted beyond the site bound of 3")
	}
	for i := range 2 {
		if !q.push(ev("b")) {
			t.Fatalf("event %d of b refused below both bounds", i+1)
		}
	}
	if q.push(ev("c")) {
		t.Fatal("event of c accepted beyond the total bound of 5")
	}
	for _, other := range []task{{site: "a", ch: protocol.ChanStatus}, {site: "a", ch: protocol.ChanBirth},
		{kind: taskTimeout, site: "c", timeoutCmd: "cmd-1"}, {kind: taskGained, site: "c"}, {kind: taskLost, site: "c"}} {
		if !q.push(other) {
			t.Fatalf("%+v refused: only events may be", other)
		}
	}
	if got := q.take(nil); len(got) != 10 {
		t.Fatalf("took %d tasks, want 10", len(got))
	}
	for i := range 3 {
		if !q.push(ev("a")) {
			t.Fatalf("event %d of a refused after the queue was taken", i+1)
		}
	}
	q.close()
	if q.push(task{site: "a", ch: protocol.ChanStatus}) {
		t.Fatal("push accepted after close")
	}
}
