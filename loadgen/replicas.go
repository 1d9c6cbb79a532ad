package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// The replicated benchmark (RunHA): Replicas larder-cloud processes over one PostgreSQL
// database and a private Mosquitto, behind a round-robin load balancer on loopback,
// driven as Run drives one cloud. Its figures, each with its same-run baseline and
// target:
//
//   - throughput: orders created per second over HTTP with Concurrency requests in
//     flight, next to the raw commit rate of PostgreSQL for a one-row transaction of an
//     order's size at the same concurrency (PGBaseline); target ratio ≥ MinRatio.
//   - paced: the create's p99 with orders (each reserved, loaded and picked up) offered
//     at PacedRate; target p99 < MaxP99. Baseline: GET /healthz through the balancer.
//   - takeover: the replica holding the most site leases is SIGKILLed; the time until a
//     remote open at one of its sites is SUCCEEDED (the command went out from the site's
//     new owner and the edge's acks were applied), then one order is walked at each of
//     its sites; target < MaxTakeover. Baseline: the same remote open before the kill.

// HAConfig is what RunHA adds to a Config. Start from DefaultHAConfig.
// replicaConns is the size of a larder-cloud replica's connection pool (cloud/pg's
// DefaultMaxConns), which bounds the transactions the replicas have in flight.
const replicaConns = 16

type HAConfig struct {
	// Replicas is how many larder-cloud processes share Store.
	Replicas int
	// Store is the postgres:// URL of the database the replicas share (given to them by
	// environment, LARDER_CLOUD_STORE, so that a password never shows in ps).
	Store string
	// LeaseTTL is the replicas' lease time (LARDER_CLOUD_LEASE_TTL); zero keeps theirs.
	LeaseTTL time.Duration
	// SaturateFor bounds the throughput measurement and its baseline in time; each is
	// also bounded in count (8 orders per site, 200,000 commits).
	SaturateFor time.Duration
	// PacedRate is the offered rate of the paced measurement (it replaces Config.Rate).
	PacedRate float64
	// notifyKey is the replicas' shared notify key (RunHA draws it).
	notifyKey string
	// Targets.
	MinRatio    float64
	MaxP99      time.Duration
	MaxTakeover time.Duration
}

// DefaultHAConfig is the benchmark: 2 replicas, 500 orders/s paced, ratio ≥
// 0.5, p99 < 50 ms, takeover < 15 s.
func DefaultHAConfig() HAConfig {
	return HAConfig{Replicas: 2, SaturateFor: 5 * time.Second, PacedRate: 500, MinRatio: 0.5,
		MaxP99: 50 * time.Millisecond, MaxTakeover: 15 * time.Second}
}

// Validate reports the first unusable setting of ha for a run of cfg.
func (ha HAConfig) Validate(cfg Config) error {
	u, err := url.Parse(ha.Store)
	switch {
	case ha.Replicas < 2 || ha.Replicas > 16:
		return errors.New("loadgen: replicas must be 2..16")
	case err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql"):
		return errors.New("loadgen: -store must be a postgres:// URL")
	case cfg.CloudBin == "":
		return errors.New("loadgen: -replicas needs -start-cloud")
	case cfg.Mosquitto == "":
		return errors.New("loadgen: -replicas needs -mosquitto (replicas over PostgreSQL need an external broker)")
	case ha.SaturateFor <= 0 || ha.PacedRate <= 0 || ha.MaxP99 <= 0 || ha.MaxTakeover <= 0 || ha.MinRatio < 0 || ha.LeaseTTL < 0:
		return errors.New("loadgen: the HA durations, rate and targets must be positive")
	}
	if !cfg.AllowRemote {
		host := u.Hostname()
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return fmt.Errorf("loadgen: store host %s is not a loopback address (-allow-remote permits it)", host)
		}
	}
	return nil
}

