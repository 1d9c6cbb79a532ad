package cloudd_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/cloud/bolt"
	"github.com/larder-lockers/larder/cloud/cloudd"
	"github.com/larder-lockers/larder/protocol"
)

// runCloud opens and runs a cloud over dataDir (embedded broker); stop closes it as
// SIGTERM would and waits for Run to return.
func runCloud(t *testing.T, dataDir string) (m *cloudd.Main, stop func()) {
	t.Helper()
	cfg := cloudd.DefaultConfig()
	cfg.DataDir = dataDir
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.MetricsAddr = "127.0.0.1:0"
	cfg.MQTTListen = "127.0.0.1:0"
	cfg.AdminKey = adminKey
	m, err := cloudd.NewMain(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := m.Open(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}
	t.Cleanup(stop)
	return m, stop
}

// backdateHeartbeat moves the stopped cloud's last heartbeat d into the past, as if it
// had stopped d earlier: a real outage over the one-minute minimum without the wait.
func backdateHeartbeat(t *testing.T, dataDir string, d time.Duration) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dataDir, "cloud.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(context.Background(), func(tx cloud.Tx) error {
		var rec struct {
			At time.Time `json:"at"`
		}
		if err := json.Unmarshal(tx.Get("meta", "alive"), &rec); err != nil {
			return err
		}
		rec.At = rec.At.Add(-d)
		b, _ := json.Marshal(rec)
		return tx.Put("meta", "alive", b)
	})
	if err != nil {
		t.Fatalf("backdate heartbeat: %v", err)
	}
}

// TestCloudRestartExtendsDeadlines: the cloud (and its embedded broker, so no Last Will
// is ever stored) is stopped for ten minutes; when the edge reconnects to the restarted
// cloud, its loaded order's deadline moves by the outage.
func TestCloudRestartExtendsDeadlines(t *testing.T) {
	dir := t.TempDir()
	m, stop := runCloud(t, dir)
	admin := client{t, m.HTTPURL(), adminKey}
	if st, _ := admin.do("POST", "/v1/sites", map[string]any{"id": "yard-1", "name": "Yard 1"}); st != 201 {
		t.Fatalf("create site: %d", st)
	}
	st, prov := admin.do("POST", "/v1/sites/yard-1/provision", nil)
	if st != 200 {
		t.Fatalf("provision: %d %v", st, prov)
	}
	password := prov["mqtt_password"].(string)
	_, k := admin.do("POST", "/v1/keys", map[string]any{"role": "platform", "subject": "veggie"})
	platKey := k["key"].(string)
	platform := client{t, m.HTTPURL(), platKey}

	e := newEdge(t, m.BrokerURL(), "yard-1", password)
	e.publish(protocol.ChanStatus, 0, protocol.Status{Online: true, Software: "e2e"})
	comps := []protocol.Compartment{{Number: 1, Size: protocol.SizeM, Zone: protocol.ZoneAmbient, Lock: 1}}
	e.publish(protocol.ChanBirth, 0, protocol.Birth{Software: "e2e", Compartments: comps})
	waitFor(t, "desired snapshot", func() bool { e.mu.Lock(); defer e.mu.Unlock(); return len(e.desired) > 0 })
	id, comp := createOrder(t, platform, "A-1", "ambient")
	e.event(protocol.Event{Kind: protocol.EventLoaded, Credential: protocol.CredDriver, Order: id, Compartment: comp})
	waitFor(t, "ack of the loading", func() bool { e.mu.Lock(); defer e.mu.Unlock(); return len(e.acks) > 0 })
	expiry := func(c client) time.Time {
		_, o := c.do("GET", "/v1/orders/"+id, nil)
		at, err := time.Parse(time.RFC3339Nano, o["expires_at"].(string))
		if err != nil || o["state"] != "loaded" {
			t.Fatalf("order: %v %v", o, err)
		}
		return at
	}
	before := expiry(platform)

	stop()
	e.c.Disconnect(50)
	backdateHeartbeat(t, dir, 10*time.Minute)

	m, _ = runCloud(t, dir)
	admin, platform = client{t, m.HTTPURL(), adminKey}, client{t, m.HTTPURL(), platKey}
	if _, s := admin.do("GET", "/v1/sites/yard-1", nil); s["online"] != false {
		t.Errorf("site after the restart: online = %v, want false until its edge is back", s["online"])
	}
	e = newEdge(t, m.BrokerURL(), "yard-1", password)
	e.publish(protocol.ChanStatus, 0, protocol.Status{Online: true, Software: "e2e"})
	waitFor(t, "deadline extended", func() bool { return expiry(platform).After(before) })
	// Ten minutes of backdating plus the real time the restart and reconnect took.
	if got := expiry(platform).Sub(before); got < 10*time.Minute || got > 11*time.Minute {
		t.Errorf("extended by %v, want the 10 min outage", got)
	}
	if _, s := admin.do("GET", "/v1/sites/yard-1", nil); s["online"] != true {
		t.Errorf("site after its edge's status: online = %v", s["online"])
	}
}
