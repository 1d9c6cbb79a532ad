package cloud

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"hash/fnv"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/larder-lockers/larder/protocol"
)

// DesiredPublisher sends a site's desired state (a delta or a full snapshot) to its edge.
type DesiredPublisher interface {
	PublishDesired(ctx context.Context, site string, d protocol.Desired) error
}

// CommandPublisher sends a command to a site's edge.
type CommandPublisher interface {
	PublishCommand(ctx context.Context, site string, c protocol.Command) error
}

// Policy holds the timing rules of the business. The zero value is replaced by
// DefaultPolicy's fields.
type Policy struct {
	// Hold is how long an order waits after loading, per zone: chilled and frozen 24 h,
	// cool and ambient 12 h by default (docs/food-safety.md says why).
	Hold map[protocol.Zone]time.Duration
	// MaxHold is the food-safety cap on the hold after loading, extensions included.
	MaxHold map[protocol.Zone]time.Duration
	// Budget is the time-out-of-temperature budget sent to the edge (chilled 30 min,
	// frozen 15 min, others none).
	Budget map[protocol.Zone]time.Duration
	// LoadGrace is how long after its window an order that was never loaded keeps its
	// compartments before it lapses (cancelled, reason not_loaded).
	LoadGrace time.Duration
	// MaxAhead is how far in the future a delivery window may start.
	MaxAhead time.Duration
	// CommandTTL is how long a command stays valid (protocol Command.ExpiresAt).
	CommandTTL time.Duration
	// CredentialTTL is how long a driver's loading credential works.
	CredentialTTL time.Duration
	// NearbyKM and NearbyMax bound the nearest-site search of a capacity refusal.
	NearbyKM  float64
	NearbyMax int
}

// DefaultPolicy returns the business's default timing rules: the holds, cap and budgets
// of docs/food-safety.md, and the operational limits below.
func DefaultPolicy() Policy {
	h := time.Hour
	return Policy{
		Hold: map[protocol.Zone]time.Duration{protocol.ZoneFrozen: 24 * h, protocol.ZoneChilled: 24 * h,
			protocol.ZoneCool: 12 * h, protocol.ZoneAmbient: 12 * h},
		MaxHold: map[protocol.Zone]time.Duration{protocol.ZoneFrozen: 24 * h, protocol.ZoneChilled: 24 * h,
			protocol.ZoneCool: 48 * h, protocol.ZoneAmbient: 48 * h},
		Budget: map[protocol.Zone]time.Duration{protocol.ZoneFrozen: 15 * time.Minute,
			protocol.ZoneChilled: 30 * time.Minute},
		LoadGrace:     2 * h,
		MaxAhead:      14 * 24 * h,
		CommandTTL:    2 * time.Minute,
		CredentialTTL: 2 * h,
		NearbyKM:      10,
		NearbyMax:     5,
	}
}

// Options configure New.
type Options struct {
	Store Store
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger; nil discards.
	Logger *slog.Logger
	// Ports; nil ones drop what they would have sent (tests, or a cloud without MQTT).
	Desired  DesiredPublisher
	Commands CommandPublisher
	Notifier Notifier
	// Policy; zero fields take DefaultPolicy's.
	Policy Policy
	// SendTimeout bounds one delivery to a port; zero means 5 s.
	SendTimeout time.Duration
	// CodeKey (32 bytes) seals the plain codes that wait on orders until the resident
	// may be told them (code.go); cloudd passes the notify key. nil: a key drawn for
	// this process, so held codes do not survive a restart (tests).
	CodeKey []byte
	// TimeZone is the IANA name of the zone of sites that name none ([Site].TimeZone),
	// checked with [LoadZone]; empty: UTC.
	TimeZone string
	// Work reports whether this process holds the periodic work of the fleet (the sweep
	// and the heartbeat, which must run once across replicas) and the fence of that
	// lease, which the work's transactions carry ([WithFences]) so that a shared store
	// refuses them once the lease has moved on. nil: this process always holds it (one
	// cloud process, the embedded default).
	Work func() (Fence, bool)
}

