package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// WorkerConfig configures a [Worker]. Zero values mean the documented defaults.
type WorkerConfig struct {
	// Queue is where notifications wait. Required; if it also implements [Backlog]
	// the worker exports the backlog gauges. One worker per queue value: a [PGQueue]
	// is one claimer.
	Queue Deliveries
	// Senders by channel. A notification for a channel without a sender is retried
	// (the configuration may be fixed) until dead-lettered.
	Senders map[Channel]Sender

	// MaxAttempts before dead-lettering (default 10: with the default backoff about
	// 4 hours of retries).
	MaxAttempts int
	// Backoff is the delay after the first failure, doubled after each further one up
	// to MaxBackoff (defaults 30 s and 1 h). Each delay is drawn uniformly from
	// [d/2, d] ("equal jitter") so a platform that comes back is not hit by every
	// retry at once.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// Batch is how many due notifications one round takes (default 64); Parallel how
	// many it sends at once (default 4); Poll how often Run looks for due ones
	// (default 1 s).
	Batch    int
	Parallel int
	Poll     time.Duration
	// SendTimeout bounds one delivery attempt (default 15 s).
	SendTimeout time.Duration

	Logger   *slog.Logger
	Registry prometheus.Registerer
	// Now and Rand (uniform in [0,1)) are injectable for tests (nil: real ones).
	Now  func() time.Time
	Rand func() float64
}

// Worker delivers due notifications. Run it in its own goroutine; [Worker.Round] does
// one round and is what tests drive.
type Worker struct {
	cfg        WorkerConfig
	log        *slog.Logger
	deliveries *prometheus.CounterVec
	backlog    prometheus.Gauge
	dead       prometheus.Gauge
	wake       chan struct{} // Wake's signal to Run, buffered 1
}

// Wake makes Run look for due notifications now instead of at its next poll (the
// [Notifier] calls it once a transaction that enqueued has committed). It never blocks.
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// NewWorker checks cfg and registers the metrics larder_webhook_backlog,
// larder_webhook_dead_letters and larder_webhook_deliveries_total{channel,result}
// (result: delivered, retry, dead, cancelled). The names say "webhook"
// for all channels: they are the notification outbox's, SMS included.
func NewWorker(cfg WorkerConfig) (*Worker, error) {
	if cfg.Queue == nil {
		return nil, errors.New("notify: worker needs a queue")
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 10
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 30 * time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = time.Hour
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 64
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 4
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = 15 * time.Second
	}
	if c, ok := cfg.Queue.(claimer); ok && c.claimDuration() <= cfg.SendTimeout {
		return nil, fmt.Errorf("notify: the queue's claims (%s) must outlast a send (SendTimeout %s)", c.claimDuration(), cfg.SendTimeout)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	w := &Worker{cfg: cfg, log: cfg.Logger, wake: make(chan struct{}, 1),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "larder_webhook_deliveries_total",
			Help: "Notification delivery attempts and decisions by channel and result (delivered, retry, dead, cancelled).",
		}, []string{"channel", "result"}),
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "larder_webhook_backlog",
			Help: "Notifications pending in the outbox: not yet delivered, dead-lettered or cancelled (retries included).",
		}),
		dead: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "larder_webhook_dead_letters",
			Help: "Notifications dead-lettered (a permanent failure, or too many failed attempts), awaiting ops.",
		}),
	}
	if cfg.Registry != nil {
		for _, c := range []prometheus.Collector{w.deliveries, w.backlog, w.dead} {
			if err := cfg.Registry.Register(c); err != nil {
				return nil, fmt.Errorf("notify: register metrics: %w", err)
			}
		}
	}
	return w, nil
}

