package mqtt

import (
	"sync"
	"time"

	"github.com/larder-lockers/larder/protocol"
)

// task is one unit of work for a site's worker: a received message, a command whose
// expiry timer fired, or a change of the site's ownership.
type task struct {
	kind       taskKind
	site       string
	ch         protocol.Channel
	payload    []byte
	at         time.Time
	gen        uint64 // the connection it arrived on
	timeoutCmd string // taskTimeout: the command
}

type taskKind int

const (
	taskMessage  taskKind = iota // a message from the site's edge
	taskTimeout                  // a command's expiry timer fired
	taskGained                   // the replica gained the site
	taskLost                     // the replica lost the site
	taskAckAgain                 // acknowledge the site's high water again
	taskAckKnown                 // (no site) acknowledge every known site's high water again
)

func (t task) isEvent() bool { return t.kind == taskMessage && t.ch == protocol.ChanEvents }

// queue is a worker's inbox. push never blocks, so paho's router goroutine (which also
// delivers the PUBACKs and PINGRESPs the client waits for) is never held up by domain
// work. It has no bound of its own: what bounds it is the edges' windows (see the
// package doc), since the cloud acknowledges an event only once it committed, and a
// worker takes its whole queue at once. The one bound is per site, for an edge that
// ignores its window: beyond maxSite events of one site, its events are not queued
// (the caller counts and warns; the edge, unacknowledged, sends them again). That bound
// touches only the offending site: no site's events are ever turned away because of
// another's. Other messages (status, birth, telemetry, command acks, desired requests,
// command timeouts) are few per site and always queued: refusing them would lose them.
type queue struct {
	mu      sync.Mutex
	items   []task         // guarded by mu
	perSite map[string]int // events of each site in items; guarded by mu
	maxSite int            // events of one site in items
	closed  bool           // guarded by mu
	wake    chan struct{}
}

func newQueue(maxSite int) *queue {
	return &queue{maxSite: maxSite, perSite: map[string]int{}, wake: make(chan struct{}, 1)}
}

// push appends t. It returns false, queuing nothing, when the queue is closed, or when
// t is an event and the queue already holds maxSite events of its site.
func (q *queue) push(t task) bool {
	ev := t.isEvent()
	q.mu.Lock()
	if q.closed || ev && q.perSite[t.site] >= q.maxSite {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, t)
	if ev {
		q.perSite[t.site]++
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

// take waits for tasks and returns all of them (reusing buf), or nil once the queue
// is closed and empty. Taking everything at once lets the worker commit a batch of
// events in one transaction and acknowledge them together, and it is what keeps an
// edge within its window below maxSite.
func (q *queue) take(buf []task) []task {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			out := q.items
			q.items = buf[:0]
			clear(q.perSite)
			q.mu.Unlock()
			return out
		}
		if q.closed {
			q.mu.Unlock()
			return nil
		}
		q.mu.Unlock()
		<-q.wake
	}
}

func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}
