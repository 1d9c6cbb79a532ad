// Package benchfleet builds the fleet databases the order benchmarks measure (cloud/bolt's
// TestBenchOrders through the domain, cloud/http's TestBenchOrdersHTTP through the API):
// many sites of many compartments and many stored orders in one bbolt file, wired as
// cloudd wires it (the notify outbox in the same file), and the baseline the figures are
// compared with, raw batched bbolt commits of the same writes. It is for tests only.
package benchfleet

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/cloud/bolt"
	"github.com/larder-lockers/larder/cloud/notify"
	"github.com/larder-lockers/larder/protocol"
)

// The targets of issue 10 for orders, the same through the domain and over HTTP, as
// same-run ratios where they can be.
const (
	// VsRaw: orders/s at 10k sites with 100k stored orders, at least this share of raw
	// batched bbolt commits of the same writes.
	VsRaw = 0.5
	// Growth: orders/s with the large fleet stored, at least this share of the rate with
	// 1k stored (cost flat within 15 %).
	Growth = 0.85
	// P99 is the latency target of PacedOrders orders at Rate per second (10 s: 50
	// orders above the p99).
	P99         = 25 * time.Millisecond
	Rate        = 500
	PacedOrders = 5000
)

// Dir makes a directory for benchmark databases, removed when tb ends, under
// LARDER_BENCH_DIR or the system temp dir: a real disk, so that fsync costs what it costs.
func Dir(tb testing.TB) string {
	dir, err := os.MkdirTemp(os.Getenv("LARDER_BENCH_DIR"), "larder-bench-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// MaxLive is the most orders a fleet keeps live; orders stored beyond it are cancelled
// orders of the past (history), since sites have room for only so many at once.
const MaxLive = 100_000

// Fleet is a benchmark database of many sites and many stored orders. It is filled
// quickly with fsync off (bolt.Options.NoSync): sites and live orders through the domain
// from many concurrent callers, so that group commit packs many orders into a
// transaction, and history as copies of one order made through the domain (history).
// It is then measured as cloudd runs it: reopened durable, with the notify outbox in the
// same file.
type Fleet struct {
	Path  string
	Comps []protocol.Compartment
	Sites []string
	// Stored is the number of orders in the database; Live how many of them are live.
	Stored, Live int
	// PerOrder is the domain's writes (Put and Delete) per order of the last big seed,
	// for the raw baseline's same number of writes.
	PerOrder float64
	next     int64 // the sequence number of the next order (keeps ids and keys unique)
	writes   atomic.Int64
}

// New returns an empty fleet database whose sites will have compartments doors.
func New(tb testing.TB, compartments int) *Fleet {
	f := &Fleet{Path: filepath.Join(Dir(tb), "cloud.db")}
	for i := range compartments {
		f.Comps = append(f.Comps, protocol.Compartment{Number: i + 1, Size: []protocol.Size{protocol.SizeS, protocol.SizeM, protocol.SizeL}[i%3],
			Zone: []protocol.Zone{protocol.ZoneChilled, protocol.ZoneAmbient}[i%2], HeightCM: 30 + (i%6)*30, Lock: i % 16, Board: i / 16})
	}
	return f
}

// Env is an open fleet database: the domain over the store, and the platform that
// orders.
type Env struct {
	Svc   *cloud.Service
	DB    *bolt.DB
	Sites []string
	Plat  cloud.Principal
	seq   atomic.Int64
	// seeding: opened without fsync (Grow), so Done flushes the file before closing it.
	seeding bool
}

// Request returns the next order's idempotency key and request: a random site, as
// residents order (consecutive orders at consecutive sites would share B-tree pages that
// real traffic does not), and a random idempotency key, as a platform's UUIDs are.
func (e *Env) Request() (string, cloud.OrderRequest) {
	n := e.seq.Add(1)
	now := time.Now()
	mix := uint64(n) * 0x9e3779b97f4a7c15
	req := cloud.OrderRequest{ExternalID: fmt.Sprintf("ext-%d", n), Site: e.Sites[(mix>>17)%uint64(len(e.Sites))],
		Recipient: cloud.Recipient{Phone: "+8613800138000"},
		Parcels:   []cloud.Parcel{{Size: protocol.SizeS, Zone: []protocol.Zone{protocol.ZoneChilled, protocol.ZoneAmbient}[n%2]}},
		Window:    cloud.Window{Start: now.Add(time.Hour), End: now.Add(3 * time.Hour)}}
	return fmt.Sprintf("idem-%016x", mix), req
}

// Order creates, assigns and codes one order through the domain, durably.
func (e *Env) Order(ctx context.Context) (cloud.OrderReceipt, error) {
	key, req := e.Request()
	return e.Svc.CreateOrder(ctx, e.Plat, key, req)
}

// Open opens the fleet's database, durable (fsync) unless seeding, with the notify
// outbox wired as cloudd wires it, so that every order also writes its "created" notice
// in its own transaction. Call Done before opening another.
func (f *Fleet) Open(tb testing.TB, seeding bool) *Env {
	return f.OpenMode(tb, seeding, bolt.GroupCommit)
}

// OpenMode is Open with a commit mode.
func (f *Fleet) OpenMode(tb testing.TB, seeding bool, mode bolt.CommitMode) *Env {
	db, err := bolt.Open(f.Path, bolt.Options{NoSync: seeding, Mode: mode})
	if err != nil {
		tb.Fatal(err)
	}
	var store cloud.Store = db
	if seeding {
		store = &countingStore{Store: db, n: &f.writes}
	}
	e := &Env{DB: db, Svc: cloud.New(cloud.Options{Store: store}), Sites: f.Sites,
		Plat: cloud.Principal{Role: cloud.RolePlatform, Subject: "bench"}, seeding: seeding}
	e.seq.Store(f.next)
	q, err := notify.NewBoltQueue(db, "notify", make([]byte, 32))
	if err != nil {
		tb.Fatal(err)
	}
	e.Svc.SetPorts(nil, nil, &notify.Notifier{Outbox: q})
	return e
}

// Done closes e and counts the orders it made (all live: the benchmarks' orders are
// never loaded) into the fleet's.
func (f *Fleet) Done(tb testing.TB, e *Env) {
	n := e.seq.Load()
	f.Stored += int(n - f.next)
	f.Live += int(n - f.next)
	f.next = n
	if e.seeding {
		// The seed wrote without fsync: flush it now, or the first durable commits of the
		// measurement would wait for the kernel to write back the seed's hundreds of
		// megabytes (an fsync on ext4 commits the journal behind other dirty data).
		if err := e.DB.Bolt().Sync(); err != nil {
			tb.Fatal(err)
		}
	}
	if err := e.DB.Close(); err != nil {
		tb.Fatal(err)
	}
}

// Grow adds sites until the fleet has sites, then orders until it stores orders: live
// ones up to MaxLive, cancelled ones (history) after that.
func (f *Fleet) Grow(tb testing.TB, sites, orders int) {
	e := f.Open(tb, true)
	ctx := context.Background()
	admin := cloud.Principal{Role: cloud.RoleAdmin, Subject: "bench"}
	first := len(f.Sites)
	for i := first; i < sites; i++ {
		f.Sites = append(f.Sites, fmt.Sprintf("bench-%05d", i))
	}
	e.Sites = f.Sites
	Parallel(tb, 64, sites-first, func(i int) error {
		id := f.Sites[first+i]
		if _, err := e.Svc.CreateSite(ctx, admin, cloud.SiteInput{ID: id}); err != nil {
			return err
		}
		_, err := e.Svc.ApplyBirth(ctx, id, time.Now(), protocol.Birth{Software: "bench", Compartments: f.Comps})
		return err
	})
	before := f.writes.Load()
	live := max(0, min(orders, MaxLive)-f.Stored)
	Parallel(tb, 256, live, func(int) error { _, err := e.Order(ctx); return err })
	if live >= 1000 { // a small seed says little about the mean
		f.PerOrder = float64(f.writes.Load()-before) / float64(live)
	}
	f.Done(tb, e)
	if history := orders - f.Stored; history > 0 {
		f.history(tb, history)
	}
}

// history adds n cancelled orders of the past. Made each through the domain (a create
// and a cancel: two transactions of JSON, digests and sealing), 900,000 of them were not
// done after seven minutes on a loaded two-core machine. So one template order is made
// and cancelled through the domain while its writes are recorded, and the records it
// leaves behind (the order and its indexes: every key that names it) are written again
// for each history order with its own id, site and external id, many orders to a
// transaction through the store's API. Ids sort in the past (10 to 100 days ago), as old
// orders' do. The template's notices are not copied (an outbox delivers and purges old
// notices), nor its idempotency key (the sweep forgets keys after a day).
func (f *Fleet) history(tb testing.TB, n int) {
	ctx := context.Background()
	e := f.Open(tb, true)
	rec := &recordingStore{Store: e.DB, writes: map[[2]string][]byte{}}
	svc := cloud.New(cloud.Options{Store: rec})
	key, req := e.Request()
	rc, err := svc.CreateOrder(ctx, e.Plat, key, req)
	if err == nil {
		_, err = svc.CancelOrder(ctx, e.Plat, rc.Order.ID, "")
	}
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := []string{rc.Order.ID, req.Site, req.ExternalID}
	type record struct{ bucket, key, value string }
	var records []record
	for bk, v := range rec.writes {
		switch {
		case v == nil: // deleted
		case strings.Contains(bk[1], key):
			// The idempotency key's records: the sweep forgets a key after
			// cloud.IdempotencyRetention, long before an order is history.
		case strings.Contains(bk[1], tmpl[0]) || strings.Contains(bk[1], tmpl[2]):
			records = append(records, record{bk[0], bk[1], string(v)})
		}
		// Any other key is the site's (its record, compartments), not the order's.
	}
	if len(records) < 4 {
		tb.Fatalf("history: the template order left %d records", len(records))
	}
	rng := rand.New(rand.NewPCG(uint64(n), 3))
	start := time.Now().Add(-100 * 24 * time.Hour).UnixMilli()
	step := max(1, 90*24*time.Hour.Milliseconds()/int64(n))
	const perTx = 5000
	for done := 1; done < n; done += perTx {
		err := e.DB.Update(ctx, func(tx cloud.Tx) error {
			for i := done; i < min(n, done+perTx); i++ {
				var id [12]byte
				binary.BigEndian.PutUint64(id[:8], uint64(start+int64(i)*step)<<16)
				binary.BigEndian.PutUint32(id[8:], rng.Uint32())
				binary.BigEndian.PutUint16(id[6:8], uint16(rng.Uint32()))
				r := strings.NewReplacer(tmpl[0], "ord_"+hex.EncodeToString(id[:]), tmpl[1], f.Sites[rng.IntN(len(f.Sites))],
					tmpl[2], fmt.Sprintf("hist-%d-%d", f.next, i))
				for _, rc := range records {
					if err := tx.Put(rc.bucket, r.Replace(rc.key), []byte(r.Replace(rc.value))); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	f.Done(tb, e)
	f.Stored += n - 1 // Done counted the template as live
	f.Live--
}

// recordingStore keeps the last value each key was given by the Updates through it (nil
// for a delete).
type recordingStore struct {
	cloud.Store
	mu     sync.Mutex
	writes map[[2]string][]byte
}

func (r *recordingStore) Update(ctx context.Context, fn func(cloud.Tx) error) error {
	return r.Store.Update(ctx, func(tx cloud.Tx) error { return fn(&recordingTx{Tx: tx, r: r}) })
}

type recordingTx struct {
	cloud.Tx
	r *recordingStore
}

func (t *recordingTx) Put(bucket, key string, v []byte) error {
	t.r.mu.Lock()
	t.r.writes[[2]string{bucket, key}] = append([]byte{}, v...)
	t.r.mu.Unlock()
	return t.Tx.Put(bucket, key, v)
}

func (t *recordingTx) Delete(bucket, key string) error {
	t.r.mu.Lock()
	t.r.writes[[2]string{bucket, key}] = nil
	t.r.mu.Unlock()
	return t.Tx.Delete(bucket, key)
}

// Parallel runs fn(0..n-1) from workers goroutines and fails tb on the first error.
func Parallel(tb testing.TB, workers, n int, fn func(i int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Bool
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n && !failed.Load(); i = int(next.Add(1) - 1) {
				if err := fn(i); err != nil {
					failed.Store(true)
					tb.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() {
		tb.FailNow()
	}
}

// countingStore counts the Puts and Deletes of the domain's transactions. Bolt passes
// the bbolt transaction through, so that the notify outbox joins it as in cloudd; the
// outbox's own writes are not counted here (see NotifyWrites).
type countingStore struct {
	cloud.Store
	n *atomic.Int64
}

func (c *countingStore) Update(ctx context.Context, fn func(cloud.Tx) error) error {
	return c.Store.Update(ctx, func(tx cloud.Tx) error { return fn(&countingTx{Tx: tx, n: c.n}) })
}

type countingTx struct {
	cloud.Tx
	n *atomic.Int64
}

func (t *countingTx) Put(bucket, key string, v []byte) error {
	t.n.Add(1)
	return t.Tx.Put(bucket, key, v)
}

func (t *countingTx) Delete(bucket, key string) error {
	t.n.Add(1)
	return t.Tx.Delete(bucket, key)
}

func (t *countingTx) Bolt() *bbolt.Tx { return t.Tx.(interface{ Bolt() *bbolt.Tx }).Bolt() }

// NotifyWrites is what the outbox writes for an order's "created" notice: one webhook
// message, its due-index entry and the outbox's counters (cloud/notify's enqueue).
const NotifyWrites = 3

// RawBatchedRate is the baseline the goal names: bbolt's own rate for the same number of
// writes, batched as the committer batched the orders. One writer commits transactions
// of group×perOrder puts (two fsyncs each) of random keys, as most of the domain's keys
// are random (idempotency keys, codes, sites, compartments), with values of valueSize
// bytes. It returns order-equivalents per second: writes/s ÷ perOrder.
func RawBatchedRate(tb testing.TB, orders int, perOrder float64, group, valueSize int) float64 {
	db, err := bbolt.Open(filepath.Join(Dir(tb), "raw.db"), 0o600, &bbolt.Options{Timeout: time.Second,
		FreelistType: bbolt.FreelistMapType, NoFreelistSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	writes := int(float64(orders) * perOrder)
	perTx := max(1, int(float64(group)*perOrder))
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Now()
	for done := 0; done < writes; done += perTx {
		err := db.Update(func(tx *bbolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("b"))
			if err != nil {
				return err
			}
			for range min(perTx, writes-done) {
				if err := b.Put(fmt.Appendf(nil, "%016x", rng.Uint64()), make([]byte, valueSize)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	return float64(orders) / time.Since(start).Seconds()
}

// Percentile is the p-th percentile (0 < p < 100) of sorted, nearest rank.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(float64(len(sorted))*p/100+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// Orderer makes one order the way a benchmark measures it (through the domain, or over
// HTTP); Via builds one over an open Env, with the function that releases it.
type Orderer func(ctx context.Context) error

// Via is how a benchmark reaches the domain of an open Env.
type Via func(tb testing.TB, e *Env) (order Orderer, release func())

// Throughput runs total orders from clients concurrent callers and returns orders/s.
func Throughput(tb testing.TB, clients, total int, order Orderer) float64 {
	ctx := context.Background()
	start := time.Now()
	Parallel(tb, clients, total, func(int) error { return order(ctx) })
	return float64(total) / time.Since(start).Seconds()
}

// Paced issues n orders at rate per second, open loop (each starts at its scheduled
// time whatever the others do, so that slow commits show as latency rather than as a
// lower rate), and returns their latencies, sorted.
func Paced(tb testing.TB, rate, n int, order Orderer) []time.Duration {
	ctx := context.Background()
	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
	var failed atomic.Int64
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	for i := range n {
		time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.Now()
			if err := order(ctx); err != nil && failed.Add(1) == 1 {
				tb.Error(err)
			}
			lat[i] = time.Since(t)
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		tb.Fatalf("paced: %d of %d orders failed", failed.Load(), n)
	}
	slices.Sort(lat)
	return lat
}

// Figure is one measured round of orders.
type Figure struct {
	Rate float64 // orders/s
	// Pages is bbolt pages written per order; Group the orders per commit.
	Pages, Group float64
}

// Rounds opens each fleet durable once, as a cloud opens its store, and measures them
// in alternating rounds of perRound orders from clients callers via via, so that a
// neighbour's load on the machine falls on all alike; it closes them and returns each
// fleet's median round. A store's first round after opening pays for its cold pages
// (and bbolt's free list, rebuilt at open): the median is the steady state.
func Rounds(tb testing.TB, fleets []*Fleet, via Via, clients, rounds, perRound int) []Figure {
	envs, orders := make([]*Env, len(fleets)), make([]Orderer, len(fleets))
	for i, f := range fleets {
		envs[i] = f.Open(tb, false)
		var release func()
		orders[i], release = via(tb, envs[i])
		defer f.Done(tb, envs[i])
		defer release()
	}
	figs := make([][]Figure, len(fleets))
	for range rounds {
		for i, e := range envs {
			figs[i] = append(figs[i], measure(tb, e, orders[i], clients, perRound))
		}
	}
	out := make([]Figure, len(fleets))
	for i := range figs {
		out[i] = Median(figs[i])
	}
	return out
}

// measure runs total orders from clients callers on e.
func measure(tb testing.TB, e *Env, order Orderer, clients, total int) Figure {
	before, st := e.DB.Bolt().Stats(), e.DB.Stats()
	updates, commits := st.Updates.Load(), st.Commits.Load()
	rate := Throughput(tb, clients, total, order)
	after := e.DB.Bolt().Stats()
	d := after.Sub(&before)
	return Figure{rate, float64(d.TxStats.GetWrite()) / float64(total),
		float64(st.Updates.Load()-updates) / float64(max(1, st.Commits.Load()-commits))}
}

// Median is the figure of median rate.
func Median(fs []Figure) Figure {
	fs = slices.Clone(fs)
	slices.SortFunc(fs, func(a, b Figure) int { return cmp.Compare(a.Rate, b.Rate) })
	return fs[len(fs)/2]
}

// LargeStored is how many orders the large fleet of the benchmarks stores:
// LARDER_BENCH_STORED, else 100,000.
func LargeStored(tb testing.TB) int {
	v := os.Getenv("LARDER_BENCH_STORED")
	if v == "" {
		return 100_000
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1000 {
		tb.Fatalf("LARDER_BENCH_STORED=%q: want a number of orders, at least 1000", v)
	}
	return n
}
