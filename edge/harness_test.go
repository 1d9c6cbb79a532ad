package edge_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/larder-lockers/larder/edge"
	"github.com/larder-lockers/larder/edge/bolt"
	"github.com/larder-lockers/larder/edge/bolt/boltest"
	"github.com/larder-lockers/larder/edge/hw"
	"github.com/larder-lockers/larder/protocol"
)

var siteKey = []byte("0123456789abcdef0123456789abcdef")

var t0 = time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)

// specs is a small bank: 3 columns × 3 rows, chilled except column 3 (frozen).
func specs() []edge.CompartmentSpec {
	var out []edge.CompartmentSpec
	n := 1
	for col := 1; col <= 3; col++ {
		for row := 1; row <= 3; row++ {
			z := protocol.ZoneChilled
			if col == 3 {
				z = protocol.ZoneFrozen
			}
			size := protocol.SizeM
			if row == 1 {
				size = protocol.SizeL
			}
			out = append(out, edge.CompartmentSpec{Number: n, Size: size, Zone: z, HeightCM: 20 + (row-1)*60,
				Board: 0, Lock: n, Row: row, Column: col})
			n++
		}
	}
	return out
}

// fakeLatch is a behavioural Latch: Unlock succeeds unless the compartment is jammed or
// its board offline, and records each call.
type fakeLatch struct {
	mu      sync.Mutex
	calls   []int
	at      []time.Time
	jammed  map[int]bool
	offline bool
	onCall  func(c int)
}

func (f *fakeLatch) Unlock(ctx context.Context, c int) error {
	f.mu.Lock()
	f.calls = append(f.calls, c)
	f.at = append(f.at, time.Now())
	jam, off, hook := f.jammed[c], f.offline, f.onCall
	f.mu.Unlock()
	if hook != nil {
		hook(c)
	}
	switch {
	case off:
		return fmt.Errorf("fake: %w", hw.ErrBoardOffline)
	case jam:
		return fmt.Errorf("fake: %w", hw.ErrJammed)
	}
	return nil
}

func (f *fakeLatch) Calls() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.calls...)
}

func (f *fakeLatch) Jam(c int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.jammed == nil {
		f.jammed = map[int]bool{}
	}
	f.jammed[c] = true
}

type harness struct {
	t     *testing.T
	store *bolt.Store
	path  string
	clock *edge.FakeClock
	latch *fakeLatch
	l     *edge.Locker
	m     *edge.Metrics
	ctx   context.Context
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, clock: edge.NewFakeClock(t0), latch: &fakeLatch{}, m: edge.NewMetrics(nil), ctx: context.Background()}
	h.path = t.TempDir() + "/edge.db"
	h.store = boltest.OpenAt(t, h.path)
	h.start(nil)
	return h
}

func (h *harness) start(snap *hw.Snapshot) {
	h.t.Helper()
	l, err := edge.New(edge.Config{Site: "courtyard-1", SiteKey: siteKey, Compartments: specs(), Store: h.store,
		Latch: h.latch, Clock: h.clock, Metrics: h.m, StaggerGap: -1})
	if err != nil {
		h.t.Fatal(err)
	}
	if snap == nil {
		snap = &hw.Snapshot{Compartments: map[int]hw.CompartmentState{}, Boards: map[int]hw.BoardState{0: {Online: true}}}
		for _, s := range specs() {
			snap.Compartments[s.Number] = hw.CompartmentState{Door: hw.DoorClosed, Occupancy: hw.Empty}
		}
	}
	if err := l.Start(h.ctx, snap); err != nil {
		h.t.Fatal(err)
	}
	h.l = l
}

// restart simulates a crash: a new Locker over a reopened store.
func (h *harness) restart(snap *hw.Snapshot) {
	h.t.Helper()
	h.store.Close()
	s, err := bolt.Open(h.path, bolt.Options{})
	if err != nil {
		h.t.Fatal(err)
	}
	h.store = s
	h.t.Cleanup(func() { boltest.CheckAt(h.t, s, h.path) })
	h.start(snap)
}

func (h *harness) hw(kind hw.EventKind, c int, occ hw.Occupancy) {
	h.l.HandleHW(h.ctx, hw.Event{Kind: kind, Compartment: c, Occupancy: occ})
}

