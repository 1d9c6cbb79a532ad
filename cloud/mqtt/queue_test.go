package mqtt

import (
	"fmt"
	"testing"

	"github.com/larder-lockers/larder/protocol"
)

// The queue has no bound of its own: however many sites send their windows between two
// takes, every event is queued. Only a site past its own bound (an edge ignoring its
// window) has its further events turned away, and no other site is affected; taking
// the queue makes room again. A status, a birth or a command timeout is never turned
// away: the edge would not send it again.
func TestQueueHoldsEveryWindowAndBoundsOnlyTheOffender(t *testing.T) {
	const sites, window, bound = 200, 1000, 2 * 1000
	q := newQueue(bound)
	ev := func(site string) task { return task{site: site, ch: protocol.ChanEvents} }
	// 200 windows of 1000: three times the old fixed worker bound of 65,536.
	for i := range sites {
		for j := range window {
			if !q.push(ev(fmt.Sprint("s", i))) {
				t.Fatalf("event %d of site %d turned away within its window", j+1, i)
			}
		}
	}
	// The offender: within its bound, then beyond it.
	for i := range bound {
		if !q.push(ev("greedy")) {
			t.Fatalf("event %d of greedy turned away below the site bound", i+1)
		}
	}
	if q.push(ev("greedy")) {
		t.Fatalf("event %d of greedy queued beyond the site bound %d", bound+1, bound)
	}
	// Everyone else is unaffected by the offender.
	if !q.push(ev("s0")) || !q.push(ev("newcomer")) {
		t.Fatal("another site's event turned away because of the offender")
	}
	for _, other := range []task{{site: "greedy", ch: protocol.ChanStatus}, {site: "greedy", ch: protocol.ChanBirth},
		{kind: taskTimeout, site: "greedy", timeoutCmd: "cmd-1"}, {kind: taskGained, site: "c"}, {kind: taskLost, site: "c"}} {
		if !q.push(other) {
			t.Fatalf("%+v turned away: only events may be", other)
		}
	}
	if got, want := len(q.take(nil)), sites*window+bound+2+5; got != want {
		t.Fatalf("took %d tasks, want %d", got, want)
	}
	for i := range bound {
		if !q.push(ev("greedy")) {
			t.Fatalf("event %d of greedy turned away after the queue was taken", i+1)
		}
	}
	q.close()
	if q.push(task{site: "a", ch: protocol.ChanStatus}) {
		t.Fatal("push accepted after close")
	}
}
