package cloudd_test

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/larder-lockers/larder/protocol"
)

// metric sums the samples of name whose labels include labels, from the cloud's /metrics.
func metric(t *testing.T, base, name, labels string) float64 {
	t.Helper()
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	re := regexp.MustCompile(`(?m)^` + name + `(\{[^}]*\})? (\S+)$`)
	var sum float64
	for _, m := range re.FindAllStringSubmatch(string(body), -1) {
		if labels != "" && !regexp.MustCompile(regexp.QuoteMeta(labels)).MatchString(m[1]) {
			continue
		}
		v, _ := strconv.ParseFloat(m[2], 64)
		sum += v
	}
	return sum
}

// TestPlatformWithoutWebhookIsNotDeadLettered: a platform that never set a webhook and
// delivers its own codes (so the webhook is the only channel of its notices) has nothing
// to be told over that channel and nothing for ops to fix. Its notices are cancelled,
// never dead-lettered (the dead-letter alert watches larder_webhook_dead_letters) and
// never retried.
func TestPlatformWithoutWebhookIsNotDeadLettered(t *testing.T) {
	m := startCloud(t, nil)
	admin := client{t, m.HTTPURL(), adminKey}
	if st, _ := admin.do("POST", "/v1/sites", map[string]any{"id": "yard-9", "name": "Yard 9", "location": map[string]float64{"lat": 31.2, "lon": 121.4}}); st != 201 {
		t.Fatalf("create site: %d", st)
	}
	var comps []protocol.Compartment
	for i := 1; i <= 4; i++ {
		comps = append(comps, protocol.Compartment{Number: i, Size: protocol.SizeM, Zone: protocol.ZoneChilled, HeightCM: 30 * i, Lock: i})
	}
	if _, err := m.Service().ApplyBirth(context.Background(), "yard-9", time.Now(), protocol.Birth{Software: "test", Compartments: comps}); err != nil {
		t.Fatal(err)
	}
	_, k := admin.do("POST", "/v1/keys", map[string]any{"role": "platform", "subject": "nohook"})
	platform := client{t, m.HTTPURL(), k["key"].(string)}
	now := time.Now().UTC()
	st, rc := platform.do("POST", "/v1/orders", map[string]any{"external_id": "N-1", "site": "yard-9", "code_delivery": "platform",
		"recipient": map[string]any{"phone": "+8613800138000"}, "parcels": []map[string]any{{"size": "S", "zone": "chilled"}},
		"window": map[string]any{"start": now.Format(time.RFC3339), "end": now.Add(2 * time.Hour).Format(time.RFC3339)}}, "Idempotency-Key", "n1")
	if st != 201 {
		t.Fatalf("create order: %d %v", st, rc)
	}
	// The order's "created" notice goes to the webhook channel and is settled at once.
	settled := func() float64 {
		return metric(t, m.MetricsURL(), "larder_webhook_deliveries_total", `channel="webhook"`)
	}
	waitFor(t, "the created notice settled", func() bool { return settled() >= 1 })
	if got := metric(t, m.MetricsURL(), "larder_webhook_deliveries_total", `result="cancelled"`); got != settled() {
		t.Errorf("webhook results: %v cancelled of %v; want every one cancelled", got, settled())
	}
	if got := metric(t, m.MetricsURL(), "larder_webhook_dead_letters", ""); got != 0 {
		t.Errorf("larder_webhook_dead_letters %v, want 0", got)
	}
}
