package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/larder-lockers/larder/cloud"
)

// Lease names.
const (
	WorkLease  = "work"  // the periodic work: expiry sweep, reminders, lapses, timeouts, notices
	sitePrefix = "site/" // a site's lease is sitePrefix + site id
)

// SiteLease is the name of site's lease (and of the fence its transactions carry).
func SiteLease(site string) string { return sitePrefix + site }

// DefaultTTL is a lease's lifetime when Config.TTL is zero: a replica killed without
// warning has its sites taken over after at most TTL + 2 × Renew (14 s by default).
const DefaultTTL = 10 * time.Second

const (
	// maxClaim bounds the site leases one statement claims: at 10,000 sites and three
	// replicas a survivor takes a dead replica's share in one statement.
	maxClaim = 5000
	// orphanAfter, in renew intervals: a site lease that has stayed expired this long
	// is claimed by any replica, even one at its fair share, so a miscounted share
	// (a replica that heartbeats but cannot claim) never leaves a site unserved.
	orphanAfter = 3
	// releaseSteps: surplus leases are handed back over about this many renew
	// intervals, not at once, so a joining replica takes them up as they come.
	releaseSteps = 5
)

// Config configures a Manager. Zero values take the defaults documented per field.
type Config struct {
	// ReplicaID names this replica in larder_replicas and larder_leases.owner; required,
	// unique among the replicas sharing the database (the host name, a pod name).
	ReplicaID string
	// TTL is how long a lease lasts unrenewed (DefaultTTL when zero).
	TTL time.Duration
	// Renew is the interval between renewals, claims and hand-backs (TTL/5 when zero;
	// at most TTL/3). A replica that cannot renew declares its leases lost one Renew
	// before they expire in the database.
	Renew time.Duration
	// Slack is how many site leases above its fair share a replica keeps before it
	// hands leases back (when zero: 2, or 5 % of the share when that is more).
	Slack int
	// Sites lists the fleet's site ids; called once per Renew interval, it must honour
	// ctx. Required.
	Sites func(ctx context.Context) ([]string, error)
	// Logger receives the manager's log lines (nil: discard).
	Logger *slog.Logger
	// Registry receives the manager's metrics (nil: none).
	Registry prometheus.Registerer
}

// Manager holds this replica's leases: it heartbeats, renews, claims its fair share of
// the sites' leases and the work lease, and hands back surplus when replicas join. See
// the package documentation for the protocol.
//
// Owned and Work may be called from any goroutine. OnChange and OnWork must be called
// before Run. Run and Close call the registered functions from one goroutine at a time,
// in the order the changes happened.
type Manager struct {
	pool   *pgxpool.Pool
	id     string
	ttl    time.Duration
	renew  time.Duration
	margin time.Duration // a lease is given up locally this long before it expires in the database
	slack  int
	sites  func(context.Context) ([]string, error)
	log    *slog.Logger
	met    *metrics

	mu      sync.Mutex
	held    map[string]holding // lease name → the tenure held; guarded by mu
	running bool               // Run has started; guarded by mu
	closed  bool               // Close has started; guarded by mu
	stop    context.CancelFunc // ends Run; guarded by mu
	done    chan struct{}      // closed when Run returns; guarded by mu

	// Owned by the goroutine running Run (then Close).
	onChange  []func(site string, fence cloud.Fence, owned bool)
	onWork    []func(fence cloud.Fence, owned bool)
	known     map[string]bool // site lease names known to have a row
	beat      bool            // a heartbeat succeeded in this Run
	failingAt time.Time       // zero, or when renewals started failing
}

// holding is one tenure of a lease: its fencing token, and the local monotonic instant
// until which this replica may act on it.
type holding struct {
	token int64
	until time.Time
}