// open, put, close: what a person does at a door.
func (h *harness) doorCycle(c int, occ hw.Occupancy) {
	h.hw(hw.EventDoorOpened, c, 0)
	h.hw(hw.EventOccupancyChanged, c, occ)
	h.hw(hw.EventDoorClosed, c, 0)
}

type order struct {
	id, code, factor string
	slots            []int
	zone             protocol.Zone
	budget           int
	accessible       bool
	expires          time.Time
}

func (o order) reservation() protocol.Reservation {
	r := protocol.Reservation{Order: o.id, CodeDigest: protocol.CodeDigest(siteKey, o.code),
		SecondFactorDigest: protocol.SecondFactorDigest(siteKey, o.id, o.factor), ExpiresAt: o.expires,
		Zone: o.zone, BudgetSeconds: o.budget, Accessible: o.accessible}
	if r.Zone == "" {
		r.Zone = protocol.ZoneChilled
	}
	if r.ExpiresAt.IsZero() {
		r.ExpiresAt = t0.Add(24 * time.Hour)
	}
	for _, c := range o.slots {
		r.Slots = append(r.Slots, protocol.Slot{Compartment: c, Generation: 1, Size: protocol.SizeM})
	}
	return r
}

func (h *harness) desired(d protocol.Desired) edge.DesiredOutcome {
	h.t.Helper()
	out, err := h.l.ApplyDesired(h.ctx, protocol.NewID(), d)
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

// reserve sends a full snapshot with the orders and a driver credential.
func (h *harness) reserve(orders ...order) {
	h.t.Helper()
	v, _ := h.l.DesiredVersion()
	d := protocol.Desired{Version: v + 1, Full: true, Credentials: []protocol.LoadingCredential{{
		ID: "cred-1", Digest: protocol.CredentialDigest(siteKey, "driver-secret"), Driver: "drv-7", ExpiresAt: t0.Add(48 * time.Hour)}}}
	for _, o := range orders {
		d.Reservations = append(d.Reservations, o.reservation())
	}
	if got := h.desired(d); got != edge.DesiredApplied {
		h.t.Fatalf("desired outcome %v", got)
	}
}

func (h *harness) driver() string {
	h.t.Helper()
	tok, _, err := h.l.DriverLogin("driver-secret")
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

// load has a driver load every slot of o.
func (h *harness) load(o order) {
	h.t.Helper()
	for _, c := range o.slots {
		if _, err := h.l.DriverOpen(h.ctx, "drv-7", o.id, c); err != nil {
			h.t.Fatalf("driver open %d: %v", c, err)
		}
		h.doorCycle(c, hw.Occupied)
	}
}

// events decodes the whole outbox (acknowledged events are gone).
func (h *harness) events() []protocol.Event {
	h.t.Helper()
	es, err := h.store.Pending(0, 1<<20)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []protocol.Event
	for _, e := range es {
		m, err := protocol.Decode(e.Payload)
		if err != nil {
			h.t.Fatal(err)
		}
		if m.Seq != e.Seq {
			h.t.Fatalf("envelope seq %d in outbox slot %d", m.Seq, e.Seq)
		}
		out = append(out, m.Body.(protocol.Event))
	}
	return out
}

func (h *harness) count(kind protocol.EventKind) int {
	n := 0
	for _, e := range h.events() {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

func (h *harness) kinds() string {
	var ks []string
	for _, e := range h.events() {
		ks = append(ks, string(e.Kind))
	}
	return strings.Join(ks, " ")
}

func (h *harness) compartment(n int) edge.Compartment {
	h.t.Helper()
	var c edge.Compartment
	if err := h.store.View(func(tx edge.Tx) error {
		var err error
		c, _, err = tx.Compartment(n)
		return err
	}); err != nil {
		h.t.Fatal(err)
	}
	return c
}

func (h *harness) reservation(id string) edge.Reservation {
	h.t.Helper()
	var r edge.Reservation
	if err := h.store.View(func(tx edge.Tx) error {
		var err error
		r, _, err = tx.Reservation(id)
		return err
	}); err != nil {
		h.t.Fatal(err)
	}
	return r
}

func code(err error) edge.Code { return edge.ErrorCode(err) }
