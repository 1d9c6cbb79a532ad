package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/cloud/notify"
)

var secret = []byte("platform-secret-0123456789")

// receiver is a platform's webhook endpoint: it verifies every delivery and answers
// with the scripted statuses (then 204).
type receiver struct {
	t      *testing.T
	mu     sync.Mutex
	script []int
	// retryAfter is sent with every failure status when set.
	retryAfter string
	events     []notify.CloudEvent
	now        func() time.Time
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if err := notify.Verify(secret, req.Header.Get(notify.SignatureHeader), body, r.now(), 0); err != nil {
		r.t.Errorf("receiver: %v", err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if ct := req.Header.Get("Content-Type"); ct != notify.CloudEventsContentType {
		r.t.Errorf("content type %q", ct)
	}
	var ev notify.CloudEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		r.t.Errorf("receiver: %v", err)
	}
	if k := req.Header.Get(notify.IdempotencyHeader); k != ev.ID {
		r.t.Errorf("receiver: Idempotency-Key %q, CloudEvent id %q", k, ev.ID)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	status := http.StatusNoContent
	if len(r.script) > 0 {
		status, r.script = r.script[0], r.script[1:]
	}
	if status >= 300 && r.retryAfter != "" {
		w.Header().Set("Retry-After", r.retryAfter)
	}
	w.WriteHeader(status)
}

func (r *receiver) count() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.events) }

// clock is a manual clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type rig struct {
	q    testQueue
	w    *notify.Worker
	clk  *clock
	recv *receiver
	reg  *prometheus.Registry
	nt   *notify.Notifier
}

func newRig(t *testing.T, script []int, opts ...func(*notify.WorkerConfig)) *rig {
	return newRigOn(t, &notify.MemQueue{}, script, opts...)
}

// newRigOn is newRig over queue q.
func newRigOn(t *testing.T, q testQueue, script []int, opts ...func(*notify.WorkerConfig)) *rig {
	clk := &clock{t: t0}
	recv := &receiver{t: t, script: script, now: clk.Now}
	srv := httptest.NewServer(recv)
	t.Cleanup(srv.Close)
	reg := prometheus.NewRegistry()
	cfg := notify.WorkerConfig{
		Queue: q,
		Senders: map[notify.Channel]notify.Sender{notify.ChannelWebhook: &notify.Webhook{
			Endpoints: notify.StaticEndpoints{"plat": {URL: srv.URL, Secret: secret}}, Now: clk.Now}},
		MaxAttempts: 4, Backoff: 10 * time.Second, MaxBackoff: 25 * time.Second,
		Now: clk.Now, Rand: func() float64 { return 0.5 }, Registry: reg,
	}
	for _, o := range opts {
		o(&cfg)
	}
	w, err := notify.NewWorker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &rig{q: q, w: w, clk: clk, recv: recv, reg: reg, nt: &notify.Notifier{Outbox: q}}
}

// notice hands the domain's notice typ about n.Order to the Notifier, as the domain
// does, at the rig's time. Its id is order/kind, so its notifications are
// "o-42/expired/webhook" and "o-42/expired/sms".
func (r *rig) notice(t *testing.T, typ string, n cloud.Notification) {
	t.Helper()
	n.Type, n.ID, n.Time = typ, n.Order+"/"+strings.TrimPrefix(typ, "order."), r.clk.Now()
	must(t, r.nt.Notify(context.Background(), n))
}