// Service is the cloud domain: every operation on sites, orders, codes, commands and
// edge facts, over a Store. It is safe for concurrent use. Outbound messages (desired
// deltas, commands, notifications) are queued after their transaction commits, in commit
// order, and delivered by Run (or Flush).
type Service struct {
	store  Store
	now    func() time.Time
	log    *slog.Logger
	pol    Policy
	ports  ports
	out    outbox
	live   liveState
	fleet  fleetIndex // the stored part of every site's summary (fleet.go)
	stats  Stats
	sendTO time.Duration
	seal   cipher.AEAD // held codes (code.go)
	zone   string      // IANA name of the zone of sites that name none
	// resumed is set by Resume; until then heartbeat writes nothing.
	resumed atomic.Bool
	workFn  func() (Fence, bool) // Options.Work
	// watcher is the store, if several processes share it (Options.Store implements
	// Watcher); nil for a store of this process alone.
	watcher Watcher
}

type ports struct {
	desired  DesiredPublisher
	commands CommandPublisher
	notifier Notifier
}

// Stats are the service's counters, read by the metrics collector.
type Stats struct {
	UnlockFailures atomic.Uint64
	CodeLockouts   atomic.Uint64
	AlarmsRaised   atomic.Uint64
	EventsApplied  atomic.Uint64
	OrdersCreated  atomic.Uint64
	Refused        atomic.Uint64 // orders refused for capacity
	SendErrors     atomic.Uint64 // failed deliveries to the ports
}