// HAFigures are RunHA's figures; a missed target or a failed measurement is also in
// the Summary's Failures.
type HAFigures struct {
	Replicas   int           `json:"replicas"`
	PG         *PGBaseline   `json:"pg_baseline,omitempty"`
	Throughput *HAThroughput `json:"throughput,omitempty"`
	Paced      *HAPaced      `json:"paced,omitempty"`
	Takeover   *HATakeover   `json:"takeover,omitempty"`
}

// HAThroughput is orders created per second over HTTP, unpaced, at Concurrency.
type HAThroughput struct {
	Concurrency int      `json:"concurrency"`
	Created     int      `json:"created"`
	PerSecond   float64  `json:"per_second"`
	Latency     *Latency `json:"latency"`
	Ratio       float64  `json:"ratio"` // PerSecond / PG.PerSecond
	Target      float64  `json:"target_ratio"`
}

// HAPaced is the create's latency with orders offered at a steady rate.
type HAPaced struct {
	Offered  float64  `json:"offered_per_second"`
	Created  int      `json:"created"`
	Latency  *Latency `json:"latency"`
	TargetMS float64  `json:"target_p99_ms"`
}

// HATakeover is the time from the SIGKILL of a replica until one of its sites is served.
type HATakeover struct {
	Killed        string  `json:"killed"`
	Sites         int     `json:"sites"` // sites whose lease it held
	Seconds       float64 `json:"seconds"`
	BeforeSeconds float64 `json:"before_seconds"` // the same remote open before the kill
	Target        float64 `json:"target_seconds"`
	Orders        int     `json:"orders"` // walked at its sites afterwards
	Error         string  `json:"error,omitempty"`
}

// RunHA is Run over ha.Replicas replicas (see the figures above). An error means the
// run could not be made; losses and missed targets are in the summary's Failures.
func RunHA(ctx context.Context, cfg Config, ha HAConfig, log *slog.Logger) (*Summary, *HAFigures, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	if err := ha.Validate(cfg); err != nil {
		return nil, nil, err
	}
	mq, err := startMosquitto(cfg.Mosquitto, cfg.MosquittoConf)
	if err != nil {
		return nil, nil, err
	}
	defer mq.stop()
	s := &Summary{Edges: cfg.Edges, Seed: cfg.Seed, Broker: "mosquitto " + cfg.MosquittoConf}
	fig := &HAFigures{Replicas: ha.Replicas}
	admin := secret("lk_")
	ha.notifyKey = (secret("") + secret(""))[:64] // 32 bytes in hex
	var reps []*replica
	defer func() {
		var lines int64
		for _, c := range reps {
			if err := c.stop(); err != nil && !c.killed {
				s.Failures = append(s.Failures, fmt.Sprintf("replica %s stop: %v; its last lines:\n%s", c.id, err, lastLines(c.tail(), 5)))
			}
			lines += c.logLines()
		}
		s.CloudLogLines = &lines
	}()
	// One after the other: the first applies the store's migrations.
	for i := range ha.Replicas {
		c, err := startReplica(ctx, cfg.CloudBin, fmt.Sprintf("load-r%d", i+1), ha, mq, admin, cfg.Timeout)
		if err != nil {
			return nil, nil, err
		}
		log.Info("loadgen: replica started", "replica", c.id, "pid", c.pid(), "api", c.api, "metrics", c.metrics)
		reps = append(reps, c)
	}
	lb, err := newBalancer(reps, cfg.Concurrency)
	if err != nil {
		return nil, nil, err
	}
	defer lb.close()
	cfg.CloudURL, cfg.AdminKey, cfg.MetricsURL, cfg.CloudPID = lb.url, admin, reps[0].metrics, reps[0].pid()
	cfg.RawUser, cfg.RawPassword, cfg.Broker, cfg.Rate = mosquittoCloudUser, mq.cloudPass, mq.url, ha.PacedRate
	r := &runner{cfg: cfg, log: log, s: s, mq: mq}
	return s, fig, r.runHA(ctx, ha, fig, reps, lb)
}