// New returns a manager for the lease tables in pool's database (migrations
// 0002_leases.sql and 0005_leases_more.sql). It does not touch the database until Run.
func New(pool *pgxpool.Pool, cfg Config) (*Manager, error) {
	if pool == nil {
		return nil, errors.New("lease: no database pool")
	}
	if strings.TrimSpace(cfg.ReplicaID) == "" {
		return nil, errors.New("lease: ReplicaID is required (unique per replica, e.g. the host name)")
	}
	if cfg.Sites == nil {
		return nil, errors.New("lease: Sites is required")
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Renew == 0 {
		cfg.Renew = cfg.TTL / 5
	}
	if cfg.TTL < 30*time.Millisecond || cfg.Renew <= 0 || cfg.Renew > cfg.TTL/3 {
		return nil, fmt.Errorf("lease: TTL %v and Renew %v: need TTL ≥ 30ms and 0 < Renew ≤ TTL/3", cfg.TTL, cfg.Renew)
	}
	if cfg.Slack < 0 {
		return nil, fmt.Errorf("lease: Slack %d is negative", cfg.Slack)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	met, err := newMetrics(cfg.Registry)
	if err != nil {
		return nil, fmt.Errorf("lease: metrics: %w", err)
	}
	return &Manager{
		pool: pool, id: cfg.ReplicaID, ttl: cfg.TTL, renew: cfg.Renew, margin: cfg.Renew,
		slack: cfg.Slack, sites: cfg.Sites, log: cfg.Logger.With("replica", cfg.ReplicaID), met: met,
		held: map[string]holding{}, known: map[string]bool{},
	}, nil
}

// OnChange registers fn to be told when this replica gains a site's lease (owned true,
// with the fence its transactions must carry) or stops holding one (owned false: lost
// or released). A gain for a site already held means a new tenure with a new fence.
// Register before Run; fn must be quick (it runs on the manager's goroutine and delays
// renewals). Owned is the authority at the instant of use: a lease that runs out while
// the manager is stuck reads as not owned before fn hears of it.
func (m *Manager) OnChange(fn func(site string, fence cloud.Fence, owned bool)) {
	m.onChange = append(m.onChange, fn)
}

// OnWork is OnChange for the work lease.
func (m *Manager) OnWork(fn func(fence cloud.Fence, owned bool)) {
	m.onWork = append(m.onWork, fn)
}

// Owned reports whether this replica holds site's lease now, and the fence to attach to
// the transactions it runs for the site (cloud.WithFences).
func (m *Manager) Owned(site string) (cloud.Fence, bool) { return m.holds(SiteLease(site)) }

// Work reports whether this replica holds the work lease now, and its fence.
func (m *Manager) Work() (cloud.Fence, bool) { return m.holds(WorkLease) }

func (m *Manager) holds(name string) (cloud.Fence, bool) {
	m.mu.Lock()
	h, ok := m.held[name]
	m.mu.Unlock()
	if !ok || !time.Now().Before(h.until) {
		return cloud.Fence{}, false
	}
	return cloud.Fence{Name: name, Token: h.token}, true
}

// Run heartbeats, renews, claims and hands back leases every Renew interval until ctx
// ends or Close is called, then returns nil. It returns without releasing anything:
// leases it held run out on their own (what a crash looks like to the others); Close
// hands them over at once. Database errors are logged and retried at the next tick.
func (m *Manager) Run(ctx context.Context) error {
	m.mu.Lock()
	if m.running || m.closed {
		m.mu.Unlock()
		return errors.New("lease: Run called twice or after Close")
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	m.running, m.stop, m.done = true, stop, make(chan struct{})
	done := m.done
	m.mu.Unlock()
	defer close(done)

	m.beat = false
	tick := time.NewTicker(m.renew)
	defer tick.Stop()
	expiry := time.NewTimer(m.ttl)
	defer expiry.Stop()
	for {
		m.round(ctx)
		for waiting := true; waiting; {
			m.expire()
			expiry.Reset(m.nextExpiry())
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
				waiting = false
			case <-expiry.C:
			}
		}
	}
}

// Close stops Run (waiting for it to return), releases every lease this replica holds
// and deletes its replica row, so that a planned restart hands its sites over at once.
// ctx bounds the database work; leases it could not release expire after TTL. Close is
// idempotent.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	stop, done := m.stop, m.done
	m.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	released := m.drop(m.heldNames(func(string) bool { return true }), changeReleased)
	// One transaction: the others see this replica gone and its leases free at the same
	// instant, so their next tick counts the share without it and claims them all.
	names, tokens := split(released)
	b := &pgx.Batch{}
	b.Queue(sqlRelease, m.id, names, tokens)
	b.Queue(sqlLeave, m.id)
	if err := m.pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("lease: close (%d leases expire on their own): %w", len(names), err)
	}
	m.log.Info("lease: released everything on close", "leases", len(names))
	return nil
}