// New returns a Service. Call Run to deliver outbound messages. It panics on a CodeKey
// that is not 32 bytes (cloudd validates its configuration first).
func New(opt Options) *Service {
	s := &Service{store: opt.Store, now: opt.Now, log: opt.Logger, pol: opt.Policy, sendTO: opt.SendTimeout, zone: opt.TimeZone,
		workFn: opt.Work}
	s.watcher, _ = opt.Store.(Watcher)
	if s.store != nil {
		s.store = indexedStore{Store: s.store, ix: &s.fleet}
	}
	var err error
	if s.seal, err = newCodeSeal(opt.CodeKey); err != nil {
		panic(err)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.zone == "" {
		s.zone = "UTC"
	}
	if _, err := LoadZone(s.zone); err != nil {
		panic("cloud: Options.TimeZone: " + err.Error())
	}
	if s.sendTO <= 0 {
		s.sendTO = 5 * time.Second
	}
	def := DefaultPolicy()
	if s.pol.Hold == nil {
		s.pol.Hold = def.Hold
	}
	if s.pol.MaxHold == nil {
		s.pol.MaxHold = def.MaxHold
	}
	if s.pol.Budget == nil {
		s.pol.Budget = def.Budget
	}
	if s.pol.LoadGrace <= 0 {
		s.pol.LoadGrace = def.LoadGrace
	}
	if s.pol.MaxAhead <= 0 {
		s.pol.MaxAhead = def.MaxAhead
	}
	if s.pol.CommandTTL <= 0 {
		s.pol.CommandTTL = def.CommandTTL
	}
	if s.pol.CredentialTTL <= 0 {
		s.pol.CredentialTTL = def.CredentialTTL
	}
	if s.pol.NearbyKM <= 0 {
		s.pol.NearbyKM = def.NearbyKM
	}
	if s.pol.NearbyMax <= 0 {
		s.pol.NearbyMax = def.NearbyMax
	}
	s.ports = ports{opt.Desired, opt.Commands, opt.Notifier}
	s.out.fleet.wake = make(chan struct{}, 1)
	s.out.notes.wake = make(chan struct{}, 1)
	s.live.sites = map[string]*LiveSite{}
	s.live.shared = s.watcher != nil
	s.live.dirty = map[string]bool{}
	s.live.stored = map[string]LiveSite{}
	s.live.toRead = map[string]bool{}
	s.live.wake = make(chan struct{}, 1)
	return s
}

// work reports whether this process holds the periodic work now (Options.Work) and
// returns ctx carrying the work lease's fence.
func (s *Service) work(ctx context.Context) (context.Context, bool) {
	if s.workFn == nil {
		return ctx, true
	}
	f, ok := s.workFn()
	if !ok {
		return ctx, false
	}
	if f.Name != "" {
		ctx = WithFences(ctx, f)
	}
	return ctx, true
}

// SetPorts installs the outbound ports after New, for wiring where the adapters need the
// Service first (the fleet adapter both calls and is called by it). Call before Run.
func (s *Service) SetPorts(d DesiredPublisher, c CommandPublisher, n Notifier) {
	s.ports = ports{d, c, n}
}

// Stats returns the service's counters.
func (s *Service) Stats() *Stats { return &s.stats }

// Policy returns the policy in force.
func (s *Service) Policy() Policy { return s.pol }

// outbox keeps outbound messages in commit order until Run or Flush delivers them. It is
// in memory: a crash between commit and delivery loses them, which the protocol repairs
// (a desired version gap makes the edge ask for a snapshot; a command that never arrives
// times out). Notifications use it only when the Notifier is not a [TxNotifier]: the
// production one writes them in the transaction itself (see the package doc).
//
// It has two lanes, each delivered by its own goroutine, each site's messages in their
// order (deliverAll): the fleet lane (desired state and commands, which must stay in
// version order per site) and the notification lane, so that one never waits for the
// other.
type outbox struct {
	fleet, notes lane
}

type lane struct {
	mu    sync.Mutex
	items []outItem // guarded by mu
	wake  chan struct{}
	// sending serialises deliveries (Run and Flush) so that order holds.
	sending sync.Mutex
}

type outItem struct {
	site    string
	desired *protocol.Desired
	command *protocol.Command
	note    *Notification
}

// queue is called from OnCommit hooks: quick, never blocks.
func (s *Service) queue(it outItem) {
	l := &s.out.fleet
	if it.note != nil {
		l = &s.out.notes
	}
	l.mu.Lock()
	l.items = append(l.items, it)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Run delivers outbound messages until ctx ends, runs Sweep every sweepEvery (zero:
// one minute) and, once Resume has run, rewrites the heartbeat every 15 s; both only
// while this process holds the periodic work (Options.Work). Over a store that several
// processes share (a [Watcher]), it also follows the other processes' writes into the
// fleet index (fleet.go) and the live state (live.go), and writes the live state of the
// sites this process hears into the store every liveEvery.
func (s *Service) Run(ctx context.Context, sweepEvery time.Duration) error {
	if sweepEvery <= 0 {
		sweepEvery = time.Minute
	}
	var shared sync.WaitGroup
	defer shared.Wait()
	if s.watcher != nil {
		shared.Go(func() { s.followStore(ctx) })
		shared.Go(func() { s.readLive(ctx) })
		shared.Go(func() { s.writeLive(ctx) })
		shared.Go(func() { s.rereadShared(ctx) })
	}
	// Fill the fleet index now (about 1 s at 10,000 sites), not on the first console
	// request.
	go func() {
		if _, err := s.fleetSummaries(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("fleet index", "err", err)
		}
	}()
	// Each lane is delivered by its own goroutine, so that neither waits for the other
	// nor for a sweep.
	var lanes sync.WaitGroup
	defer lanes.Wait()
	for _, l := range []*lane{&s.out.fleet, &s.out.notes} {
		lanes.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-l.wake:
					s.flush(ctx, l)
				}
			}
		})
	}
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	beat := time.NewTicker(aliveEvery)
	defer beat.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if _, err := s.Sweep(ctx); errors.Is(err, ErrFenced) {
				s.log.Info("sweep: the work lease moved to another replica")
			} else if err != nil {
				s.log.Error("sweep", "err", err)
			}
		case <-beat.C:
			if err := s.heartbeat(ctx); errors.Is(err, ErrFenced) {
				s.log.Info("heartbeat: the work lease moved to another replica")
			} else if err != nil {
				s.log.Error("heartbeat", "err", err)
			}
		}
	}
}

// followStore follows the writes of every process sharing the store into the fleet
// index (fleet.go) and the live state read from the store (live.go) until ctx ends. A
// watch that fails is started again after a pause (growing to watchRetryMax); what was
// written meanwhile is unknown, so everything is read again. So it is every
// rereadEvery besides (rereadShared): a write the watch missed (one committed before
// the watch began to listen) shows at most that late.
func (s *Service) followStore(ctx context.Context) {
	buckets := append(slices.Clone(fleetBuckets), bLiveSites)
	pause := time.Second
	for {
		began := time.Now()
		err := s.watcher.Watch(ctx, buckets, func(bucket, key string) {
			switch {
			case bucket == bLiveSites:
				s.live.changed(key)
			case key == "":
				s.fleet.reset()
			default:
				site, _, _ := strings.Cut(key, "/")
				s.fleet.wrote(map[string]bool{site: true})
			}
		})
		if ctx.Err() != nil {
			return
		}
		if time.Since(began) > watchRetryMax {
			pause = time.Second // it had worked for a while
		}
		s.log.Warn("watching the store failed", "err", err, "retry_in", pause)
		s.fleet.reset()
		s.live.changed("")
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, watchRetryMax)
	}
}

