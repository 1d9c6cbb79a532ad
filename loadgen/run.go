package loadgen

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/larder-lockers/larder/protocol"
)

// Run provisions the sites, connects the edges, measures and drives the load, checks
// that nothing was lost and returns the summary. An error means the run could not be
// made (a cloud that does not start, provisioning refused); losses are in the summary
// (Summary.Failures), not in the error. log nil discards.
func Run(ctx context.Context, cfg Config, log *slog.Logger) (*Summary, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Summary{Edges: cfg.Edges, Seed: cfg.Seed, Broker: "embedded"}
	if cfg.CloudBin != "" {
		var mq *mosquitto
		ext, user, pass := "", cfg.RawUser, ""
		if cfg.Mosquitto != "" {
			var err error
			if mq, err = startMosquitto(cfg.Mosquitto, cfg.MosquittoConf); err != nil {
				return nil, err
			}
			defer mq.stop()
			ext, user, pass = mq.url, mosquittoCloudUser, mq.cloudPass
			s.Broker = "mosquitto " + cfg.MosquittoConf
		}
		c, err := startCloud(ctx, cfg.CloudBin, ext, user, pass, cfg.Timeout)
		if err != nil {
			return nil, err
		}
		defer func() {
			if err := c.stop(); err != nil {
				s.Failures = append(s.Failures, fmt.Sprintf("cloud stop: %v; its last lines:\n%s", err, lastLines(c.tail(), 5)))
			}
			n := c.logLines()
			s.CloudLogLines = &n
		}()
		cfg.CloudURL, cfg.AdminKey, cfg.MetricsURL, cfg.CloudPID = c.api, c.admin, c.metrics, c.pid()
		log.Info("loadgen: cloud started", "pid", c.pid(), "api", c.api, "metrics", c.metrics)
		cfg.RawUser, cfg.RawPassword = c.svcUser, c.svcPass
		if cfg.Broker == "" {
			cfg.Broker = c.broker
		}
		r := &runner{cfg: cfg, log: log, s: s, mq: mq, cloud: c}
		return s, r.run(ctx)
	}
	r := &runner{cfg: cfg, log: log, s: s}
	return s, r.run(ctx)
}

type runner struct {
	cfg      Config
	log      *slog.Logger
	s        *Summary
	api      *api
	platform string
	ops      string
	edges    []*edge
	opts     *edgeOptions
	counters edgeCounters
	mq       *mosquitto
	cloud    *cloudProc // the cloud the run started, if it did
	rng      *rand.Rand
	tag      string
	flows    []*flow

	digestMismatches atomic.Int64
}

func (r *runner) run(ctx context.Context) error {
	cfg := r.cfg
	provs, err := r.setUp(ctx)
	if err != nil {
		return err
	}
	if r.mq != nil {
		if err := r.mq.addUsers(provs); err != nil {
			return err
		}
	}
	rssBefore, rssErr := residentBytes(ctx, cfg.CloudPID, cfg.MetricsURL)
	start := time.Now()
	if err := r.connect(ctx, provs); err != nil {
		return err
	}
	defer r.closeEdges()
	r.s.ConnectSeconds = time.Since(start).Seconds()
	time.Sleep(time.Second) // let the cloud settle its per-edge state before reading memory
	if rssAfter, err := residentBytes(ctx, cfg.CloudPID, cfg.MetricsURL); err == nil && rssErr == nil {
		r.s.Memory = &MemoryFigure{BeforeBytes: rssBefore, AfterBytes: rssAfter, PerEdgeBytes: (rssAfter - rssBefore) / int64(cfg.Edges)}
	}
	if cfg.IngestEvents > 0 {
		r.s.Ingest = r.ingest(ctx)
	}
	r.s.HTTPFloor = r.httpFloor(ctx)
	r.drive(ctx)
	if cfg.Storm {
		r.s.Storm = r.storm(ctx)
	}
	r.verify(ctx)
	r.s.fill(&r.counters)
	return nil
}