// round is one tick: renew (with the heartbeat and the counts), then balance. Its
// database work ends before the first held lease would run out, so that a database that
// hangs cannot keep the manager from giving its leases up in time.
func (m *Manager) round(parent context.Context) {
	m.expire()
	start := time.Now()
	deadline := start.Add(2 * m.renew)
	if next := m.earliestUntil(); !next.IsZero() && next.Before(deadline) {
		deadline = next
	}
	ctx, cancel := context.WithDeadline(parent, deadline)
	defer cancel()
	joining := !m.beat
	f, err := m.renewAll(ctx, start)
	if err != nil {
		if parent.Err() == nil { // not Run stopping
			m.renewFailed(err)
		}
		return
	}
	if !m.failingAt.IsZero() {
		m.log.Info("lease: renewal recovered", "after", time.Since(m.failingAt).Round(time.Millisecond))
		m.failingAt = time.Time{}
	}
	if joining {
		// The first heartbeat only announces this replica: replicas started together
		// then count each other before any claims, instead of the first one claiming
		// the whole fleet and handing most of it back.
		if err := m.addSites(ctx); err != nil && parent.Err() == nil {
			m.log.Warn("lease: claim or hand-back failed", "err", err)
		}
		return
	}
	if err := m.balance(ctx, f); err != nil && parent.Err() == nil {
		m.log.Warn("lease: claim or hand-back failed", "err", err)
	}
}

func (m *Manager) renewFailed(err error) {
	if !m.failingAt.IsZero() {
		return // logged once per outage
	}
	m.failingAt = time.Now()
	left := time.Duration(0)
	if next := m.earliestUntil(); !next.IsZero() {
		left = time.Until(next).Round(time.Millisecond)
	}
	m.log.Warn("lease: renewal failing; leases are given up when it has not succeeded in time",
		"err", err, "leases", m.count(func(string) bool { return true }), "give_up_in", left)
}

// renewAll sends the heartbeat, the renewal of every held lease, the counts and (when
// not held) the claim of the work lease in one round trip, and returns the counts.
func (m *Manager) renewAll(ctx context.Context, start time.Time) (fleet, error) {
	var f fleet
	names := m.heldNames(func(string) bool { return true })
	tokens := m.tokens(names)
	_, haveWork := m.holds(WorkLease)
	ttl := m.ttl.Milliseconds()

	b := &pgx.Batch{}
	b.Queue(sqlHeartbeat, m.id, !m.beat)
	b.Queue(sqlForgetReplicas)
	b.Queue(sqlRenew, m.id, ttl, names, tokens)
	b.Queue(sqlCounts, ttl)
	if !haveWork {
		b.Queue(sqlClaimWork, m.id, ttl)
	}
	br := m.pool.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return f, fmt.Errorf("lease: heartbeat: %w", err)
	}
	if _, err := br.Exec(); err != nil {
		return f, fmt.Errorf("lease: forget replicas: %w", err)
	}
	renewed, err := scanLeases(br)
	if err != nil {
		return f, fmt.Errorf("lease: renew: %w", err)
	}
	if err := br.QueryRow().Scan(&f.live, &f.sites, &f.fewest); err != nil {
		return f, fmt.Errorf("lease: count: %w", err)
	}
	var workToken int64
	gotWork := false
	if !haveWork {
		switch err := br.QueryRow().Scan(&workToken); {
		case err == nil:
			gotWork = true
		case !errors.Is(err, pgx.ErrNoRows):
			return f, fmt.Errorf("lease: claim work: %w", err)
		}
	}
	// The batch is one implicit transaction: nothing above holds until it commits.
	if err := br.Close(); err != nil {
		return f, fmt.Errorf("lease: renew: %w", err)
	}
	m.beat = true
	m.met.live.Set(float64(f.live))

	until := start.Add(m.ttl - m.margin)
	var lost []string
	for _, n := range names {
		if _, ok := renewed[n]; ok { // the statement matched name and token
			m.extend(n, until)
		} else {
			lost = append(lost, n)
		}
	}
	if len(lost) > 0 {
		slices.Sort(lost)
		m.drop(lost, changeLost)
		m.log.Warn("lease: lost to another replica or expired before renewal", "leases", len(lost), "first", lost[0])
	}
	if gotWork {
		m.gain(map[string]int64{WorkLease: workToken}, until)
		m.log.Info("lease: gained the work lease", "token", workToken)
	}
	return f, nil
}