func (r *rig) round(t *testing.T) int {
	t.Helper()
	n, err := r.w.Round(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, _ := reg.Gather()
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// order has no recipient: these tests are about webhooks (see sms_test.go for SMS).
var order = cloud.Notification{Order: "o-42", Site: "courtyard-3", Platform: "plat",
	Compartments: []int{7}, SiteName: "3号楼", LoadedAt: t0, ExpiresAt: t0.Add(24 * time.Hour)}

func TestWebhookDeliveredAsSignedCloudEvent(t *testing.T) {
	for _, qm := range queues {
		t.Run(qm.name, func(t *testing.T) {
			r := newRigOn(t, qm.make(t), nil)
			ctx := context.Background()
			r.notice(t, cloud.NoteCreated, order)
			if got := r.round(t); got != 1 {
				t.Fatalf("round took %d", got)
			}
			ev := r.recv.events[0]
			if ev.SpecVersion != "1.0" || ev.ID != "o-42/created/webhook" || ev.Type != "com.larder.order.created" ||
				ev.Source != "urn:larder:cloud" || ev.Subject != "o-42" || !ev.Time.Equal(t0) || ev.DataContentType != "application/json" {
				t.Fatalf("event %+v", ev)
			}
			var data notify.EventData
			json.Unmarshal(ev.Data, &data)
			if data.Order != "o-42" || data.Site != "courtyard-3" || data.Code != "" {
				t.Fatalf("data %+v (no code before loading)", data)
			}
			n, _ := r.q.Get(ctx, ev.ID)
			if n.State != notify.StateDelivered || n.Attempts != 1 {
				t.Fatalf("after delivery %+v", n)
			}
			if got := counter(t, r.reg, "larder_webhook_deliveries_total", map[string]string{"result": "delivered"}); got != 1 {
				t.Fatalf("delivered counter %v", got)
			}
		})
	}
}

func TestWebhookRetriesWithBackoffThenDeadLetters(t *testing.T) {
	for _, qm := range queues {
		t.Run(qm.name, func(t *testing.T) {
			// 500, 503, 429 then 502: the fourth failure reaches MaxAttempts (4).
			r := newRigOn(t, qm.make(t), []int{500, 503, 429, 502})
			ctx := context.Background()
			r.notice(t, cloud.NoteExpired, order)
			id := "o-42/expired/webhook"
			// Backoff 10 s doubling, capped at 25 s, with Rand 0.5: 7.5 s, 15 s, 18.75 s.
			for i, wait := range []time.Duration{7500 * time.Millisecond, 15 * time.Second, 18750 * time.Millisecond} {
				if got := r.round(t); got != 1 {
					t.Fatalf("attempt %d: round took %d", i+1, got)
				}
				n, _ := r.q.Get(ctx, id)
				if n.State != notify.StatePending || n.Attempts != i+1 || !n.NextTry.Equal(r.clk.Now().Add(wait)) {
					t.Fatalf("after attempt %d: %+v, want next try in %s", i+1, n, wait)
				}
				r.clk.Advance(wait - time.Millisecond)
				if got := r.round(t); got != 0 {
					t.Fatalf("retried %d before the backoff elapsed", got)
				}
				r.clk.Advance(time.Millisecond)
			}
			r.round(t)
			n, _ := r.q.Get(ctx, id)
			if n.State != notify.StateDead || n.Attempts != 4 || n.LastError != "HTTP 502" {
				t.Fatalf("after the last attempt %+v", n)
			}
			dead, _ := r.q.DeadLetters(ctx, 10)
			if len(dead) != 1 || r.recv.count() != 4 {
				t.Fatalf("dead letters %d, deliveries %d", len(dead), r.recv.count())
			}
			if got := counter(t, r.reg, "larder_webhook_dead_letters", nil); got != 1 {
				t.Fatalf("dead-letter gauge %v", got)
			}
			if got := counter(t, r.reg, "larder_webhook_deliveries_total", map[string]string{"result": "retry"}); got != 3 {
				t.Fatalf("retry counter %v", got)
			}
			// Ops fix the endpoint and requeue: delivered (the receiver now answers 204).
			must(t, r.q.Requeue(ctx, id, r.clk.Now()))
			r.round(t)
			if n, _ := r.q.Get(ctx, id); n.State != notify.StateDelivered {
				t.Fatalf("after requeue %+v", n)
			}
		})
	}
}

func TestBackoffJitterBounds(t *testing.T) {
	for _, rnd := range []float64{0, 0.999999} {
		r := newRig(t, []int{500}, func(c *notify.WorkerConfig) { c.Rand = func() float64 { return rnd } })
		r.notice(t, cloud.NoteExpired, order)
		r.round(t)
		n, _ := r.q.Get(context.Background(), "o-42/expired/webhook")
		d := n.NextTry.Sub(r.clk.Now())
		if d < 5*time.Second || d > 10*time.Second {
			t.Fatalf("rand %v: first backoff %s outside [5s, 10s]", rnd, d)
		}
	}
}

func TestPermanentFailuresDeadLetterAtOnce(t *testing.T) {
	for _, qm := range queues {
		t.Run(qm.name, func(t *testing.T) {
			r := newRigOn(t, qm.make(t), []int{400})
			ctx := context.Background()
			r.notice(t, cloud.NoteExpired, order)
			o2 := order
			o2.Order, o2.Platform = "o-43", "unknown-platform"
			r.notice(t, cloud.NoteExpired, o2)
			r.round(t)
			if n, _ := r.q.Get(ctx, "o-42/expired/webhook"); n.State != notify.StateDead || n.Attempts != 1 || n.LastError != "notify: permanent failure: HTTP 400" {
				t.Fatalf("after a 400: %+v", n)
			}
			// A platform without webhooks: nothing to deliver, nothing for ops to fix.
			if n, _ := r.q.Get(ctx, "o-43/expired/webhook"); n.State != notify.StateCancelled {
				t.Fatalf("platform without an endpoint: %+v", n)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	body := []byte(`{"id":"x"}`)
	now := t0
	good := notify.Sign(secret, now, body)
	tests := []struct {
		name   string
		secret []byte
		header string
		body   []byte
		now    time.Time
		want   error
	}{
		{"good", secret, good, body, now, nil},
		{"tampered body", secret, good, []byte(`{"id":"y"}`), now, notify.ErrBadSignature},
		{"wrong secret", []byte("other"), good, body, now, notify.ErrBadSignature},
		{"replayed later", secret, good, body, now.Add(6 * time.Minute), notify.ErrStale},
		{"from the future", secret, good, body, now.Add(-6 * time.Minute), notify.ErrStale},
		{"rotation: old then new", secret, notify.Sign([]byte("old"), now, body) + "," + strings.Split(good, ",")[1], body, now, nil},
		{"no signature", secret, "t=1", body, now, notify.ErrBadSignature},
		{"empty", secret, "", body, now, notify.ErrBadSignature},
		{"timestamp swapped", secret, strings.Replace(good, "t=", "t=1", 1), body, now, notify.ErrStale},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := notify.Verify(tt.secret, tt.header, tt.body, tt.now, 0); !errors.Is(err, tt.want) && !(err == nil && tt.want == nil) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

// FuzzVerify: Verify parses an untrusted header; it must never panic and never accept
// a header that is not a signature of the body.
func FuzzVerify(f *testing.F) {
	body := []byte(`{"id":"x"}`)
	f.Add(notify.Sign(secret, t0, body), body)
	f.Add("t=,v1=", body)
	f.Add("t=99999999999999999999,v1=00", []byte{})
	f.Add(",,,=,t=1=2,v1", body)
	f.Fuzz(func(t *testing.T, header string, b []byte) {
		err := notify.Verify(secret, header, b, t0, 0)
		if err == nil && !strings.Contains(header, notify.Sign(secret, t0, b)[strings.Index(notify.Sign(secret, t0, b), "v1="):]) {
			t.Fatalf("accepted %q for body %q", header, b)
		}
	})
}

func TestRetryAfterIsHonoured(t *testing.T) {
	for _, qm := range queues {
		t.Run(qm.name, func(t *testing.T) {
			r := newRigOn(t, qm.make(t), []int{503, 429})
			r.recv.retryAfter = "20"
			ctx := context.Background()
			r.notice(t, cloud.NoteExpired, order)
			id := "o-42/expired/webhook"
			r.round(t)
			// The backoff alone would be 7.5 s; the receiver asked for 20 s.
			if n, _ := r.q.Get(ctx, id); !n.NextTry.Equal(t0.Add(20 * time.Second)) {
				t.Fatalf("next try %v, want %v", n.NextTry, t0.Add(20*time.Second))
			}
			r.clk.Advance(20 * time.Second)
			r.recv.retryAfter = "3600" // capped at MaxBackoff (25 s)
			r.round(t)
			if n, _ := r.q.Get(ctx, id); !n.NextTry.Equal(r.clk.Now().Add(25 * time.Second)) {
				t.Fatalf("next try %v, want MaxBackoff from now", n.NextTry)
			}
		})
	}
}

func TestRunDeliversUntilCancelled(t *testing.T) {
	for _, qm := range queues {
		t.Run(qm.name, func(t *testing.T) {
			r := newRigOn(t, qm.make(t), nil, func(c *notify.WorkerConfig) { c.Poll = 5 * time.Millisecond; c.Now = time.Now })
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error)
			go func() { done <- r.w.Run(ctx) }()
			o := order
			o.Order = "o-run"
			r.notice(t, cloud.NoteCreated, o)
			deadline := time.Now().Add(5 * time.Second)
			for r.recv.count() == 0 {
				if time.Now().After(deadline) {
					t.Fatal("Run delivered nothing")
				}
				time.Sleep(5 * time.Millisecond)
			}
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("Run returned %v", err)
			}
		})
	}
}
