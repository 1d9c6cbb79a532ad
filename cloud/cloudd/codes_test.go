package cloudd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/larder-lockers/larder/cloud/cloudd"
	"github.com/larder-lockers/larder/protocol"
)

// TestHeldCodeSurvivesRestart: a notifier order's code is drawn at admission and held
// sealed under the notify key until loading. The cloud restarts in between (the key is
// read back from DATA/notify.key); at loading the resident's SMS carries the code whose
// digest the edge got with the reservation, and the store's file never holds it in
// plain, neither on the order nor in the outbox.
func TestHeldCodeSurvivesRestart(t *testing.T) {
	var mu sync.Mutex
	var texts []string
	sms := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m struct{ To, Text string }
		json.NewDecoder(r.Body).Decode(&m)
		mu.Lock()
		texts = append(texts, m.Text)
		mu.Unlock()
	}))
	defer sms.Close()
	dir := t.TempDir()
	start := func() (*cloudd.Main, func()) {
		cfg := cloudd.DefaultConfig()
		cfg.DataDir, cfg.HTTPAddr, cfg.MetricsAddr, cfg.MQTTListen = dir, "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
		cfg.AdminKey, cfg.SMSURL = adminKey, sms.URL
		m, err := cloudd.NewMain(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		if err := m.Open(ctx); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- m.Run(ctx) }()
		return m, func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("run: %v", err)
			}
		}
	}
	ctx := context.Background()

	m, stop := start()
	admin := client{t, m.HTTPURL(), adminKey}
	if st, _ := admin.do("POST", "/v1/sites", map[string]any{"id": "yard-7", "name": "Yard 7"}); st != 201 {
		t.Fatalf("create site: %d", st)
	}
	comps := []protocol.Compartment{{Number: 1, Size: protocol.SizeM, Zone: protocol.ZoneChilled, HeightCM: 40, Lock: 1}}
	if _, err := m.Service().ApplyBirth(ctx, "yard-7", time.Now(), protocol.Birth{Software: "test", Compartments: comps}); err != nil {
		t.Fatal(err)
	}
	_, k := admin.do("POST", "/v1/keys", map[string]any{"role": "platform", "subject": "grocer"})
	platform := client{t, m.HTTPURL(), k["key"].(string)}
	now := time.Now().UTC()
	st, rc := platform.do("POST", "/v1/orders", map[string]any{"external_id": "H-1", "site": "yard-7",
		"recipient": map[string]any{"phone": "+8613800138000"}, "parcels": []map[string]any{{"size": "S", "zone": "chilled"}},
		"window": map[string]any{"start": now.Format(time.RFC3339), "end": now.Add(2 * time.Hour).Format(time.RFC3339)}}, "Idempotency-Key", "h1")
	if st != 201 {
		t.Fatalf("create order: %d %v", st, rc)
	}
	order := rc["order"].(map[string]any)["id"].(string)
	snap, err := m.Service().DesiredSnapshot(ctx, "yard-7")
	if err != nil || len(snap.Reservations) != 1 {
		t.Fatalf("desired before loading: %+v, %v", snap, err)
	}
	admitted := snap.Reservations[0].CodeDigest
	stop()

	m, stop = start()
	defer stop()
	ev := protocol.Event{Kind: protocol.EventLoaded, Credential: protocol.CredDriver, Order: order, Compartment: 1}
	if _, err := m.Service().ApplyEdgeEvent(ctx, "yard-7", protocol.Message{Header: protocol.Header{ID: protocol.NewID(), Seq: 1, Time: time.Now()},
		Type: protocol.TypeEvent, Body: ev}); err != nil {
		t.Fatal(err)
	}
	var code string
	waitFor(t, "the arrival SMS", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range texts {
			if c := regexp.MustCompile(`\b\d{8}\b`).FindString(s); c != "" {
				code = c
				return true
			}
		}
		return false
	})
	key, err := m.Service().SiteKey(ctx, "yard-7")
	if err != nil {
		t.Fatal(err)
	}
	if protocol.CodeDigest(key, code) != admitted {
		t.Fatal("the SMS code is not the one whose digest the edge got with the reservation")
	}
	raw, err := os.ReadFile(filepath.Join(dir, "cloud.db"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(code)) {
		t.Fatal("the code is in the store's file in plain")
	}
}
