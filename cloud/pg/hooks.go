package pg

import "sync"

// sequencer runs the OnCommit hooks of transactions on one goroutine in ticket order.
// A transaction takes its ticket just before it sends COMMIT and reports the outcome
// after; hooks of ticket n run once every ticket before n has been reported (a failed
// commit reports no hooks). A transaction that read or overwrote another's rows can only
// send its COMMIT after the other's COMMIT has completed on the server, hence after the
// other took its ticket: dependent commits run their hooks in commit order. Independent
// ones run in the order they sent COMMIT.
type sequencer struct {
	mu    sync.Mutex
	next  uint64           // the next ticket to give out; guarded by mu
	head  uint64           // the next ticket to run; guarded by mu
	ready map[uint64]*done // reported tickets not yet run; guarded by mu
	wake  chan struct{}
	quit  chan struct{}
	exit  chan struct{}
}

type done struct {
	hooks []func()
	ran   chan struct{}
}

func newSequencer() *sequencer {
	q := &sequencer{ready: map[uint64]*done{}, wake: make(chan struct{}, 1), quit: make(chan struct{}), exit: make(chan struct{})}
	go q.run()
	return q
}

// take returns a ticket; every ticket must be reported with finish.
func (q *sequencer) take() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.next++
	return q.next - 1
}

// finish reports ticket's outcome and returns a channel closed once its hooks have run.
func (q *sequencer) finish(ticket uint64, hooks []func()) <-chan struct{} {
	d := &done{hooks: hooks, ran: make(chan struct{})}
	q.mu.Lock()
	q.ready[ticket] = d
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return d.ran
}

func (q *sequencer) run() {
	defer close(q.exit)
	for {
		select {
		case <-q.wake:
		case <-q.quit:
			return
		}
		for {
			q.mu.Lock()
			d, ok := q.ready[q.head]
			if ok {
				delete(q.ready, q.head)
				q.head++
			}
			q.mu.Unlock()
			if !ok {
				break
			}
			for _, h := range d.hooks {
				h()
			}
			close(d.ran)
		}
	}
}

// close stops the goroutine; every ticket must have been reported and run.
func (q *sequencer) close() {
	close(q.quit)
	<-q.exit
}