// fleet is what a renewal counted: the live replicas, the site leases, and the fewest
// site leases a live replica holds.
type fleet struct{ live, sites, fewest int }

// balance registers new sites, then claims site leases up to the fair share or hands
// back surplus. The share of n sites over r live replicas is ceil(n/r) (hi) or
// floor(n/r) (lo). A replica below hi claims expired leases; one above hi + slack hands
// back towards hi; one above lo while another is below lo - slack hands back towards lo
// (ceil shares can leave the last replica short), and then claims no more than lo
// while that one is short, so as not to race it for the leases it handed back. At its
// share a replica claims only orphans.
func (m *Manager) balance(ctx context.Context, f fleet) error {
	// A failing Sites func must not stop this replica from taking its share of the
	// sites the others registered: it would be counted live and still claim nothing.
	addErr := m.addSites(ctx)
	sites := max(f.sites, len(m.known))
	live := max(f.live, 1) // our own heartbeat counts; this guards a clock jump
	lo, hi := sites/live, (sites+live-1)/live
	slack := m.slackFor(hi)
	held := m.count(isSite)
	step := max(1, (hi+releaseSteps-1)/releaseSteps)
	needy := f.fewest < lo-slack // a live replica is well short of its share
	var err error
	switch {
	case held > hi+slack:
		err = m.handBack(ctx, min(held-hi, step))
	case held > lo && needy:
		err = m.handBack(ctx, min(held-lo, step))
	case held < hi && !(held >= lo && needy):
		err = m.claim(ctx, 0, min(hi-held, maxClaim))
	default:
		err = m.claim(ctx, orphanAfter*m.renew, maxClaim)
	}
	return errors.Join(addErr, err)
}

// slackFor is the slack around a share: Config.Slack, or 2, or 5 % of the share when
// that is more.
func (m *Manager) slackFor(share int) int {
	if m.slack > 0 {
		return m.slack
	}
	return max(2, share/20)
}