// rereadShared marks everything read from the shared store stale every rereadEvery
// until ctx ends.
func (s *Service) rereadShared(ctx context.Context) {
	t := time.NewTicker(rereadEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.fleet.reset()
			s.live.changed("")
		}
	}
}

// watchRetryMax bounds the pause before a failed watch of the store is started again.
const watchRetryMax = 30 * time.Second

// rereadEvery is how often a process sharing the store reads the fleet index and the
// stored live state whole again (on the next read of the fleet; about 1 s at 10,000
// sites), whatever the watch reported.
const rereadEvery = 10 * time.Minute

// Flush delivers every queued outbound message now, in order.
func (s *Service) Flush(ctx context.Context) {
	s.flush(ctx, &s.out.fleet)
	s.flush(ctx, &s.out.notes)
}

func (s *Service) flush(ctx context.Context, l *lane) {
	l.sending.Lock()
	defer l.sending.Unlock()
	for {
		l.mu.Lock()
		items := l.items
		l.items = nil
		l.mu.Unlock()
		if len(items) == 0 {
			return
		}
		s.deliverAll(ctx, items)
	}
}

// laneSenders is how many sites a lane delivers to at once.
const laneSenders = 64

// deliverAll delivers items, each site's in their order, to up to laneSenders sites at
// once. A publish waits for the broker's PUBACK; delivered one after another, every
// message waited for the round trips of all queued before it, of every site: at 10,000
// edges the fleet lane carries about a thousand desired deltas a second, and an
// operator's remote open queued behind them.
func (s *Service) deliverAll(ctx context.Context, items []outItem) {
	if len(items) == 1 {
		s.deliver(ctx, items[0])
		return
	}
	var parts [laneSenders][]outItem
	for _, it := range items {
		h := fnv.New32a()
		h.Write([]byte(it.site))
		i := h.Sum32() % laneSenders
		parts[i] = append(parts[i], it)
	}
	var wg sync.WaitGroup
	for _, part := range parts {
		if len(part) > 0 {
			wg.Go(func() {
				for _, it := range part {
					s.deliver(ctx, it)
				}
			})
		}
	}
	wg.Wait()
}

// Pending is how many outbound messages await delivery.
func (s *Service) Pending() int {
	n := 0
	for _, l := range []*lane{&s.out.fleet, &s.out.notes} {
		l.mu.Lock()
		n += len(l.items)
		l.mu.Unlock()
	}
	return n
}

func (s *Service) deliver(ctx context.Context, it outItem) {
	ctx, cancel := context.WithTimeout(ctx, s.sendTO)
	defer cancel()
	var err error
	switch {
	case it.desired != nil && s.ports.desired != nil:
		err = s.ports.desired.PublishDesired(ctx, it.site, *it.desired)
	case it.command != nil && s.ports.commands != nil:
		err = s.ports.commands.PublishCommand(ctx, it.site, *it.command)
	case it.note != nil && s.ports.notifier != nil:
		err = s.ports.notifier.Notify(ctx, *it.note)
	}
	if err != nil {
		s.stats.SendErrors.Add(1)
		s.log.Warn("outbound delivery failed", "site", it.site, "err", err)
	}
}

// newID returns prefix + 12 random bytes in hex.
func newID(prefix string) string {
	var b [12]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// sortableID returns prefix + 6 bytes of milliseconds since the epoch + 6 random bytes,
// in hex: ids made close in time sort together, so that a group of new orders lands on
// the last pages of each B-tree instead of dirtying one random page each (bbolt writes
// whole pages: this halves the bytes each commit writes). 48 random bits per millisecond
// keep ids unguessable enough; ownership is checked on every access anyway.
func sortableID(prefix string, t time.Time) string {
	var b [12]byte
	ms := uint64(t.UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	rand.Read(b[6:])
	return prefix + hex.EncodeToString(b[:])
}
