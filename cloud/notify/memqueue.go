package notify

import (
	"context"
	"slices"
	"sync"
	"time"
)

// MemQueue is an in-memory [Queue] for tests and demos: it loses everything on exit.
// The zero value is ready to use.
type MemQueue struct {
	mu    sync.Mutex
	items map[string]*Notification // guarded by mu
}

// Enqueue implements [Outbox].
func (q *MemQueue) Enqueue(_ context.Context, n Notification) (bool, error) {
	if err := n.validate(); err != nil {
		return false, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.items == nil {
		q.items = map[string]*Notification{}
	}
	if _, ok := q.items[n.ID]; ok {
		return false, nil
	}
	n.prepare(time.Now())
	q.items[n.ID] = &n
	return true, nil
}

// Due implements [Deliveries].
func (q *MemQueue) Due(_ context.Context, now time.Time, limit int) ([]Notification, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []Notification
	for _, n := range q.items {
		if n.State == StatePending && !n.NextTry.After(now) {
			out = append(out, *n)
		}
	}
	sortDue(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// sortDue sorts ns as Due returns them: oldest NextTry first, then by id.
func sortDue(ns []Notification) {
	slices.SortFunc(ns, func(a, b Notification) int {
		if c := a.NextTry.Compare(b.NextTry); c != 0 {
			return c
		}
		return compareStrings(a.ID, b.ID)
	})
}

// Settle implements [Deliveries].
func (q *MemQueue) Settle(_ context.Context, id string, r Result) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	n, ok := q.items[id]
	if !ok || n.State != StatePending {
		return nil
	}
	n.settle(r)
	return nil
}

// Stats implements [Backlog].
func (q *MemQueue) Stats(context.Context) (Stats, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var s Stats
	for _, n := range q.items {
		s.add(n.State, 1)
	}
	return s, nil
}

// DeadLetters implements [Backlog].
func (q *MemQueue) DeadLetters(_ context.Context, limit int) ([]Notification, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []Notification
	for _, n := range q.items {
		if n.State == StateDead {
			out = append(out, *n)
		}
	}
	slices.SortFunc(out, func(a, b Notification) int {
		if c := b.Done.Compare(a.Done); c != 0 {
			return c
		}
		return compareStrings(a.ID, b.ID)
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Requeue implements [Backlog].
func (q *MemQueue) Requeue(_ context.Context, id string, now time.Time) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	n, ok := q.items[id]
	if !ok || n.State != StateDead {
		return ErrNotFound
	}
	n.requeue(now)
	return nil
}

// Get returns notification id (for tests and ops).
func (q *MemQueue) Get(_ context.Context, id string) (Notification, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n, ok := q.items[id]
	if !ok {
		return Notification{}, ErrNotFound
	}
	return *n, nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
