// Package mqtttest has behavioural fakes for testing edge/mqtt and what uses it: Store,
// an in-memory implementation of all four interfaces the sync consumes (with the same
// semantics the bbolt store must have), Cloud, a paho client that plays the cloud's part
// of protocol v1 for one site, and helpers to run an in-process mochi broker, reach the
// local Mosquitto, and cut links with a TCP proxy.
package mqtttest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/larder-lockers/larder/edge/mqtt"
	"github.com/larder-lockers/larder/protocol"
)

// Store is an in-memory edge core: outbox, desired state, commands with their queue of
// acks, and reporter. Its zero value is not usable; use NewStore. Safe for concurrent
// use.
type Store struct {
	// Notify, if set, is called after Append commits and after a command ack is queued
	// (wire it to Client.Notify).
	Notify func()
	// OnCommand, if set, decides a new command's fate: it is called once per command id
	// (on its own goroutine, after QUEUED was reported) and returns the final ack. Nil
	// means every command SUCCEEDS.
	OnCommand func(protocol.Command) protocol.CommandAck
	// OnAck, if set, is called after Ack records a new high mark, with that mark.
	OnAck func(acked uint64)

	mu        sync.Mutex // guards everything below
	events    []mqtt.Outgoing
	ids       []string
	acked     uint64
	ackCalls  int
	version   uint64
	seen      map[string]bool
	applied   []protocol.Desired
	cmds      map[string]protocol.CommandAck // latest state by command id
	cmdOrder  []string
	acks      []mqtt.CommandAck // queued, oldest first
	ackKey    uint64            // key of the last ack queued
	handled   int               // HandleCommand calls, duplicates included
	birth     protocol.Birth
	failNext  error
	startedAt time.Time
	setAside  []protocol.Rejection
}

// NewStore returns an empty store whose Birth describes one ambient compartment.
func NewStore() *Store {
	return &Store{
		seen:      map[string]bool{},
		cmds:      map[string]protocol.CommandAck{},
		startedAt: time.Now(),
		birth: protocol.Birth{
			Software: "mqtttest",
			Compartments: []protocol.Compartment{
				{Number: 1, Size: protocol.SizeM, Zone: protocol.ZoneAmbient, HeightCM: 80, Board: 0, Lock: 1},
			},
		},
	}
}

// Append writes an event to the outbox as the core would (encoded once, with its
// sequence) and returns its sequence and message id.
func (s *Store) Append(e protocol.Event) (uint64, string) {
	s.mu.Lock()
	seq := uint64(len(s.events)) + 1
	id := protocol.NewID()
	payload, err := protocol.Encode(protocol.Header{ID: id, Seq: seq}, e)
	if err != nil {
		s.mu.Unlock()
		panic(fmt.Sprintf("mqtttest: append invalid event: %v", err))
	}
	s.events = append(s.events, mqtt.Outgoing{Seq: seq, Payload: payload})
	s.ids = append(s.ids, id)
	notify := s.Notify
	s.mu.Unlock()
	if notify != nil {
		notify()
	}
	return seq, id
}

// IDs returns the message ids of every event appended, in sequence order.
func (s *Store) IDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ids...)
}

// FailNext makes the next store call of any interface method fail with err.
func (s *Store) FailNext(err error) {
	s.mu.Lock()
	s.failNext = err
	s.mu.Unlock()
}

func (s *Store) fault() error {
	err := s.failNext
	s.failNext = nil
	return err
}

// Pending implements mqtt.Outbox.
func (s *Store) Pending(after uint64, max int) ([]mqtt.Outgoing, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fault(); err != nil {
		return nil, err
	}
	if after < s.acked {
		return nil, fmt.Errorf("mqtttest: pending after %d below acked %d", after, s.acked)
	}
	var out []mqtt.Outgoing
	for i := after; i < uint64(len(s.events)) && len(out) < max; i++ {
		out = append(out, s.events[i])
	}
	return out, nil
}

// Ack implements mqtt.Outbox; rejected events are kept (see SetAside).
func (s *Store) Ack(seq uint64, rejected []protocol.Rejection) ([]mqtt.Outgoing, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fault(); err != nil {
		return nil, err
	}
	s.ackCalls++
	if seq > uint64(len(s.events)) {
		return nil, fmt.Errorf("mqtttest: ack %d of %d: %w", seq, len(s.events), mqtt.ErrAckBeyondHighWater)
	}
	if seq <= s.acked {
		return nil, nil
	}
	var aside []mqtt.Outgoing
	for _, r := range rejected {
		if r.Seq > s.acked && r.Seq <= seq {
			s.setAside = append(s.setAside, r)
			aside = append(aside, s.events[r.Seq-1])
		}
	}
	s.acked = seq
	if s.OnAck != nil {
		s.OnAck(seq) // under the lock: calls arrive in order
	}
	return aside, nil
}