// addSites creates the lease rows of sites this replica has not seen before.
func (m *Manager) addSites(ctx context.Context) error {
	ids, err := m.sites(ctx)
	if err != nil {
		return fmt.Errorf("lease: list sites: %w", err)
	}
	var fresh []string
	for _, id := range ids {
		if n := SiteLease(id); !m.known[n] {
			fresh = append(fresh, n)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	if _, err := m.pool.Exec(ctx, sqlAddSites, fresh); err != nil {
		return fmt.Errorf("lease: add %d sites: %w", len(fresh), err)
	}
	for _, n := range fresh {
		m.known[n] = true
	}
	return nil
}

// claim takes up to limit site leases that have been expired for at least minExpired.
func (m *Manager) claim(ctx context.Context, minExpired time.Duration, limit int) error {
	start := time.Now()
	rows, err := m.pool.Query(ctx, sqlClaimSites, m.id, m.ttl.Milliseconds(), minExpired.Milliseconds(), limit)
	if err != nil {
		return fmt.Errorf("lease: claim sites: %w", err)
	}
	got, err := collectLeases(rows)
	if err != nil {
		return fmt.Errorf("lease: claim sites: %w", err)
	}
	if len(got) > 0 {
		m.gain(got, start.Add(m.ttl-m.margin))
		m.log.Info("lease: gained sites", "leases", len(got), "held", m.count(isSite), "orphans", minExpired > 0)
	}
	return nil
}

// handBack releases n site leases: it stops acting on them first, then ends their
// tenure in the database, so the next claimer can never overlap with this replica.
func (m *Manager) handBack(ctx context.Context, n int) error {
	names := m.heldNames(isSite)
	slices.Sort(names)
	released := m.drop(names[len(names)-n:], changeReleased)
	m.log.Info("lease: handing back sites to spread them out", "leases", len(released), "held", m.count(isSite))
	return m.release(ctx, released)
}

// release ends the given tenures in the database.
func (m *Manager) release(ctx context.Context, hs map[string]int64) error {
	names, tokens := split(hs)
	if _, err := m.pool.Exec(ctx, sqlRelease, m.id, names, tokens); err != nil {
		return fmt.Errorf("lease: release %d leases (they expire on their own): %w", len(names), err)
	}
	return nil
}

// expire gives up the leases whose local validity has run out: the renewals have
// failed for so long that the database may let another replica take them.
func (m *Manager) expire() {
	now := time.Now()
	m.mu.Lock()
	var out []string
	for n, h := range m.held {
		if !now.Before(h.until) {
			out = append(out, n)
		}
	}
	m.mu.Unlock()
	if len(out) == 0 {
		return
	}
	slices.Sort(out)
	m.drop(out, changeLost)
	m.log.Warn("lease: given up unrenewed before it could expire in the database", "leases", len(out), "first", out[0])
}

// gain records new tenures and tells the registered functions.
func (m *Manager) gain(got map[string]int64, until time.Time) {
	names := make([]string, 0, len(got))
	m.mu.Lock()
	for n, t := range got {
		m.held[n] = holding{token: t, until: until}
		names = append(names, n)
	}
	m.mu.Unlock()
	slices.Sort(names)
	m.met.changes.WithLabelValues(changeGained).Add(float64(len(names)))
	m.setHeld()
	for _, n := range names {
		m.notify(n, got[n], true)
	}
}

// drop forgets the held ones among names, counts them as change and tells the
// registered functions; it returns their tokens.
func (m *Manager) drop(names []string, change string) map[string]int64 {
	out := make(map[string]int64, len(names))
	m.mu.Lock()
	for _, n := range names {
		if h, ok := m.held[n]; ok {
			out[n] = h.token
			delete(m.held, n)
		}
	}
	m.mu.Unlock()
	m.met.changes.WithLabelValues(change).Add(float64(len(out)))
	m.setHeld()
	for _, n := range names {
		if t, ok := out[n]; ok {
			m.notify(n, t, false)
		}
	}
	return out
}

func (m *Manager) notify(name string, token int64, owned bool) {
	f := cloud.Fence{Name: name, Token: token}
	if name == WorkLease {
		for _, fn := range m.onWork {
			fn(f, owned)
		}
		return
	}
	site := strings.TrimPrefix(name, sitePrefix)
	for _, fn := range m.onChange {
		fn(site, f, owned)
	}
}

func (m *Manager) setHeld() {
	m.met.held.WithLabelValues("site").Set(float64(m.count(isSite)))
	m.met.held.WithLabelValues("work").Set(float64(m.count(func(n string) bool { return n == WorkLease })))
}

func (m *Manager) extend(name string, until time.Time) {
	m.mu.Lock()
	if h, ok := m.held[name]; ok {
		h.until = until
		m.held[name] = h
	}
	m.mu.Unlock()
}

func (m *Manager) heldNames(keep func(string) bool) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for n := range m.held {
		if keep(n) {
			out = append(out, n)
		}
	}
	return out
}

func (m *Manager) tokens(names []string) []int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]int64, len(names))
	for i, n := range names {
		out[i] = m.held[n].token
	}
	return out
}

func (m *Manager) count(keep func(string) bool) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := 0
	for n := range m.held {
		if keep(n) {
			c++
		}
	}
	return c
}

// earliestUntil is the first instant a held lease runs out locally (zero: none held).
func (m *Manager) earliestUntil() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	var e time.Time
	for _, h := range m.held {
		if e.IsZero() || h.until.Before(e) {
			e = h.until
		}
	}
	return e
}

// nextExpiry is how long until the next local expiry (a TTL when nothing is held).
func (m *Manager) nextExpiry() time.Duration {
	e := m.earliestUntil()
	if e.IsZero() {
		return m.ttl
	}
	return max(time.Until(e), time.Millisecond)
}

// split returns the names and tokens of hs, in matching order.
func split(hs map[string]int64) ([]string, []int64) {
	names := make([]string, 0, len(hs))
	tokens := make([]int64, 0, len(hs))
	for n, t := range hs {
		names, tokens = append(names, n), append(tokens, t)
	}
	return names, tokens
}

func isSite(name string) bool { return strings.HasPrefix(name, sitePrefix) }

func scanLeases(br pgx.BatchResults) (map[string]int64, error) {
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	return collectLeases(rows)
}

// collectLeases reads (name, token) rows and closes them.
func collectLeases(rows pgx.Rows) (map[string]int64, error) {
	out := map[string]int64{}
	var name string
	var token int64
	_, err := pgx.ForEachRow(rows, []any{&name, &token}, func() error {
		out[name] = token
		return nil
	})
	return out, err
}
