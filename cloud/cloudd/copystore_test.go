package cloudd_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/larder-lockers/larder/cloud/cloudd"
	"github.com/larder-lockers/larder/internal/pgtest"
	"github.com/larder-lockers/larder/protocol"
)

const testNotifyKey = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

// TestCopyStoreThenReplica: a cloud that ran on bbolt, stopped, copied into PostgreSQL
// with `larder-cloud copy-store`, comes back as a replica over the copy with its orders;
// a second copy into the now non-empty database is refused.
func TestCopyStoreThenReplica(t *testing.T) {
	dir := t.TempDir()
	cfg := cloudd.DefaultConfig()
	cfg.DataDir, cfg.HTTPAddr, cfg.MetricsAddr, cfg.MQTTListen = dir, "127.0.0.1:0", "", "127.0.0.1:0"
	cfg.AdminKey, cfg.NotifyKey = adminKey, testNotifyKey
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
	admin := client{t, m.HTTPURL(), adminKey}
	if st, _ := admin.do("POST", "/v1/sites", map[string]any{"id": "yard-1"}); st != 201 {
		t.Fatalf("create site: %d", st)
	}
	_, prov := admin.do("POST", "/v1/sites/yard-1/provision", nil)
	_, k := admin.do("POST", "/v1/keys", map[string]any{"role": "platform", "subject": "veggie"})
	platform := client{t, m.HTTPURL(), k["key"].(string)}
	e := newEdge(t, m.BrokerURL(), "yard-1", prov["mqtt_password"].(string))
	e.publish(protocol.ChanBirth, 0, protocol.Birth{Software: "e2e", Compartments: []protocol.Compartment{
		{Number: 1, Size: protocol.SizeS, Zone: protocol.ZoneChilled}, {Number: 2, Size: protocol.SizeS, Zone: protocol.ZoneChilled}}})
	waitFor(t, "desired snapshot", func() bool { e.mu.Lock(); defer e.mu.Unlock(); return len(e.desired) > 0 })
	order, _ := createOrder(t, platform, "copy-1", "chilled")
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}

	url := pgtest.DB(t)
	env := map[string]string{"LARDER_CLOUD_NOTIFY_KEY": testNotifyKey}
	var out, errs bytes.Buffer
	if st := cloudd.CopyStore(context.Background(), []string{"-data", dir, "-to", url}, func(k string) string { return env[k] }, &out, &errs); st != 0 {
		t.Fatalf("copy-store: exit %d: %s", st, errs.String())
	}
	if !strings.Contains(out.String(), "copied and verified") || !strings.Contains(out.String(), "orders") {
		t.Errorf("copy-store printed:\n%s", out.String())
	}
	out.Reset()
	if st := cloudd.CopyStore(context.Background(), []string{"-data", dir, "-to", url}, func(k string) string { return env[k] }, &out, io.Discard); st != 1 {
		t.Errorf("a second copy into the same database: exit %d, want 1", st)
	}

	r := startCloud(t, func(c *cloudd.Config) {
		c.Store, c.MQTTURL, c.MQTTUsername, c.NotifyKey = url, "tcp://127.0.0.1:1883", "", testNotifyKey
		c.ReplicaID = fmt.Sprintf("copy-%d", time.Now().UnixNano())
	})
	platform.base = r.HTTPURL()
	st, got := platform.do("GET", "/v1/orders/"+order, nil)
	if st != 200 || got["id"] != order {
		t.Fatalf("the order on the replica over the copy: %d %v", st, got)
	}
}
