package e2e_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/larder-lockers/larder/cloud/broker"
	"github.com/larder-lockers/larder/cloud/notify"
	"github.com/larder-lockers/larder/demo"
)

// haBroker is the broker a replicated run's clouds and edges share.
type haBroker struct {
	name string
	// cloud is the replicas' broker list (-mqtt), edge the edges'.
	cloud, edge string
	// login is the replicas' service account; an empty User logs in with none (the
	// private Mosquitto is anonymous).
	login broker.NATSLogin
	// subscribeAll sets the replicas' mqtt_subscribe_all (NATS 2.9 caps the QoS 1
	// subscriptions of a session).
	subscribeAll bool
	// admit lets provisioned sites' logins in, as the broker's operator does; nil: the
	// broker takes any login.
	admit func(sites []broker.NATSLogin)
}

func mosquittoHABroker(mq *mosquitto) haBroker {
	return haBroker{name: "mosquitto", cloud: mq.URL(), edge: mq.URL()}
}

// natsHABroker is nc with every node's URL in node order for the replicas and the
// edges alike: all of them connect to the first node, and move on when it dies.
func natsHABroker(nc *natsCluster) haBroker {
	return haBroker{name: "nats", cloud: nc.MQTTURLs(), edge: nc.MQTTURLs(), login: nc.service, subscribeAll: true, admit: nc.admit}
}

// cluster is N larder-cloud replicas sharing one PostgreSQL database and one broker,
// reached round-robin as a load balancer would.
type cluster struct {
	t        *testing.T
	l        *demo.Launcher
	pg       string
	b        haBroker
	ids      []string
	replicas []*demo.Cloud
	dead     []atomic.Bool
	next     atomic.Uint64
	adminKey string
	keys     map[string]string // role → API key
}

func startCluster(t *testing.T, l *demo.Launcher, pgURL string, b haBroker, n int) *cluster {
	t.Helper()
	c := &cluster{t: t, l: l, pg: pgURL, b: b, dead: make([]atomic.Bool, n), adminKey: "lk_e2e_admin_" + randHex(16),
		keys: map[string]string{}}
	dir := t.TempDir()
	// Every replica seals and unseals the others' notices and held codes: one notify key.
	notifyKey := randHex(32)
	// One after the other: the first applies the migrations, the others find them done.
	// demo.CloudOptions has no environment of its own, so the replica is started
	// through the launcher with larder-cloud's arguments and its secrets by environment.
	for i := range n {
		id := fmt.Sprintf("ha-r%d", i+1)
		httpAddr, err1 := demo.FreeAddr()
		metricsAddr, err2 := demo.FreeAddr()
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		args := []string{"-data", filepath.Join(dir, id), "-http", httpAddr, "-metrics", metricsAddr, "-log-level", "info",
			"-mqtt", b.cloud, "-store", pgURL, "-replica-id", id}
		env := []string{"LARDER_CLOUD_ADMIN_KEY=" + c.adminKey, "LARDER_CLOUD_NOTIFY_KEY=" + notifyKey}
		if b.login.User != "" {
			args = append(args, "-mqtt-user", b.login.User)
			env = append(env, "LARDER_CLOUD_MQTT_PASSWORD="+b.login.Password)
		}
		if b.subscribeAll {
			env = append(env, "LARDER_CLOUD_MQTT_SUBSCRIBE_ALL=true")
		}
		p, err := l.Start(id, "larder-cloud", args, env)
		if err != nil {
			t.Fatalf("replica %s: %v", id, err)
		}
		rc := &demo.Cloud{Proc: p, URL: "http://" + httpAddr, MetricsURL: "http://" + metricsAddr, BrokerURL: b.cloud}
		if err := p.WaitHealthy(t.Context(), rc.URL+"/healthz", 30*time.Second); err != nil {
			t.Fatalf("replica %s: %v", id, err)
		}
		c.ids = append(c.ids, id)
		c.replicas = append(c.replicas, rc)
	}
	for _, role := range []string{"ops", "driver", "platform"} {
		subject := "e2e-ha-" + role
		if role == "platform" {
			subject = platformID
		}
		k, err := c.api(c.adminKey).CreateKey(t.Context(), role, subject)
		if err != nil {
			t.Fatal(err)
		}
		c.keys[role] = k
	}
	return c
}

// api returns a client of the next live replica (round-robin) with key.
func (c *cluster) api(key string) *demo.API {
	for range len(c.replicas) {
		i := int(c.next.Add(1)) % len(c.replicas)
		if !c.dead[i].Load() {
			return c.replicas[i].API(key)
		}
	}
	c.t.Fatal("every replica is dead")
	return nil
}

func (c *cluster) as(role string) *demo.API { return c.api(c.keys[role]) }

// waitOrderState waits until the order reads state, asking the next live replica at
// each look (demo.API.WaitOrderState asks one, which may be killed meanwhile).
func (c *cluster) waitOrderState(ctx context.Context, id, state string, timeout time.Duration) error {
	return demo.Eventually(ctx, timeout, "order "+id+" "+state, func() error {
		o, err := c.as("platform").Order(ctx, id)
		if err == nil && o.State != state {
			err = fmt.Errorf("state %s", o.State)
		}
		return err
	})
}