func (r *runner) runHA(ctx context.Context, ha HAConfig, fig *HAFigures, reps []*replica, lb *balancer) error {
	cfg := r.cfg
	provs, err := r.setUp(ctx)
	if err != nil {
		return err
	}
	if err := r.mq.addUsers(provs); err != nil {
		return err
	}
	start := time.Now()
	if err := r.connect(ctx, provs); err != nil {
		return err
	}
	defer r.closeEdges()
	r.s.ConnectSeconds = time.Since(start).Seconds()

	// Throughput, raw commits first, over as many connections as the replicas' pools
	// hold together (fewer when fewer orders are in flight).
	if fig.PG, err = measurePG(ctx, ha.Store, min(cfg.Concurrency, ha.Replicas*replicaConns), 200000, ha.SaturateFor); err != nil {
		return err
	}
	if fig.PG.Error != "" {
		r.s.Failures = append(r.s.Failures, "PostgreSQL baseline: "+fig.PG.Error)
	}
	fig.Throughput = r.saturate(ctx, ha.SaturateFor)
	fig.Throughput.Target = ha.MinRatio
	if fig.PG.PerSecond > 0 {
		fig.Throughput.Ratio = fig.Throughput.PerSecond / fig.PG.PerSecond
	}
	if fig.Throughput.Ratio < ha.MinRatio {
		r.s.Failures = append(r.s.Failures, fmt.Sprintf("throughput: %.0f orders/s is %.2f of PostgreSQL's %.0f commits/s, want ≥ %.2f",
			fig.Throughput.PerSecond, fig.Throughput.Ratio, fig.PG.PerSecond, ha.MinRatio))
	}

	// Paced.
	r.s.HTTPFloor = r.httpFloor(ctx)
	r.drive(ctx)
	if o := r.s.Orders; o != nil {
		fig.Paced = &HAPaced{Offered: o.Offered, Created: o.Created, Latency: o.Latency, TargetMS: float64(ha.MaxP99) / float64(time.Millisecond)}
		if o.Latency == nil || o.Latency.P99 >= fig.Paced.TargetMS {
			r.s.Failures = append(r.s.Failures, fmt.Sprintf("paced: create %s at %.0f/s offered, want p99 < %.0f ms", o.Latency, o.Offered, fig.Paced.TargetMS))
		}
	}

	// Takeover.
	fig.Takeover = r.takeover(ctx, ha, reps, lb)
	if t := fig.Takeover; t.Error != "" {
		r.s.Failures = append(r.s.Failures, "takeover: "+t.Error)
	} else if t.Seconds >= t.Target {
		r.s.Failures = append(r.s.Failures, fmt.Sprintf("takeover: %.1f s after the SIGKILL of %s, want < %.0f s", t.Seconds, t.Killed, t.Target))
	}
	r.verify(ctx)
	r.s.fill(&r.counters)
	return nil
}

// saturate creates orders over HTTP, Concurrency at a time, for d or 8 per site
// (round-robin over the sites, zones in turn, within every site's capacity), and returns
// the rate. It cancels them afterwards (not timed), so that the paced run finds the
// compartments free.
func (r *runner) saturate(ctx context.Context, d time.Duration) *HAThroughput {
	f := &HAThroughput{Concurrency: r.cfg.Concurrency}
	n := len(r.edges) * min(8, r.cfg.Compartments/2)
	zones := []string{"chilled", "frozen", "ambient"}
	dctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		mu   sync.Mutex
		lats []time.Duration
		ids  []string
		errs []string
	)
	now := time.Now().UTC()
	start := time.Now()
	_ = r.parallel(dctx, n, func(ctx context.Context, i int) error {
		e := r.edges[i%len(r.edges)]
		ext := fmt.Sprintf("load-%s-sat-%d", r.tag, i)
		spec := orderSpec{ExternalID: ext, Site: e.site, Recipient: map[string]any{"phone": fmt.Sprintf("+86139%08d", i)},
			Parcels: []parcel{{Size: "S", Zone: zones[(i/len(r.edges))%3]}}, Window: window{Start: now, End: now.Add(2 * time.Hour)},
			CodeDelivery: "platform"}
		t := time.Now()
		rc, err := r.api.createOrder(ctx, r.platform, ext, spec)
		lat := time.Since(t)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case dctx.Err() != nil: // the time was up during the request: not counted
		case err != nil:
			errs = append(errs, err.Error())
		default:
			lats, ids = append(lats, lat), append(ids, rc.Order.ID)
		}
		return nil
	})
	el := time.Since(start).Seconds()
	f.Created, f.Latency = len(lats), latencyOf(lats)
	f.PerSecond = float64(len(lats)) / el
	for _, e := range first(errs, 5) {
		r.s.Failures = append(r.s.Failures, "throughput create: "+e)
	}
	_ = r.parallel(ctx, len(ids), func(ctx context.Context, i int) error {
		if err := r.api.do(ctx, r.platform, "POST", "/v1/orders/"+ids[i]+"/cancel", nil, map[string]any{}, nil, http.StatusOK); err != nil {
			mu.Lock()
			errs = append(errs, err.Error())
			mu.Unlock()
		}
		return nil
	})
	if len(errs) > 0 {
		r.s.Failures = append(r.s.Failures, fmt.Sprintf("throughput: %d creates or cancels failed", len(errs)))
	}
	return f
}

