package lease_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/cloud/lease"
	"github.com/larder-lockers/larder/internal/pgtest"
)

// A short lease keeps the tests quick; Renew is the default fifth of it.
const (
	testTTL   = 2 * time.Second
	testRenew = testTTL / 5
)

// env is one test's database, fleet of sites and record of lease changes.
type env struct {
	t     *testing.T
	url   string
	db    *pgxpool.Pool // the test's own connections, for checks in SQL
	fleet *fleet
	rec   *recorder
}

func newEnv(t *testing.T, sites int) *env {
	t.Helper()
	e := &env{t: t, url: pgtest.DB(t), fleet: &fleet{}, rec: &recorder{}}
	e.db = e.pool(e.url)
	// The migration runner is written elsewhere at the same time: apply the lease
	// tables' migrations from disk, as it will.
	for _, f := range []string{"0002_leases.sql", "0005_leases_more.sql"} {
		ddl, err := os.ReadFile("../pg/migrations/" + f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.db.Exec(ctx(t), string(ddl)); err != nil {
			t.Fatalf("apply %s: %v", f, err)
		}
	}
	e.fleet.add(sites)
	return e
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func (e *env) pool(u string) *pgxpool.Pool {
	e.t.Helper()
	p, err := pgxpool.New(context.Background(), u)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(p.Close)
	return p
}

// replica is one manager as a cloud replica runs it.
type replica struct {
	name   string
	m      *lease.Manager
	cancel context.CancelFunc
	done   chan error
}

// replica creates a manager named name over a pool of its own to u (e.url, or a proxy's).
func (e *env) replica(name, u string) *replica {
	e.t.Helper()
	m, err := lease.New(e.pool(u), lease.Config{
		ReplicaID: name, TTL: testTTL, Sites: e.fleet.list,
		Logger: slog.New(slog.NewTextHandler(logTo(e.t), nil)),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	m.OnChange(func(site string, f cloud.Fence, owned bool) { e.rec.add(name, site, f, owned) })
	m.OnWork(func(f cloud.Fence, owned bool) { e.rec.add(name, "", f, owned) })
	r := &replica{name: name, m: m}
	e.t.Cleanup(func() { r.kill(e.t) })
	return r
}

// start runs the manager until kill.
func (r *replica) start() *replica {
	c, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan error, 1)
	go func() { r.done <- r.m.Run(c) }()
	return r
}

// kill stops Run without Close: what SIGKILL looks like to the other replicas.
func (r *replica) kill(t *testing.T) {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("%s: Run: %v", r.name, err)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("%s: Run did not return within 5s of its context ending", r.name)
	}
}

func logTo(t *testing.T) io.Writer {
	if testing.Verbose() {
		return t.Output()
	}
	return io.Discard
}

// fleet is the list of site ids the managers' Sites func returns; tests add to it.
type fleet struct {
	mu  sync.Mutex
	ids []string
}

func (f *fleet) add(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.ids = append(f.ids, fmt.Sprintf("s%05d", len(f.ids)+1))
	}
}

func (f *fleet) list(context.Context) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ids), nil
}

// recorder keeps every lease change the managers announced, in the order they did.
type recorder struct {
	mu     sync.Mutex
	events []event
}

type event struct {
	at      time.Time
	replica string
	site    string // "" for the work lease
	token   int64
	owned   bool
	killed  bool // the replica was killed: it holds nothing any more
}

func (r *recorder) add(replica, site string, f cloud.Fence, owned bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, event{at: time.Now(), replica: replica, site: site, token: f.Token, owned: owned})
}

func (r *recorder) killed(replica string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, event{at: time.Now(), replica: replica, killed: true})
}

func (r *recorder) all() []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// check verifies the announced history: per lease, no replica gains it while another
// holds it, and every gain carries a larger token than the one before.
func (r *recorder) check(t *testing.T) {
	t.Helper()
	holders := map[string]map[string]int64{} // site → replica → token
	last := map[string]int64{}
	for _, e := range r.all() {
		if e.killed {
			for _, h := range holders {
				delete(h, e.replica)
			}
			continue
		}
		h := holders[e.site]
		if h == nil {
			h = map[string]int64{}
			holders[e.site] = h
		}
		if !e.owned {
			delete(h, e.replica)
			continue
		}
		for other, tok := range h {
			if other != e.replica {
				t.Errorf("lease %q: %s gained it (token %d) while %s held it (token %d)", e.site, e.replica, e.token, other, tok)
			}
		}
		if e.token <= last[e.site] {
			t.Errorf("lease %q: %s gained it with token %d, not above the previous %d", e.site, e.replica, e.token, last[e.site])
		}
		last[e.site] = e.token
		h[e.replica] = e.token
	}
}