// Run delivers until ctx ends.
func (w *Worker) Run(ctx context.Context) error {
	t := time.NewTicker(w.cfg.Poll)
	defer t.Stop()
	for {
		for {
			n, err := w.Round(ctx)
			if err != nil && ctx.Err() == nil {
				w.log.Error("notify: delivery round failed", "err", err)
			}
			if n < w.cfg.Batch || err != nil {
				break // caught up; a full batch means more may be due now
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		case <-w.wake:
		}
	}
}

// claimer is a queue whose Due claims what it returns for a while ([PGQueue]).
type claimer interface{ claimDuration() time.Duration }

// Round takes up to Batch due notifications, attempts each once and settles it. It
// returns how many it took.
//
// With a queue that claims ([PGQueue]), a send starts only while its whole
// SendTimeout fits in the claim (counted on this machine's monotonic clock from before
// Due, so never later than the database's claimed_until): a notification the round
// could not reach in time is left unsettled, for whoever claims it next (this worker,
// at once, if no other took it), instead of being sent by two workers at once.
func (w *Worker) Round(ctx context.Context) (int, error) {
	start := time.Now()
	now := w.cfg.Now()
	due, err := w.cfg.Queue.Due(ctx, now, w.cfg.Batch)
	if err != nil {
		return 0, fmt.Errorf("notify: due: %w", err)
	}
	var claimEnd time.Time
	if c, ok := w.cfg.Queue.(claimer); ok {
		claimEnd = start.Add(c.claimDuration())
	}
	sem := make(chan struct{}, w.cfg.Parallel)
	var wg sync.WaitGroup
	errs := make([]error, len(due))
	var skipped atomic.Int32
	for i, n := range due {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if !claimEnd.IsZero() && time.Until(claimEnd) < w.cfg.SendTimeout {
				skipped.Add(1)
				return
			}
			errs[i] = w.deliver(ctx, n)
		}()
	}
	wg.Wait()
	if k := skipped.Load(); k > 0 {
		w.log.Warn("notify: round outlasted its claim; notifications left for the next claim", "count", k)
	}
	w.gauges(ctx)
	return len(due), errors.Join(errs...)
}

// outstanding is a queue that counts its backlog cheaply ([PGQueue], whose Stats
// counts its whole table).
type outstanding interface {
	Outstanding(ctx context.Context) (pending, dead int, err error)
}

func (w *Worker) gauges(ctx context.Context) {
	switch q := w.cfg.Queue.(type) {
	case outstanding:
		if p, d, err := q.Outstanding(ctx); err == nil {
			w.backlog.Set(float64(p))
			w.dead.Set(float64(d))
		}
	case Backlog:
		if s, err := q.Stats(ctx); err == nil {
			w.backlog.Set(float64(s.Pending))
			w.dead.Set(float64(s.Dead))
		}
	}
}

// deliver attempts n once and settles it; the error is the queue's, not the send's.
func (w *Worker) deliver(ctx context.Context, n Notification) error {
	s, ok := w.cfg.Senders[n.Channel]
	var err error
	if !ok {
		err = fmt.Errorf("no sender for channel %q", n.Channel)
	} else {
		sctx, cancel := context.WithTimeout(ctx, w.cfg.SendTimeout)
		err = s.Send(sctx, n)
		cancel()
	}
	now := w.cfg.Now()
	switch {
	case err == nil:
		w.log.Info("notify: delivered", "notification", n)
		return w.settle(ctx, n, Result{State: StateDelivered, At: now}, "delivered")
	case ctx.Err() != nil:
		return ctx.Err() // shutting down: not the receiver's fault, retry next start
	case errors.Is(err, ErrNoEndpoint):
		return w.settle(ctx, n, Result{State: StateCancelled, At: now, Error: err.Error()}, "cancelled")
	case errors.Is(err, ErrPermanent) || n.Attempts+1 >= w.cfg.MaxAttempts:
		w.log.Warn("notify: dead-lettered", "notification", n, "err", err)
		return w.settle(ctx, n, Result{State: StateDead, At: now, Error: err.Error()}, "dead")
	default:
		d := w.backoff(n.Attempts + 1)
		var ra *RetryAfterError
		if errors.As(err, &ra) {
			d = max(d, min(ra.After, w.cfg.MaxBackoff))
		}
		next := now.Add(d)
		w.log.Info("notify: delivery failed, will retry", "notification", n, "err", err, "next_try", next)
		return w.settle(ctx, n, Result{State: StatePending, NextTry: next, Error: err.Error()}, "retry")
	}
}

func (w *Worker) settle(ctx context.Context, n Notification, r Result, result string) error {
	w.deliveries.WithLabelValues(string(n.Channel), result).Inc()
	r.Claim = n.Claim
	if err := w.cfg.Queue.Settle(ctx, n.ID, r); err != nil {
		return fmt.Errorf("notify: settle %s: %w", n.ID, err)
	}
	return nil
}

// backoff is the delay after the attempt-th failure: Backoff·2^(attempt−1), capped at
// MaxBackoff, then drawn from [d/2, d].
func (w *Worker) backoff(attempt int) time.Duration {
	d := w.cfg.Backoff
	for i := 1; i < attempt && d < w.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, w.cfg.MaxBackoff)
	return d/2 + time.Duration(w.cfg.Rand()*float64(d/2))
}