// provision creates and provisions the sites, cfg.Concurrency at a time.
// setUp seeds the run, creates its platform and ops keys and provisions its sites,
// timed in the summary.
func (r *runner) setUp(ctx context.Context) ([]provisioning, error) {
	cfg := r.cfg
	r.rng = rand.New(rand.NewPCG(cfg.Seed, 0x1a2de5))
	r.tag = fmt.Sprintf("%06x", r.rng.Uint32()&0xffffff)
	r.api = newAPI(cfg.CloudURL, cfg.Concurrency)
	var err error
	if r.platform, err = r.api.createKey(ctx, cfg.AdminKey, "platform", "load-"+r.tag); err != nil {
		return nil, fmt.Errorf("loadgen: platform key: %w", err)
	}
	if r.ops, err = r.api.createKey(ctx, cfg.AdminKey, "ops", "load-"+r.tag); err != nil {
		return nil, fmt.Errorf("loadgen: ops key: %w", err)
	}
	start := time.Now()
	provs, err := r.provision(ctx)
	if err != nil {
		return nil, err
	}
	r.s.ProvisionSeconds = time.Since(start).Seconds()
	return provs, nil
}

func (r *runner) provision(ctx context.Context) ([]provisioning, error) {
	provs := make([]provisioning, r.cfg.Edges)
	err := r.parallel(ctx, r.cfg.Edges, func(ctx context.Context, i int) error {
		id := fmt.Sprintf("load-%s-%05d", r.tag, i)
		if err := r.api.createSite(ctx, r.cfg.AdminKey, id); err != nil {
			return err
		}
		p, err := r.api.provision(ctx, r.cfg.AdminKey, id)
		provs[i] = p
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("loadgen: provisioning: %w", err)
	}
	return provs, nil
}

// connect connects every edge and waits for each one's first desired snapshot.
func (r *runner) connect(ctx context.Context, provs []provisioning) error {
	o := &edgeOptions{broker: r.cfg.Broker, compartments: compartments(r.cfg.Compartments), telemetry: r.cfg.TelemetryInterval,
		window: r.cfg.OutboxWindow, ackTimeout: r.cfg.AckTimeout, gapGrace: r.cfg.GapGrace, opTimeout: r.cfg.Timeout,
		backoffMin: r.cfg.BackoffMin, backoffMax: r.cfg.BackoffMax, counters: &r.counters, log: r.log}
	r.opts = o
	r.edges = make([]*edge, len(provs))
	var mu sync.Mutex
	runCtx := ctx // the edges' loops live as long as the run, not as the parallel connect
	err := r.parallel(ctx, len(provs), func(ctx context.Context, i int) error {
		key, err := hex.DecodeString(provs[i].SiteKey)
		if err != nil || len(key) < 32 {
			return fmt.Errorf("site %s: site key is not 64 hex characters", provs[i].Site)
		}
		e := newEdge(provs[i], key, o)
		if o.broker == "" {
			return fmt.Errorf("site %s: provisioning named no broker and -broker is empty", provs[i].Site)
		}
		if err := e.connect(runCtx); err != nil {
			return err
		}
		mu.Lock()
		r.edges[i] = e
		mu.Unlock()
		wctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
		defer cancel()
		select {
		case <-e.ready():
			return nil
		case <-wctx.Done():
			return fmt.Errorf("edge %s: no desired snapshot after its birth within %s", e.site, r.cfg.Timeout)
		}
	})
	if err != nil {
		r.closeEdges()
		return fmt.Errorf("loadgen: connecting edges: %w", err)
	}
	return nil
}

func (r *runner) closeEdges() {
	edges := r.edges
	r.edges = nil
	_ = r.parallel(context.Background(), len(edges), func(_ context.Context, i int) error {
		if edges[i] != nil {
			edges[i].close()
		}
		return nil
	})
}

// parallel runs f(0..n-1), cfg.Concurrency at a time, and returns the first error.
func (r *runner) parallel(ctx context.Context, n int, f func(context.Context, int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range min(n, r.cfg.Concurrency) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := f(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// storm restarts the broker with every edge connected: the private Mosquitto is killed
// (SIGKILL) and started again on its port, or, with the embedded broker, the cloud is
// stopped (SIGTERM) and started again on its data directory. While it is down each
// edge writes one door event to its outbox; an edge is healthy again when that event
// is acknowledged, which needs it and the cloud reconnected and subscribed. The edges
// come back with larder-edge's backoff; the wait ends at 1.5 × StormTarget.
func (r *runner) storm(ctx context.Context) *StormFigure {
	f := &StormFigure{Edges: len(r.edges), TargetSeconds: r.cfg.StormTarget.Seconds()}
	r.opts.storm.Store(true)
	defer r.opts.storm.Store(false)
	start := time.Now()
	var restart func() error
	if r.mq != nil {
		f.Broker = "mosquitto"
		r.mq.kill()
		restart = r.mq.start
	} else {
		f.Broker = "embedded"
		if err := r.cloud.halt(); err != nil {
			f.Error = err.Error()
		}
		restart = func() error { return r.cloud.relaunch(ctx, r.cfg.Timeout) }
	}
	seqs := make([]uint64, len(r.edges))
	for i, e := range r.edges {
		seq, err := e.enqueue(protocol.Event{Kind: protocol.EventDoorClosed, Credential: protocol.CredNone, Compartment: 1})
		if err != nil {
			f.Error = err.Error()
		}
		seqs[i] = seq
	}
	if f.Error == "" {
		if err := restart(); err != nil {
			f.Error = err.Error()
		}
	}
	f.DownSeconds = time.Since(start).Seconds()
	if f.Error != "" {
		r.s.Failures = append(r.s.Failures, "storm: "+f.Error)
		return f
	}
	wctx, cancel := context.WithDeadline(ctx, start.Add(r.cfg.StormTarget*3/2))
	defer cancel()
	var mu sync.Mutex
	var after []time.Duration
	var wg sync.WaitGroup
	for i, e := range r.edges {
		wg.Go(func() {
			if e.waitAcked(wctx, seqs[i]) == nil {
				mu.Lock()
				after = append(after, time.Since(start))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	f.Healthy, f.HealthyAfter, f.Disconnects = len(after), latencyOf(after), r.counters.stormLost.Load()
	switch {
	case f.Healthy < f.Edges:
		f.Error = fmt.Sprintf("%d of %d edges healthy again within %s", f.Healthy, f.Edges, r.cfg.StormTarget*3/2)
	case f.HealthyAfter.Max > float64(r.cfg.StormTarget/time.Millisecond):
		f.Error = fmt.Sprintf("the last edge healthy again %.1f s after the restart, target %s", f.HealthyAfter.Max/1000, r.cfg.StormTarget)
	}
	if f.Error != "" {
		r.s.Failures = append(r.s.Failures, "storm: "+f.Error)
	}
	return f
}

// ingest measures events acknowledged per second with IngestEdges edges publishing at
// once through their outbox windows, and the raw broker's pub→sub rate for as many
// publishers and messages in the same run, raw first.
func (r *runner) ingest(ctx context.Context) *IngestFigure {
	n := min(r.cfg.IngestEdges, len(r.edges))
	per := max(1, r.cfg.IngestEvents/n)
	f := &IngestFigure{Edges: n, Events: n * per}
	if r.cfg.RawPassword != "" {
		rate, lat, err := r.raw(ctx, n, per)
		if err != nil {
			f.RawError = err.Error()
			r.s.Failures = append(r.s.Failures, "raw baseline: "+err.Error())
		} else {
			f.RawPerSecond, r.s.RawLatency = rate, lat
		}
	}
	start := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for _, e := range r.edges[:n] {
		wg.Go(func() {
			var last uint64
			for i := range per {
				kind := protocol.EventDoorOpened
				if i%2 == 1 {
					kind = protocol.EventDoorClosed
				}
				seq, err := e.enqueue(protocol.Event{Kind: kind, Credential: protocol.CredNone, Compartment: 1 + i%r.cfg.Compartments})
				if err != nil {
					failed.Add(1)
					return
				}
				last = seq
			}
			wctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout+time.Duration(per)*10*time.Millisecond)
			defer cancel()
			if err := e.waitAcked(wctx, last); err != nil {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	f.PerSecond = float64(f.Events) / el
	if failed.Load() > 0 {
		f.Error = fmt.Sprintf("%d edges did not get every ingest event acknowledged", failed.Load())
		r.s.Failures = append(r.s.Failures, "ingest: "+f.Error)
	}
	if f.RawPerSecond > 0 {
		f.Ratio = f.PerSecond / f.RawPerSecond
	}
	return f
}

// raw is the baseline: n publishers (the cloud's service account, which alone may read
// what it publishes) each sending per QoS 1 messages of an event's size, at most
// OutboxWindow unacknowledged by the broker, to one subscriber; the rate counts until
// the last message arrives. A message that never arrives fails the baseline.
func (r *runner) raw(ctx context.Context, n, per int) (float64, *Latency, error) {
	topic := func(i int) string { return fmt.Sprintf("%s/load-raw-%s/raw-%d", protocol.Root, r.tag, i) }
	dial := func(id string) (paho.Client, error) {
		o := paho.NewClientOptions()
		for _, b := range brokerURLs(r.cfg.Broker) {
			o.AddBroker(b)
		}
		o.SetClientID(id).SetUsername(r.cfg.RawUser).SetPassword(r.cfg.RawPassword).
			SetOrderMatters(false).SetAutoReconnect(false).SetCleanSession(true).SetConnectTimeout(r.cfg.Timeout).
			SetMaxResumePubInFlight(r.cfg.OutboxWindow)
		c := paho.NewClient(o)
		if err := wait(c.Connect(), r.cfg.Timeout); err != nil {
			return nil, fmt.Errorf("raw %s: connect: %w", id, err)
		}
		return c, nil
	}
	total := int64(n * per)
	var got atomic.Int64
	all := make(chan struct{})
	var latMu sync.Mutex
	var lats []time.Duration
	sub, err := dial("larder-load-raw-sub-" + r.tag)
	if err != nil {
		return 0, nil, err
	}
	defer sub.Disconnect(50)
	filter := fmt.Sprintf("%s/load-raw-%s/+", protocol.Root, r.tag)
	err = wait(sub.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) {
		if len(m.Payload()) >= 8 {
			sent := time.Unix(0, int64(beUint64(m.Payload())))
			latMu.Lock()
			lats = append(lats, time.Since(sent))
			latMu.Unlock()
		}
		if got.Add(1) == total {
			close(all)
		}
	}), r.cfg.Timeout)
	if err != nil {
		return 0, nil, fmt.Errorf("raw subscribe: %w", err)
	}
	pubs := make([]paho.Client, n)
	for i := range pubs {
		if pubs[i], err = dial(fmt.Sprintf("larder-load-raw-pub-%s-%d", r.tag, i)); err != nil {
			return 0, nil, err
		}
		defer pubs[i].Disconnect(50)
	}
	payload := make([]byte, 200) // about an encoded event's size
	start := time.Now()
	var wg sync.WaitGroup
	for i, p := range pubs {
		wg.Go(func() {
			toks := make(chan paho.Token, r.cfg.OutboxWindow)
			done := make(chan struct{})
			go func() {
				for t := range toks {
					_ = wait(t, r.cfg.Timeout)
				}
				close(done)
			}()
			for range per {
				b := slices.Clone(payload)
				putUint64(b, uint64(time.Now().UnixNano()))
				toks <- p.Publish(topic(i), 1, false, b)
			}
			close(toks)
			<-done
		})
	}
	wg.Wait()
	select {
	case <-all:
	case <-time.After(r.cfg.Timeout):
		return 0, nil, fmt.Errorf("%d of %d messages arrived (the broker lost QoS 1 messages)", got.Load(), total)
	case <-ctx.Done():
		return 0, nil, ctx.Err()
	}
	el := time.Since(start).Seconds()
	latMu.Lock()
	defer latMu.Unlock()
	return float64(total) / el, latencyOf(lats), nil
}

func putUint64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (56 - 8*i))
	}
}

func beUint64(b []byte) uint64 {
	var v uint64
	for i := range 8 {
		v = v<<8 | uint64(b[i])
	}
	return v
}

// httpFloor is GET /healthz, Concurrency at a time, 500 requests: what the same HTTP
// client and listener cost with no domain behind them.
func (r *runner) httpFloor(ctx context.Context) *Latency {
	const n = 500
	lats := make([]time.Duration, n)
	_ = r.parallel(ctx, n, func(ctx context.Context, i int) error {
		t := time.Now()
		if err := r.api.healthz(ctx); err != nil {
			return err
		}
		lats[i] = time.Since(t)
		return nil
	})
	return latencyOf(lats)
}

// flow is one order's walk, for the final checks.
type flow struct {
	id    string
	site  *edge
	err   error
	state string
}

// drive creates orders at Rate (each then reserved, loaded and picked up by its edge)
// and remote opens at OpenRate, for Duration or MaxOrders orders.
func (r *runner) drive(ctx context.Context) {
	cfg := r.cfg
	if cfg.Duration == 0 || (cfg.Rate == 0 && cfg.OpenRate == 0) {
		return
	}
	dctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var (
		mu       sync.Mutex
		creates  []time.Duration
		opens    []time.Duration
		flows    []*flow
		openErrs []string
		wg       sync.WaitGroup
		inFlight = make([]atomic.Int32, len(r.edges))
		sem      = make(chan struct{}, cfg.Concurrency)
		full     atomic.Int64
	)
	rngMu := sync.Mutex{}
	pick := func(n int) int { rngMu.Lock(); defer rngMu.Unlock(); return r.rng.IntN(n) }
	every := func(rate float64, f func(n int)) {
		if rate <= 0 {
			return
		}
		wg.Go(func() {
			start := time.Now()
			for n := 0; ; n++ {
				at := start.Add(time.Duration(float64(n) / rate * float64(time.Second)))
				select {
				case <-dctx.Done():
					return
				case <-time.After(time.Until(at)):
				}
				select {
				case sem <- struct{}{}:
				case <-dctx.Done():
					return
				}
				wg.Go(func() { defer func() { <-sem }(); f(n) })
			}
		})
	}
	var orders atomic.Int64
	every(cfg.Rate, func(n int) {
		if int(orders.Add(1)) > cfg.MaxOrders {
			return
		}
		i := pick(len(r.edges))
		if int(inFlight[i].Add(1)) > cfg.Compartments/2 {
			inFlight[i].Add(-1)
			full.Add(1)
			return
		}
		defer inFlight[i].Add(-1)
		f := &flow{site: r.edges[i]}
		lat, err := r.walkOrder(ctx, f, n)
		mu.Lock()
		defer mu.Unlock()
		if lat > 0 {
			creates = append(creates, lat)
		}
		if err != nil {
			f.err = err
		}
		if f.id != "" || err != nil {
			flows = append(flows, f)
		}
	})
	every(cfg.OpenRate, func(n int) {
		e := r.edges[pick(len(r.edges))]
		lat, err := r.remoteOpen(ctx, e, 1+pick(cfg.Compartments))
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			openErrs = append(openErrs, err.Error())
			return
		}
		opens = append(opens, lat)
	})
	<-dctx.Done()
	wg.Wait()
	el := cfg.Duration.Seconds()
	r.s.Orders = &OrderFigure{Offered: cfg.Rate, Created: len(creates), PerSecond: float64(len(creates)) / el, Latency: latencyOf(creates), SkippedFull: full.Load()}
	r.s.Opens = &OpenFigure{Offered: cfg.OpenRate, Succeeded: len(opens), Failed: len(openErrs), Latency: latencyOf(opens)}
	for _, e := range first(openErrs, 5) {
		r.s.Failures = append(r.s.Failures, "remote open: "+e)
	}
	r.flows = flows
}

func first(s []string, n int) []string { return s[:min(n, len(s))] }

// walkOrder creates an order for f.site, waits for its reservation (checking the
// digests of its code and second factor with the site key), loads it and picks it up,
// each event acknowledged before the next. It returns the create's latency.
func (r *runner) walkOrder(ctx context.Context, f *flow, n int) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*r.cfg.Timeout)
	defer cancel()
	zones := []string{"chilled", "frozen", "ambient"}
	phone := fmt.Sprintf("+86138%08d", (n*7919+int(r.cfg.Seed))%100000000)
	now := time.Now().UTC()
	ext := fmt.Sprintf("load-%s-%d", r.tag, n)
	spec := orderSpec{ExternalID: ext, Site: f.site.site, Recipient: map[string]any{"phone": phone},
		Parcels: []parcel{{Size: "S", Zone: zones[n%3]}}, Window: window{Start: now, End: now.Add(2 * time.Hour)}, CodeDelivery: "platform"}
	t := time.Now()
	rc, err := r.api.createOrder(ctx, r.platform, ext, spec)
	lat := time.Since(t)
	if err != nil {
		return 0, err
	}
	f.id = rc.Order.ID
	if rc.Pickup == nil || len(rc.Pickup.Code) != protocol.CodeDigits || len(rc.Order.Slots) == 0 {
		return lat, fmt.Errorf("order %s: receipt without a code or a slot", f.id)
	}
	match := func(res protocol.Reservation) bool {
		return protocol.DigestEqual(res.CodeDigest, protocol.CodeDigest(f.site.key, rc.Pickup.Code)) &&
			protocol.DigestEqual(res.SecondFactorDigest, protocol.SecondFactorDigest(f.site.key, f.id, phone[len(phone)-protocol.FactorDigits:]))
	}
	res, err := f.site.waitReservation(ctx, f.id)
	// A reissued code (createOrder) reaches the edge in a later delta than the reservation.
	for err == nil && !match(res) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
		res, err = f.site.waitReservation(ctx, f.id)
	}
	if err != nil {
		return lat, err
	}
	if !match(res) {
		r.digestMismatches.Add(1)
		return lat, fmt.Errorf("order %s: reservation digests do not match the code and phone with the site key", f.id)
	}
	slot := rc.Order.Slots[0]
	seq, err := f.site.enqueue(protocol.Event{Kind: protocol.EventLoaded, Credential: protocol.CredDriver, Order: f.id, Compartment: slot.Compartment, Generation: slot.Generation})
	if err == nil {
		err = f.site.waitAcked(ctx, seq)
	}
	if err != nil {
		return lat, err
	}
	seq, err = f.site.enqueue(protocol.Event{Kind: protocol.EventPickedUp, Credential: protocol.CredPickup, Order: f.id, Compartment: slot.Compartment, Generation: slot.Generation})
	if err == nil {
		err = f.site.waitAcked(ctx, seq)
	}
	return lat, err
}

// remoteOpen is an operator's open: REST → command → the edge's acks → SUCCEEDED
// visible in REST, timed from the request to the first GET that shows it.
func (r *runner) remoteOpen(ctx context.Context, e *edge, n int) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	t := time.Now()
	c, err := r.api.openCompartment(ctx, r.ops, e.site, n)
	if err != nil {
		return 0, err
	}
	for {
		got, err := r.api.command(ctx, r.ops, c.ID)
		if err != nil {
			return 0, err
		}
		switch got.State {
		case string(protocol.StateSucceeded):
			return time.Since(t), nil
		case string(protocol.StateFailed), string(protocol.StateRejected), string(protocol.StateTimedOut):
			return 0, fmt.Errorf("command %s: %s %s", c.ID, got.State, got.Error)
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("command %s: not SUCCEEDED within %s (last %s)", c.ID, r.cfg.Timeout, got.State)
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// verify checks the effects: every order walked is picked_up over REST, every event
// of every outbox acknowledged.
func (r *runner) verify(ctx context.Context) {
	var bad atomic.Int64
	var mu sync.Mutex
	var msgs []string
	flows := r.flows
	_ = r.parallel(ctx, len(flows), func(ctx context.Context, i int) error {
		f := flows[i]
		if f.err == nil {
			o, err := r.api.order(ctx, r.platform, f.id)
			if err != nil {
				f.err = err
			} else if f.state = o.State; o.State != "picked_up" {
				f.err = fmt.Errorf("order %s is %s over REST, want picked_up", f.id, o.State)
			}
		}
		if f.err != nil {
			bad.Add(1)
			mu.Lock()
			msgs = append(msgs, f.err.Error())
			mu.Unlock()
		}
		return nil
	})
	// Everything still in an outbox (door events of the opens) gets its time to drain.
	deadline := time.Now().Add(r.cfg.Timeout)
	unacked := 0
	for {
		unacked = 0
		for _, e := range r.edges {
			unacked += e.unacked()
		}
		if unacked == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.s.Losses = LossFigure{OrdersWalked: len(flows), OrdersWrong: int(bad.Load()), EventsUnacked: unacked,
		DigestMismatches: int(r.digestMismatches.Load())}
	if bad.Load() > 0 {
		r.s.Failures = append(r.s.Failures, fmt.Sprintf("%d of %d orders did not end picked_up", bad.Load(), len(flows)))
		slices.Sort(msgs)
		for _, m := range first(msgs, 5) {
			r.s.Failures = append(r.s.Failures, "  "+m)
		}
	}
	if unacked > 0 {
		r.s.Failures = append(r.s.Failures, fmt.Sprintf("%d events never acknowledged", unacked))
	}
}