// takeover SIGKILLs the replica holding the most site leases and times a remote open at
// one of its sites until SUCCEEDED; then it walks one order at each of its sites.
func (r *runner) takeover(ctx context.Context, ha HAConfig, reps []*replica, lb *balancer) *HATakeover {
	f := &HATakeover{Target: ha.MaxTakeover.Seconds()}
	owners, err := LeaseOwners(ctx, ha.Store)
	if err != nil {
		f.Error = err.Error()
		return f
	}
	victim, sites := -1, []string(nil)
	for i, c := range reps {
		var mine []string
		for site, owner := range owners {
			if owner == c.id {
				mine = append(mine, site)
			}
		}
		if len(mine) > len(sites) {
			victim, sites = i, mine
		}
	}
	if victim < 0 {
		f.Error = fmt.Sprintf("no replica holds a site lease (larder_leases names %d sites)", len(owners))
		return f
	}
	sort.Strings(sites)
	f.Killed, f.Sites = reps[victim].id, len(sites)
	bySite := map[string]*edge{}
	for _, e := range r.edges {
		bySite[e.site] = e
	}
	probe := bySite[sites[r.rng.IntN(len(sites))]]
	if probe == nil {
		f.Error = "the killed replica's sites are not this run's"
		return f
	}
	door := 1 + r.rng.IntN(r.cfg.Compartments)
	before, err := r.remoteOpen(ctx, probe, door)
	if err != nil {
		f.Error = "remote open before the kill: " + err.Error()
		return f
	}
	f.BeforeSeconds = before.Seconds()
	lb.markDead(victim)
	killedAt := time.Now()
	reps[victim].kill()
	timeout := r.cfg.Timeout
	r.cfg.Timeout = 2 * ha.MaxTakeover // the probe waits past the target, to measure a miss
	_, err = r.remoteOpen(ctx, probe, door)
	r.cfg.Timeout = timeout
	if err != nil {
		f.Error = "remote open after the kill: " + err.Error()
		return f
	}
	f.Seconds = time.Since(killedAt).Seconds()
	var mu sync.Mutex
	_ = r.parallel(ctx, len(sites), func(ctx context.Context, i int) error {
		fl := &flow{site: bySite[sites[i]]}
		if fl.site == nil {
			return nil
		}
		_, err := r.walkOrder(ctx, fl, 1_000_000+i)
		fl.err = err
		mu.Lock()
		r.flows = append(r.flows, fl)
		f.Orders++
		mu.Unlock()
		return nil
	})
	return f
}