// urls are the replicas' API URLs.
func (c *cluster) urls() []string {
	out := make([]string, len(c.replicas))
	for i, r := range c.replicas {
		out[i] = r.URL
	}
	return out
}

// kill ends replica i with SIGKILL.
func (c *cluster) kill(i int) {
	c.dead[i].Store(true)
	c.replicas[i].Kill()
}

// webhookNotices reads the state of every webhook notice in the PostgreSQL outbox
// (larder_notices, cloud/notify.PGQueue): notice id (the CloudEvent id) → state, and
// → the sends recorded (attempts).
func webhookNotices(ctx context.Context, pgURL string) (map[string]string, map[string]int, error) {
	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT id, state, attempts FROM larder_notices WHERE channel = 'webhook'`)
	if err != nil {
		return nil, nil, fmt.Errorf("read larder_notices: %w", err)
	}
	out, attempts := map[string]string{}, map[string]int{}
	for rows.Next() {
		var id, state string
		var n int
		if err := rows.Scan(&id, &state, &n); err != nil {
			return nil, nil, err
		}
		out[id], attempts[id] = state, n
	}
	return out, attempts, rows.Err()
}

// hookCounter is the platforms' webhook endpoint: it counts every delivery by its
// CloudEvent id (a notice sent twice arrives twice with one id) and checks signatures
// (each platform has its own secret: one of them must verify).
type hookCounter struct {
	srv     *httptest.Server
	secrets [][]byte

	mu      sync.Mutex
	byID    map[string][]time.Time                // notice id → its deliveries' arrivals
	byOrder map[string]map[string]map[string]bool // order → type → notice ids
	badSig  int
}

func newHookCounter(t *testing.T) *hookCounter {
	h := &hookCounter{byID: map[string][]time.Time{}, byOrder: map[string]map[string]map[string]bool{}}
	h.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var e event
		if err := json.Unmarshal(raw, &e); err != nil || e.ID == "" {
			http.Error(rw, "not a CloudEvent", 400)
			return
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if !slices.ContainsFunc(h.secrets, func(k []byte) bool {
			return notify.Verify(k, r.Header.Get("Larder-Signature"), raw, time.Now(), 0) == nil
		}) {
			h.badSig++
		}
		h.byID[e.ID] = append(h.byID[e.ID], time.Now())
		kind := strings.TrimPrefix(e.Type, notify.TypePrefix)
		if h.byOrder[e.Subject] == nil {
			h.byOrder[e.Subject] = map[string]map[string]bool{}
		}
		if h.byOrder[e.Subject][kind] == nil {
			h.byOrder[e.Subject][kind] = map[string]bool{}
		}
		h.byOrder[e.Subject][kind][e.ID] = true
		rw.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// addSecret adds a platform's signing secret.
func (h *hookCounter) addSecret(hexSecret string) error {
	b, err := hex.DecodeString(hexSecret)
	h.mu.Lock()
	h.secrets = append(h.secrets, b)
	h.mu.Unlock()
	return err
}

// count is how many notices (distinct ids) of kind arrived about order.
func (h *hookCounter) count(order, kind string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.byOrder[order][kind])
}

// received is how many times the notice id arrived.
func (h *hookCounter) received(id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.byID[id])
}

// orders is how many orders had at least one notice of kind delivered.
func (h *hookCounter) orders(kind string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, byKind := range h.byOrder {
		if len(byKind[kind]) > 0 {
			n++
		}
	}
	return n
}

// without lists up to n orders some notice arrived about and none of kind.
func (h *hookCounter) without(kind string, n int) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for order, byKind := range h.byOrder {
		if len(byKind[kind]) == 0 && len(out) < n {
			out = append(out, order)
		}
	}
	return out
}

// ids are the notice ids received.
func (h *hookCounter) ids() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, 0, len(h.byID))
	for id := range h.byID {
		out = append(out, id)
	}
	return out
}

// duplicates lists the notices delivered more than once that the outbox cannot account
// for. Two sends of one notice are the documented at-least-once cases
// (cloud/notify.PGQueue): a recorded retry after a lost answer (each send is one of the
// notice's attempts), or a replica killed after the receiver took a delivery and
// before it settled it (the first arrival before killedAt, the second after it). Any
// other repeat is a fault, e.g. two live replicas sending one notice.
func (h *hookCounter) duplicates(attempts map[string]int, killedAt time.Time) (bad, excused []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, at := range h.byID {
		n := len(at)
		switch {
		case n <= 1:
			continue
		case n <= attempts[id], n == 2 && at[0].Before(killedAt) && at[1].After(killedAt):
			excused = append(excused, fmt.Sprintf("%s ×%d (%d attempts)", id, n, attempts[id]))
		default:
			bad = append(bad, fmt.Sprintf("%s ×%d (%d attempts)", id, n, attempts[id]))
		}
	}
	sort.Strings(bad)
	sort.Strings(excused)
	return bad, excused
}
