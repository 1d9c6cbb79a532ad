package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/cloud/notify"
	"github.com/larder-lockers/larder/cloud/web"
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

// TestResidentLinkMatchesWeb: notify spells out cloud/web's link format (cloud/web
// imports notify); both must stay the same.
func TestResidentLinkMatchesWeb(t *testing.T) {
	for _, base := range []string{"https://lockers.example", "https://lockers.example/", "http://127.0.0.1:8080"} {
		got, want := notify.ResidentLink(base, "ord_1", "12345678"), web.ResidentLink(base, "ord_1", "12345678")
		if got != want {
			t.Errorf("ResidentLink(%q) = %q, cloud/web says %q", base, got, want)
		}
	}
}

// TestNoticesCarryResidentLink: a notice with a code carries the resident page's link,
// in the SMS after the code (both languages) and in the webhook data of a platform that
// gets the code; never where the code is not (the link holds the code).
func TestNoticesCarryResidentLink(t *testing.T) {
	ctx := context.Background()
	q := &notify.MemQueue{}
	nt := &notify.Notifier{Outbox: q, PublicURL: "https://lockers.example/"}
	const link = "https://lockers.example/r/ord_1#c=12345678"
	rcpt := &cloud.Recipient{Phone: "+8613800001234"}
	loaded := cloud.Notification{Type: cloud.NoteLoaded, ID: "evt_1", Time: t0, Site: "s-1", Order: "ord_1",
		Platform: "plat", ExternalID: "P-77", State: "loaded", Recipient: rcpt, Code: "12345678", QR: "larder:v1:s-1:12345678",
		Compartments: []int{4}, LoadedAt: t0, ExpiresAt: t0.Add(24 * time.Hour), SiteName: "Building 3"}
	reissued := loaded
	reissued.Type, reissued.ID = cloud.NoteCodeIssued, "evt_2"
	byPlatform := reissued
	byPlatform.ID, byPlatform.CodeToPlatform = "evt_3", true
	reminder := loaded
	reminder.Type, reminder.ID, reminder.Code, reminder.QR = cloud.NoteReminder, "evt_4", "", ""
	for _, n := range []cloud.Notification{loaded, reissued, byPlatform, reminder} {
		must(t, nt.Notify(ctx, n))
	}
	get := func(id string) (notify.Notification, map[string]any) {
		t.Helper()
		n, err := q.Get(ctx, id)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		var d map[string]any
		must(t, json.Unmarshal(n.Data, &d))
		return n, d
	}
	for _, id := range []string{"evt_1/webhook", "evt_2/webhook", "evt_4/webhook", "evt_4/sms"} {
		if _, d := get(id); d["resident_url"] != nil || d["code"] != nil {
			t.Errorf("%s carries code %v / link %v", id, d["code"], d["resident_url"])
		}
	}
	if _, d := get("evt_3/webhook"); d["resident_url"] != link || d["code"] != "12345678" || d["qr"] == nil || d["external_id"] != "P-77" {
		t.Errorf("platform that delivers codes got %v, want resident_url %s with the code", d, link)
	}
	for _, id := range []string{"evt_1/sms", "evt_2/sms"} {
		n, d := get(id)
		if d["resident_url"] != link {
			t.Errorf("%s: resident_url %v", id, d["resident_url"])
		}
		text, err := notify.Text(n, time.UTC)
		must(t, err)
		lines := strings.Split(text, "\n")
		if len(lines) != 2 {
			t.Fatalf("%s: %q, want a Chinese and an English line", id, text)
		}
		for _, l := range lines {
			c, u := strings.Index(l, "12345678"), strings.Index(l, link)
			if c < 0 || u <= c || !strings.HasSuffix(l, link) {
				t.Errorf("%s: %q: want the link after the code", id, l)
			}
		}
		if !strings.Contains(lines[0], "取件页面：") || !strings.Contains(lines[1], "Pickup page: ") {
			t.Errorf("%s: %q", id, text)
		}
	}

	// Without a public URL the texts are as they always were.
	plain := &notify.MemQueue{}
	must(t, (&notify.Notifier{Outbox: plain}).Notify(ctx, loaded))
	n, _ := plain.Get(ctx, "evt_1/sms")
	text, err := notify.Text(n, time.UTC)
	must(t, err)
	if strings.Contains(text, "/r/") || strings.Contains(text, "Pickup page") || !strings.Contains(text, "Pickup code 12345678. Please collect by") {
		t.Errorf("text without public URL: %q", text)
	}
	// NoSMS: webhooks only.
	nosms := &notify.MemQueue{}
	must(t, (&notify.Notifier{Outbox: nosms, NoSMS: true}).Notify(ctx, loaded))
	if st, _ := nosms.Stats(ctx); st.Pending != 1 {
		t.Errorf("NoSMS queued %d, want the webhook only", st.Pending)
	}
}