// LeaseOwners reads larder_leases in the database at store, as an operator would: site
// id → the replica holding its lease now.
func LeaseOwners(ctx context.Context, store string) (map[string]string, error) {
	conn, err := pgx.Connect(ctx, store)
	if err != nil {
		return nil, fmt.Errorf("loadgen: read leases: %w", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT name, owner FROM larder_leases WHERE name LIKE 'site/%' AND expires_at > now()`)
	if err != nil {
		return nil, fmt.Errorf("loadgen: read leases: %w", err)
	}
	out := map[string]string{}
	for rows.Next() {
		var name, owner string
		if err := rows.Scan(&name, &owner); err != nil {
			return nil, err
		}
		out[strings.TrimPrefix(name, "site/")] = owner
	}
	return out, rows.Err()
}

// replica is one larder-cloud of the replicated run.
type replica struct {
	*cloudProc
	id     string
	killed bool
}

// startReplica starts one replica of bin over ha.Store and mq, with the run's admin
// key, and waits for /healthz. Secrets and the store URL go by environment.
func startReplica(ctx context.Context, bin, id string, ha HAConfig, mq *mosquitto, admin string, timeout time.Duration) (*replica, error) {
	dir, err := os.MkdirTemp("", "larder-load-"+id+"-")
	if err != nil {
		return nil, err
	}
	c := &cloudProc{dir: dir, admin: admin, svcUser: mosquittoCloudUser, svcPass: mq.cloudPass, broker: mq.url,
		done: make(chan error, 1), out: &bytes.Buffer{}}
	httpAddr, err1 := freeAddr()
	metricsAddr, err2 := freeAddr()
	if err := firstErr(err1, err2); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	args := []string{"-data", dir, "-http", httpAddr, "-metrics", metricsAddr, "-log-level", "warn", "-mqtt", mq.url, "-mqtt-user", mosquittoCloudUser}
	env := []string{"LARDER_CLOUD_ADMIN_KEY=" + admin, "LARDER_CLOUD_MQTT_PASSWORD=" + mq.cloudPass,
		"LARDER_CLOUD_STORE=" + ha.Store, "LARDER_CLOUD_REPLICA_ID=" + id, "LARDER_CLOUD_NOTIFY_KEY=" + ha.notifyKey}
	if ha.LeaseTTL > 0 {
		env = append(env, "LARDER_CLOUD_LEASE_TTL="+ha.LeaseTTL.String())
	}
	c.api, c.metrics = "http://"+httpAddr, "http://"+metricsAddr
	if err := c.launch(ctx, bin, args, env, timeout); err != nil {
		return nil, fmt.Errorf("replica %s: %w", id, err)
	}
	return &replica{cloudProc: c, id: id}, nil
}

// kill ends the replica with SIGKILL, like a power cut of its machine.
func (c *replica) kill() {
	c.killed = true
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	err := <-c.done
	c.done <- err // stop reads it again
}

// balancer is a round-robin HTTP load balancer on loopback in front of the replicas, as
// an operator's would be: a request goes to the next live replica; one that cannot be
// reached is skipped, and a request that may be repeated safely (a GET, or a POST with
// an Idempotency-Key) is retried on the next when its replica fails mid-answer. A
// replica marked dead (a failed health check) gets nothing.
type balancer struct {
	url      string
	srv      *http.Server
	backends []string
	dead     []atomic.Bool
	next     atomic.Uint64
	client   *http.Client
}

func newBalancer(reps []*replica, conns int) (*balancer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = conns*len(reps), conns
	b := &balancer{url: "http://" + ln.Addr().String(), dead: make([]atomic.Bool, len(reps)),
		client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
	for _, c := range reps {
		b.backends = append(b.backends, c.api)
	}
	b.srv = &http.Server{Handler: b, ReadHeaderTimeout: 10 * time.Second}
	go b.srv.Serve(ln)
	return b, nil
}

func (b *balancer) markDead(i int) { b.dead[i].Store(true) }

func (b *balancer) close() { b.srv.Close() }

func (b *balancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "balancer: read request: "+err.Error(), http.StatusBadRequest)
		return
	}
	repeatable := r.Method == http.MethodGet || r.Header.Get("Idempotency-Key") != ""
	var last error
	// Every backend once at most, from the next in turn: a shared counter read on each
	// try would let concurrent requests walk one request onto a dead replica again.
	start := b.next.Add(1)
	for k := range uint64(len(b.backends)) {
		i := int((start + k) % uint64(len(b.backends)))
		if b.dead[i].Load() {
			continue
		}
		req, err := http.NewRequestWithContext(r.Context(), r.Method, b.backends[i]+r.URL.RequestURI(), bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		req.Header = r.Header.Clone()
		res, err := b.client.Do(req)
		if err != nil {
			last = err
			var op *net.OpError
			if repeatable || (errors.As(err, &op) && op.Op == "dial") {
				continue
			}
			break
		}
		for k, v := range res.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(res.StatusCode)
		io.Copy(w, res.Body)
		res.Body.Close()
		return
	}
	http.Error(w, fmt.Sprintf("balancer: no replica answered: %v", last), http.StatusBadGateway)
}

// Print writes the HA figures, each with its baseline.
func (f *HAFigures) Print(w io.Writer) {
	fmt.Fprintf(w, "replicas     %d over one PostgreSQL, round-robin behind a loopback balancer\n", f.Replicas)
	if t, p := f.Throughput, f.PG; t != nil && p != nil {
		fmt.Fprintf(w, "throughput   %.0f orders/s created at %d in flight, %s | PostgreSQL one-row commits %.0f/s, %s; ratio %.2f (target ≥ %.2f)\n",
			t.PerSecond, t.Concurrency, t.Latency, p.PerSecond, p.Latency, t.Ratio, t.Target)
	}
	if p := f.Paced; p != nil {
		fmt.Fprintf(w, "paced        %d orders at %.0f/s offered: create %s (target p99 < %.0f ms)\n", p.Created, p.Offered, p.Latency, p.TargetMS)
	}
	if t := f.Takeover; t != nil {
		if t.Error != "" {
			fmt.Fprintf(w, "takeover     FAILED: %s\n", t.Error)
		} else {
			fmt.Fprintf(w, "takeover     %.1f s from the SIGKILL of %s (%d sites) to a remote open SUCCEEDED, then %d orders walked | %.2f s before the kill (target < %.0f s)\n",
				t.Seconds, t.Killed, t.Sites, t.Orders, t.BeforeSeconds, t.Target)
		}
	}
}

// lastLines is the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// Fleet is larder-load's simulated edges driven against replicas the caller runs (an
// end-to-end test's, over a broker it manages), through the run's round-robin balancer:
// StartFleet provisions cfg.Edges sites and connects one edge per site to cfg.Broker,
// Walk walks orders at them (each reserved, its digests checked, loaded and picked up,
// as in Run), and Check verifies what Run verifies. The caller kills replicas and
// broker nodes as it likes meanwhile: a create cut off by a dead replica is retried on
// the next (it carries its Idempotency-Key), and an edge that loses its broker
// reconnects to the next URL of cfg.Broker.
type Fleet struct {
	r    *runner
	lb   *balancer
	mu   sync.Mutex // guards r.flows while Walk runs
	done atomic.Int64
}

// Login is a provisioned site's broker login, for the broker's operator to admit.
type Login struct {
	Site, Username, Password string
}

// StartFleet provisions cfg.Edges sites through the replicas at the URLs (with
// cfg.AdminKey), hands their broker logins to admit (e.g. regenerating a NATS accounts
// file; nil: the broker admits them already), and connects the edges, each waiting for
// its first desired snapshot. cfg.CloudBin and cfg.Mosquitto must be empty: the caller
// runs the clouds and the broker. Close ends the fleet.
func StartFleet(ctx context.Context, cfg Config, replicas []string, admit func([]Login) error, log *slog.Logger) (*Fleet, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.CloudBin != "" || cfg.Mosquitto != "" {
		return nil, errors.New("loadgen: a fleet drives clouds the caller runs: no -start-cloud, no -mosquitto")
	}
	if len(replicas) == 0 {
		return nil, errors.New("loadgen: a fleet needs the replicas' URLs")
	}
	reps := make([]*replica, len(replicas))
	for i, u := range replicas {
		if !cfg.AllowRemote {
			if err := loopback(u); err != nil {
				return nil, err
			}
		}
		reps[i] = &replica{cloudProc: &cloudProc{api: strings.TrimSuffix(u, "/")}}
	}
	lb, err := newBalancer(reps, cfg.Concurrency)
	if err != nil {
		return nil, err
	}
	cfg.CloudURL = lb.url
	if err := cfg.Validate(); err != nil {
		lb.close()
		return nil, err
	}
	f := &Fleet{lb: lb, r: &runner{cfg: cfg, log: log, s: &Summary{Edges: cfg.Edges, Seed: cfg.Seed, Broker: cfg.Broker}}}
	provs, err := f.r.setUp(ctx)
	if err == nil && admit != nil {
		logins := make([]Login, len(provs))
		for i, p := range provs {
			logins[i] = Login{Site: p.Site, Username: p.MQTTUsername, Password: p.MQTTPassword}
		}
		if err = admit(logins); err != nil {
			err = fmt.Errorf("loadgen: admitting the sites' logins: %w", err)
		}
	}
	if err == nil {
		start := time.Now()
		err = f.r.connect(ctx, provs)
		f.r.s.ConnectSeconds = time.Since(start).Seconds()
	}
	if err != nil {
		lb.close()
		return nil, err
	}
	return f, nil
}

// Walk walks n orders, started at cfg.Rate per second (0: as fast as cfg.Concurrency
// allows), at the sites in turn, and returns when every walk has ended. A walk that
// fails is recorded for Check, not returned: an error means ctx ended.
func (f *Fleet) Walk(ctx context.Context, n int) error {
	r := f.r
	start := time.Now()
	_ = r.parallel(ctx, n, func(ctx context.Context, i int) error {
		if rate := r.cfg.Rate; rate > 0 {
			select {
			case <-time.After(time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second))))):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		// Consecutive walks go to different sites: a site holds at most
		// ⌈Concurrency/Edges⌉ of them at once, within its compartments of each zone
		// as long as Concurrency ≤ Edges·Compartments/4.
		fl := &flow{site: r.edges[i%len(r.edges)]}
		_, fl.err = r.walkOrder(ctx, fl, 2_000_000+i)
		f.mu.Lock()
		r.flows = append(r.flows, fl)
		f.mu.Unlock()
		f.done.Add(1)
		return nil
	})
	return ctx.Err()
}

// Done is how many walks have ended so far (picked up or failed).
func (f *Fleet) Done() int64 { return f.done.Load() }

// Disconnected lists the edges without a broker connection now (a lost one being
// redialled, or given up).
func (f *Fleet) Disconnected() []string {
	var out []string
	for _, e := range f.r.edges {
		if e.current() == nil {
			out = append(out, e.site)
		}
	}
	return out
}

// Unacked lists the edges with events the cloud has not acknowledged, each with how
// many: the sites a stalled walk waits on.
func (f *Fleet) Unacked() map[string]int {
	out := map[string]int{}
	for _, e := range f.r.edges {
		if n := e.unacked(); n > 0 {
			out[e.site] = n
		}
	}
	return out
}

// Check verifies the walks as Run does (every walked order picked_up over REST, every
// event acknowledged, every digest matched) and returns the summary, with the edges'
// protocol counts. A lost edge connection is listed in Failures like every other; a
// caller that killed a broker node expects some.
func (f *Fleet) Check(ctx context.Context) *Summary {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.r.verify(ctx)
	f.r.s.fill(&f.r.counters)
	return f.r.s
}

// Close disconnects the edges and stops the balancer.
func (f *Fleet) Close() {
	f.r.closeEdges()
	f.lb.close()
}

// Platform is the fleet's platform API key and the platform id it speaks for (its
// orders' webhooks go to that platform's endpoint).
func (f *Fleet) Platform() (key, id string) { return f.r.platform, "load-" + f.r.tag }

// Sites are the fleet's site ids, one edge each.
func (f *Fleet) Sites() []string {
	out := make([]string, len(f.r.edges))
	for i, e := range f.r.edges {
		out[i] = e.site
	}
	return out
}
