package mqtt

import (
	"sync"
	"time"

	"github.com/larder-lockers/larder/protocol"
)

// task is one unit of work for a site's worker: a received message, or a command
// whose expiry timer fired (timeoutCmd set).
type task struct {
	site       string
	ch         protocol.Channel
	payload    []byte
	at         time.Time
	gen        uint64 // the connection it arrived on
	timeoutCmd string
}

// queue is a worker's inbox. push never blocks, so paho's router goroutine (which
// also delivers PUBACKs to waiting publishers) is never held up by domain work; the
// length is capped, and the edges' own bounded windows keep it far below the cap in
// practice.
type queue struct {
	mu     sync.Mutex
	items  []task // guarded by mu
	max    int
	closed bool // guarded by mu
	wake   chan struct{}
}

func newQueue(max int) *queue { return &queue{max: max, wake: make(chan struct{}, 1)} }

// push appends t; false when the queue is full or closed.
func (q *queue) push(t task) bool {
	q.mu.Lock()
	if q.closed || len(q.items) >= q.max {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, t)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

// take waits for tasks and returns all of them (reusing buf), or nil once the queue
// is closed and empty. Taking everything at once lets the worker batch its event
// acknowledgements under load.
func (q *queue) take(buf []task) []task {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			out := q.items
			q.items = buf[:0]
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
