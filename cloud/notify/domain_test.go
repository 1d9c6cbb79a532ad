package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/cloud/notify"
)

func TestNotifierFromDomain(t *testing.T) {
	ctx := context.Background()
	q := &notify.MemQueue{}
	nt := &notify.Notifier{Outbox: q}
	rcpt := &cloud.Recipient{Phone: "+8613800001234"}
	loaded := cloud.Notification{Type: cloud.NoteLoaded, ID: "evt_1", Time: t0, Site: "s-1", Order: "ord_1",
		Platform: "plat", ExternalID: "P-77", State: "loaded", Recipient: rcpt, Code: "123456", QR: "larder:v1:s-1:123456",
		Compartments: []int{4}, LoadedAt: t0, ExpiresAt: t0.Add(24 * 3600e9), SiteName: "Building 3"}
	for range 2 { // idempotent by the domain's notification id
		must(t, nt.Notify(ctx, loaded))
	}
	byPlatform := loaded
	byPlatform.ID, byPlatform.Order, byPlatform.CodeToPlatform = "evt_2", "ord_2", true
	must(t, nt.Notify(ctx, byPlatform))
	picked := cloud.Notification{Type: cloud.NotePickedUp, ID: "evt_3", Time: t0, Site: "s-1", Order: "ord_1", Platform: "plat"}
	must(t, nt.Notify(ctx, picked))

	st, _ := q.Stats(ctx)
	if st.Pending != 4 {
		t.Fatalf("pending %d, want 4 (loaded webhook+sms, platform-delivered webhook, picked-up webhook)", st.Pending)
	}
	data := func(id string) notify.EventData {
		t.Helper()
		n, err := q.Get(ctx, id)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		var d notify.EventData
		json.Unmarshal(n.Data, &d)
		return d
	}
	if d := data("evt_1/webhook"); d.Code != "" || d.ExternalID != "P-77" || d.State != "loaded" {
		t.Fatalf("webhook of a cloud-delivered code: %+v (must not carry the code)", d)
	}
	if d := data("evt_1/sms"); d.Code != "123456" {
		t.Fatalf("resident SMS lacks the code: %+v", d)
	}
	if d := data("evt_2/webhook"); d.Code != "123456" || d.QR == "" {
		t.Fatalf("platform that delivers codes got %+v", d)
	}
	if _, err := q.Get(ctx, "evt_2/sms"); err == nil {
		t.Fatal("SMS sent although the platform delivers the code")
	}
	n, _ := q.Get(ctx, "evt_3/webhook")
	if n.Kind != notify.KindPickedUp {
		t.Fatalf("kind %q", n.Kind)
	}
	if ev := notify.Event("urn:larder:cloud", n); ev.Type != "com.larder.order.picked_up" {
		t.Fatalf("type %q", ev.Type)
	}
}

type platforms map[string]string

func (p platforms) Webhook(_ context.Context, platform string) (string, []byte, error) {
	u, ok := p[platform]
	if !ok {
		return "", nil, &cloud.Error{Code: cloud.ENotFound, Message: "no webhook"}
	}
	return u, []byte("k"), nil
}

func TestServiceEndpoints(t *testing.T) {
	e := notify.ServiceEndpoints{Service: platforms{"plat": "https://plat.example/hook"}}
	ep, err := e.Endpoint(context.Background(), "plat")
	if err != nil || ep.URL != "https://plat.example/hook" || string(ep.Secret) != "k" {
		t.Fatalf("%+v %v", ep, err)
	}
	if _, err := e.Endpoint(context.Background(), "other"); !errors.Is(err, notify.ErrNoEndpoint) {
		t.Fatalf("unknown platform: %v", err)
	}
}
