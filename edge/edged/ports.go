package edged

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/larder-lockers/larder/edge"
	"github.com/larder-lockers/larder/edge/bolt"
	"github.com/larder-lockers/larder/edge/mqtt"
	"github.com/larder-lockers/larder/internal/buildinfo"
	"github.com/larder-lockers/larder/protocol"
	"github.com/larder-lockers/larder/protocol/board"
)

// The adapters below present the core (edge.Locker over bolt.Store) as the ports
// edge/mqtt consumes.

type outboxPort struct{ s *bolt.Store }

func (o outboxPort) Pending(after uint64, max int) ([]mqtt.Outgoing, error) {
	es, err := o.s.Pending(after, max)
	out := make([]mqtt.Outgoing, len(es))
	for i, e := range es {
		out[i] = mqtt.Outgoing{Seq: e.Seq, Payload: e.Payload}
	}
	return out, err
}

func (o outboxPort) Ack(seq uint64, rejected []protocol.Rejection) ([]mqtt.Outgoing, error) {
	moved, err := o.s.Ack(seq, rejected...)
	if errors.Is(err, bolt.ErrAckBeyond) {
		return nil, fmt.Errorf("%w: %v", mqtt.ErrAckBeyondHighWater, err)
	}
	out := make([]mqtt.Outgoing, len(moved))
	for i, re := range moved {
		out[i] = mqtt.Outgoing{Seq: re.Seq, Payload: re.Payload}
	}
	return out, err
}

func (o outboxPort) Acked() (uint64, error) { return o.s.Acked() }

type desiredPort struct{ l *edge.Locker }

func (d desiredPort) ApplyDesired(ctx context.Context, m protocol.Message) (mqtt.Outcome, error) {
	body, ok := m.Body.(protocol.Desired)
	if !ok {
		return 0, fmt.Errorf("edged: desired message carries %T", m.Body)
	}
	out, err := d.l.ApplyDesired(ctx, m.ID, body)
	switch out {
	case edge.DesiredApplied:
		return mqtt.Applied, err
	case edge.DesiredGap:
		return mqtt.Gap, err
	}
	return mqtt.Duplicate, err
}

func (d desiredPort) DesiredVersion() (uint64, error) { return d.l.DesiredVersion() }

type commandsPort struct {
	l *edge.Locker
	s *bolt.Store
}

func (c commandsPort) HandleCommand(ctx context.Context, m protocol.Message) {
	cmd, ok := m.Body.(protocol.Command)
	if !ok {
		return
	}
	c.l.HandleCommand(ctx, cmd)
}

func (c commandsPort) PendingCommandAcks(max int) ([]mqtt.CommandAck, error) {
	as, err := c.s.PendingCommandAcks(max)
	out := make([]mqtt.CommandAck, len(as))
	for i, a := range as {
		out[i] = mqtt.CommandAck{Key: a.Key, Payload: a.Payload}
	}
	return out, err
}

func (c commandsPort) CommandAckSent(key uint64) error { return c.s.CommandAckSent(key) }

type reporter struct{ m *Main }

func (r reporter) Birth() (protocol.Birth, error) {
	m := r.m
	b := protocol.Birth{Protocol: protocol.Revision, Software: buildinfo.String()}
	if m.cfg.Profile == ProfileGPIO {
		b.Boards = []protocol.Board{{Address: 0, Profile: ProfileGPIO, Locks: len(m.cfg.Relays)}}
	} else {
		for _, a := range m.cfg.Boards {
			b.Boards = append(b.Boards, protocol.Board{Address: a, Profile: m.cfg.Profile, Locks: board.Codec{Profile: m.profile, Modbus: m.cfg.Modbus.Map()}.Locks()})
		}
	}
	for _, s := range m.specs {
		b.Compartments = append(b.Compartments, protocol.Compartment{Number: s.Number, Size: s.Size, Zone: s.Zone,
			HeightCM: s.HeightCM, Board: s.Board, Lock: s.Lock})
	}
	var err error
	if b.DesiredVersion, err = m.locker.DesiredVersion(); err != nil {
		return b, err
	}
	b.OutboxHighWater, err = m.store.HighWater()
	return b, err
}

func (r reporter) Telemetry() (protocol.Telemetry, error) {
	m := r.m
	depth, err := m.store.Depth()
	if err != nil {
		return protocol.Telemetry{}, err
	}
	t := protocol.Telemetry{UptimeSeconds: time.Since(m.started).Seconds(), OutboxDepth: depth}
	for _, z := range m.locker.Zones() {
		zr := protocol.ZoneReading{Zone: z.Zone, Excursion: z.Excursion}
		if z.Known {
			c := z.Celsius
			zr.Celsius = &c
		}
		t.Zones = append(t.Zones, zr)
	}
	snap := m.poller.Last()
	var failed uint64 // the bus counts failed exchanges for all its boards together
	if m.bus != nil {
		failed = m.bus.Stats().Failed
	}
	for _, a := range slices.Sorted(maps.Keys(snap.Boards)) {
		t.Boards = append(t.Boards, protocol.BoardHealth{Address: a, Online: snap.Boards[a].Online, Errors: failed})
	}
	t.DesiredVersion, err = m.locker.DesiredVersion()
	return t, err
}