// SetAside returns the rejections Ack recorded, in order.
func (s *Store) SetAside() []protocol.Rejection {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]protocol.Rejection(nil), s.setAside...)
}

// Acked implements mqtt.Outbox.
func (s *Store) Acked() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked, s.fault()
}

// AckCalls is how many times Ack was called.
func (s *Store) AckCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ackCalls
}

// ApplyDesired implements mqtt.Desired with the semantics documented there.
func (s *Store) ApplyDesired(_ context.Context, m protocol.Message) (mqtt.Outcome, error) {
	d, ok := m.Body.(protocol.Desired)
	if !ok {
		return 0, fmt.Errorf("mqtttest: apply %T, want protocol.Desired", m.Body)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fault(); err != nil {
		return 0, err
	}
	switch {
	case s.seen[m.ID] || d.Version <= s.version:
		return mqtt.Duplicate, nil
	case !d.Full && d.Version > s.version+1:
		return mqtt.Gap, nil
	}
	s.seen[m.ID] = true
	s.version = d.Version
	s.applied = append(s.applied, d)
	return mqtt.Applied, nil
}

// DesiredVersion implements mqtt.Desired.
func (s *Store) DesiredVersion() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version, s.fault()
}

// Applied returns the versions applied, in order.
func (s *Store) Applied() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var vs []uint64
	for _, d := range s.applied {
		vs = append(vs, d.Version)
	}
	return vs
}

// HandleCommand implements mqtt.Commands: deduplicated by command id, QUEUED at once,
// the final state from OnCommand on another goroutine; a duplicate queues the latest
// state again.
func (s *Store) HandleCommand(_ context.Context, m protocol.Message) {
	cmd := m.Body.(protocol.Command)
	s.mu.Lock()
	s.handled++
	if last, ok := s.cmds[cmd.ID]; ok {
		s.mu.Unlock()
		s.queueAck(last)
		return
	}
	queued := protocol.CommandAck{CommandID: cmd.ID, State: protocol.StateQueued}
	if time.Now().After(cmd.ExpiresAt) {
		queued = protocol.CommandAck{CommandID: cmd.ID, State: protocol.StateRejected, Error: protocol.ErrExpired}
	}
	s.cmds[cmd.ID] = queued
	s.cmdOrder = append(s.cmdOrder, cmd.ID)
	on := s.OnCommand
	s.mu.Unlock()
	s.queueAck(queued)
	if queued.State.Final() {
		return
	}
	go func() {
		final := protocol.CommandAck{CommandID: cmd.ID, State: protocol.StateSucceeded}
		if on != nil {
			final = on(cmd)
		}
		s.mu.Lock()
		s.cmds[cmd.ID] = final
		s.mu.Unlock()
		s.queueAck(final)
	}()
}

// queueAck queues a for the sync, as the core does in the transaction of a state change.
func (s *Store) queueAck(a protocol.CommandAck) {
	payload, err := protocol.Encode(protocol.Header{ID: protocol.NewID()}, a)
	if err != nil {
		panic(fmt.Sprintf("mqtttest: queue invalid command ack: %v", err))
	}
	s.mu.Lock()
	s.ackKey++
	s.acks = append(s.acks, mqtt.CommandAck{Key: s.ackKey, Payload: payload})
	notify := s.Notify
	s.mu.Unlock()
	if notify != nil {
		notify()
	}
}

// PendingCommandAcks implements mqtt.Commands.
func (s *Store) PendingCommandAcks(max int) ([]mqtt.CommandAck, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fault(); err != nil {
		return nil, err
	}
	return append([]mqtt.CommandAck(nil), s.acks[:min(max, len(s.acks))]...), nil
}

// CommandAckSent implements mqtt.Commands.
func (s *Store) CommandAckSent(key uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fault(); err != nil {
		return err
	}
	s.acks = slices.DeleteFunc(s.acks, func(a mqtt.CommandAck) bool { return a.Key == key })
	return nil
}

// QueuedCommandAcks is how many command acks wait for the broker.
func (s *Store) QueuedCommandAcks() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.acks)
}

// Commands returns the distinct command ids carried out, in order, and how many times
// HandleCommand was called in all.
func (s *Store) Commands() (ids []string, calls int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.cmdOrder...), s.handled
}

// Birth implements mqtt.Reporter.
func (s *Store) Birth() (protocol.Birth, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.birth
	b.DesiredVersion = s.version
	b.OutboxHighWater = uint64(len(s.events))
	return b, s.fault()
}

// Telemetry implements mqtt.Reporter.
func (s *Store) Telemetry() (protocol.Telemetry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return protocol.Telemetry{
		UptimeSeconds: time.Since(s.startedAt).Seconds(),
		OutboxDepth:   len(s.events) - int(s.acked),
	}, s.fault()
}

// Ports returns s as all four ports.
func (s *Store) Ports() mqtt.Ports {
	return mqtt.Ports{Outbox: s, Desired: s, Commands: s, Reporter: s}
}
