package cloud

import (
	"context"
	"errors"
)

// Fence names a lease a transaction depends on and the token the caller holds it with.
// Several cloud replicas share one store; a replica that owns a site (or the periodic
// work) through a lease attaches its fence to the transactions it runs on the lease's
// behalf, and a shared store commits them only while the lease still carries that
// token. So a replica that paused (GC, a stopped VM) and lost its lease to another
// cannot write once it wakes: its transaction fails with [ErrFenced].
type Fence struct {
	Name  string // the lease: "site/<id>" or "work"
	Token int64  // the token the lease carried when the caller took it
}

type fenceKey struct{}

// WithFences returns ctx carrying fs as well as the fences ctx already carries.
func WithFences(ctx context.Context, fs ...Fence) context.Context {
	if len(fs) == 0 {
		return ctx
	}
	all := append(append([]Fence(nil), FencesOf(ctx)...), fs...)
	return context.WithValue(ctx, fenceKey{}, all)
}

// FencesOf returns the fences ctx carries (nil: none).
func FencesOf(ctx context.Context) []Fence {
	fs, _ := ctx.Value(fenceKey{}).([]Fence)
	return fs
}

// ErrFenced is returned (wrapped) by a shared store's Update when a fence of its context
// no longer holds: the lease moved to another replica. The transaction wrote nothing.
var ErrFenced = errors.New("cloud: lease lost to another replica")

// Watcher is implemented by stores that several processes share (cloud/pg): Watch calls
// fn with the bucket and key of every write committed to one of buckets, by any process,
// this one included, until ctx ends. Calls come from one goroutine, in commit order
// per key; fn must be quick. When the watch may have missed writes (it was interrupted
// for longer than the store keeps them) and resumes, fn is called once for each of
// buckets with an empty key: anything in that bucket may have changed meanwhile. The Service watches the buckets its in-memory indexes
// derive from, so that a replica's fleet index follows the others' writes.
type Watcher interface {
	Watch(ctx context.Context, buckets []string, fn func(bucket, key string)) error
}