// sampler snapshots the managers' in-memory leases while a test runs and reports any
// site two of them held at the same instant.
func sample(t *testing.T, ms ...*lease.Manager) (stop func() int) {
	done := make(chan struct{})
	result := make(chan int)
	go func() {
		n := 0
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			snaps := lease.Snapshot(ms...)
			n++
			owner := map[string]int{}
			for i, s := range snaps {
				for site := range s {
					if j, ok := owner[site]; ok {
						t.Errorf("sample %d: site %s held by managers %d and %d at once", n, site, j, i)
					}
					owner[site] = i
				}
			}
			select {
			case <-done:
				result <- n
				return
			case <-tick.C:
			}
		}
	}()
	var once sync.Once
	n := 0
	stop = func() int {
		once.Do(func() { close(done); n = <-result })
		return n
	}
	t.Cleanup(func() { stop() }) // a test that fails early stops it too
	return stop
}

// waitFor polls cond every 20ms until it holds, failing the test after within.
func waitFor(t *testing.T, what string, within time.Duration, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ok, why := cond()
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v: %s", what, within, why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// spread reports whether every one of n sites is held by exactly one of ms and each
// holds between floor(n/len(ms)) - slack and ceil(n/len(ms)) + slack.
func spread(n int, ms ...*lease.Manager) (bool, string) {
	snaps := lease.Snapshot(ms...)
	counts := make([]int, len(ms))
	total := 0
	for i, s := range snaps {
		counts[i] = len(s)
		total += len(s)
	}
	lo, hi := n/len(ms), (n+len(ms)-1)/len(ms)
	slack := max(2, hi/20)
	if total != n {
		return false, fmt.Sprintf("%d of %d sites held (counts %v)", total, n, counts)
	}
	for _, c := range counts {
		if c < lo-slack || c > hi+slack {
			return false, fmt.Sprintf("counts %v, want each in [%d, %d]", counts, lo-slack, hi+slack)
		}
	}
	return true, ""
}

// fenceHolds is the check a shared store makes before it commits a transaction on a
// lease's behalf: the lease row, read FOR SHARE so that no change of owner can commit
// until this transaction ends, still carries the fence's token.
func fenceHolds(t *testing.T, db *pgxpool.Pool, f cloud.Fence) bool {
	t.Helper()
	c := ctx(t)
	tx, err := db.BeginTx(c, pgx.TxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(c)
	var token int64
	if err := tx.QueryRow(c, `SELECT token FROM larder_leases WHERE name = $1 FOR SHARE`, f.Name).Scan(&token); err != nil {
		t.Fatalf("fence %s: %v", f.Name, err)
	}
	return token == f.Token
}

// proxy forwards TCP connections to the database and can freeze them: while frozen no
// byte moves either way and new connections hang, as with a paused VM or a partition.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	thawed chan struct{} // closed while traffic flows
	conns  []net.Conn
}

func newProxy(t *testing.T, dbURL string) (*proxy, string) {
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: u.Host, thawed: make(chan struct{})}
	close(p.thawed)
	t.Cleanup(p.close)
	go p.accept()
	u.Host = ln.Addr().String()
	return p, u.String()
}

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.serve(c)
	}
}

func (p *proxy) serve(c net.Conn) {
	<-p.gate()
	d, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns = append(p.conns, c, d)
	p.mu.Unlock()
	go p.pipe(d, c)
	p.pipe(c, d)
}

// pipe copies src to dst, holding each chunk while the proxy is frozen.
func (p *proxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			<-p.gate()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *proxy) gate() chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.thawed
}

func (p *proxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.thawed = make(chan struct{})
}

func (p *proxy) thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.thawed:
	default:
		close(p.thawed)
	}
}

func (p *proxy) close() {
	p.ln.Close()
	p.thaw()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}
