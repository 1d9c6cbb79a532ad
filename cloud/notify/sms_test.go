package notify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/cloud/notify"
)

// gateway is an SMS gateway: it records {to, text} and answers with the scripted
// statuses (then 200).
type gateway struct {
	mu     sync.Mutex
	script []int
	sent   []struct{ To, Text string }
	auth   []string
	keys   []string // Idempotency-Key of each request
}

func (g *gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var m struct{ To, Text string }
	json.NewDecoder(r.Body).Decode(&m)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.auth = append(g.auth, r.Header.Get("Authorization"))
	g.keys = append(g.keys, r.Header.Get(notify.IdempotencyHeader))
	status := http.StatusOK
	if len(g.script) > 0 {
		status, g.script = g.script[0], g.script[1:]
	}
	if status == http.StatusOK {
		g.sent = append(g.sent, m)
	}
	w.WriteHeader(status)
}

func smsRig(t *testing.T, gwScript []int, logs *bytes.Buffer) (*rig, *gateway) {
	gw := &gateway{script: gwScript}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	r := newRig(t, nil, func(c *notify.WorkerConfig) {
		c.Senders[notify.ChannelSMS] = &notify.SMS{URL: srv.URL, Token: "gw-token", Location: time.UTC}
		if logs != nil {
			c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
	})
	return r, gw
}

// resident's order has its code delivered by the cloud, by SMS.
var resident = func() cloud.Notification {
	o := order
	o.Recipient = &cloud.Recipient{Phone: "+8613800001234"}
	return o
}()

func TestSMSAndReminder(t *testing.T) {
	var logs bytes.Buffer
	r, gw := smsRig(t, []int{500}, &logs)
	ctx := context.Background()
	loaded := resident
	loaded.Code = "482913"
	r.notice(t, cloud.NoteLoaded, loaded)

	r.round(t) // loaded: webhook delivered, SMS refused once by the gateway
	if n, _ := r.q.Get(ctx, "o-42/loaded/sms"); n.State != notify.StatePending || n.LastError != "HTTP 500" {
		t.Fatalf("sms after a 500: %+v", n)
	}
	r.clk.Advance(time.Minute)
	r.round(t)
	if len(gw.sent) != 1 {
		t.Fatalf("gateway got %d messages", len(gw.sent))
	}
	msg := gw.sent[0]
	if msg.To != resident.Recipient.Phone || !strings.Contains(msg.Text, "482913") || !strings.Contains(msg.Text, "取件码") ||
		!strings.Contains(msg.Text, "Pickup code") || !strings.Contains(msg.Text, "door 7") || !strings.Contains(msg.Text, "5月5日 09:00（UTC）") || !strings.Contains(msg.Text, "5 May 09:00 (UTC)") {
		t.Fatalf("loaded SMS %+v", msg)
	}
	if gw.auth[0] != "Bearer gw-token" {
		t.Fatalf("auth %q", gw.auth[0])
	}
	// The refused attempt and its retry carry the same key: the gateway can deduplicate.
	if want := []string{"o-42/loaded/sms", "o-42/loaded/sms"}; !slices.Equal(gw.keys, want) {
		t.Fatalf("idempotency keys %q, want %q", gw.keys, want)
	}
	var data notify.EventData
	json.Unmarshal(r.recv.events[0].Data, &data)
	if data.Code != "" {
		t.Fatalf("the cloud delivers the code, yet the platform got %q", data.Code)
	}
	if n, _ := r.q.Get(ctx, "o-42/loaded/sms"); n.Data != nil {
		t.Fatal("delivered SMS still holds its data (the code)")
	}

	// The domain's reminder (its sweep decides when): sent without the code.
	r.clk.Advance(12 * time.Hour)
	r.notice(t, cloud.NoteReminder, resident)
	r.round(t)
	if len(gw.sent) != 2 || strings.Contains(gw.sent[1].Text, "482913") || !strings.Contains(gw.sent[1].Text, "Reminder") {
		t.Fatalf("reminder SMS %+v", gw.sent)
	}
	if strings.Contains(logs.String(), "482913") || strings.Contains(logs.String(), "13800001234") {
		t.Fatalf("logs leak the code or the phone:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "o-42/loaded/sms") {
		t.Fatalf("logs say nothing useful:\n%s", logs.String())
	}
}

// TestSMSLocalTime: a site in Asia/Shanghai is told its deadline in Beijing time, named
// so, not in the server's UTC; the platform's webhook carries the zone and the local
// deadline.
func TestSMSLocalTime(t *testing.T) {
	r, gw := smsRig(t, nil, nil)
	loaded := resident
	loaded.Code = "482913"
	loaded.TimeZone = "Asia/Shanghai"
	r.notice(t, cloud.NoteLoaded, loaded) // expires 2026-05-05 09:00 UTC
	r.round(t)
	if len(gw.sent) != 1 {
		t.Fatalf("gateway got %d messages", len(gw.sent))
	}
	for _, want := range []string{"请于5月5日 17:00（北京时间）前取件", "Please collect by 5 May 17:00 (Beijing time)."} {
		if !strings.Contains(gw.sent[0].Text, want) {
			t.Errorf("SMS %q lacks %q", gw.sent[0].Text, want)
		}
	}
	var data notify.EventData
	json.Unmarshal(r.recv.events[0].Data, &data)
	if data.TimeZone != "Asia/Shanghai" || data.ExpiresLocal != "2026-05-05T17:00:00+08:00" {
		t.Errorf("webhook data: time_zone %q, expires_local %q", data.TimeZone, data.ExpiresLocal)
	}
}

func TestLocalTime(t *testing.T) {
	at := time.Date(2026, 12, 4, 10, 30, 0, 0, time.UTC)
	load := func(name string) *time.Location {
		l, err := time.LoadLocation(name)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	for _, c := range []struct {
		loc    *time.Location
		zh, en string
	}{
		{load("Asia/Shanghai"), "12月4日 18:30（北京时间）", "4 Dec 18:30 (Beijing time)"},
		{load("Asia/Tokyo"), "12月4日 19:30（UTC+9）", "4 Dec 19:30 (UTC+9)"},
		{load("Asia/Kolkata"), "12月4日 16:00（UTC+5:30）", "4 Dec 16:00 (UTC+5:30)"},
		{load("America/New_York"), "12月4日 05:30（UTC-5）", "4 Dec 05:30 (UTC-5)"},
		{nil, "12月4日 10:30（UTC）", "4 Dec 10:30 (UTC)"},
	} {
		if got := notify.LocalTime(at, c.loc, "zh"); got != c.zh {
			t.Errorf("%v zh: got %q, want %q", c.loc, got, c.zh)
		}
		if got := notify.LocalTime(at, c.loc, "en"); got != c.en {
			t.Errorf("%v en: got %q, want %q", c.loc, got, c.en)
		}
	}
}

func TestTextLanguages(t *testing.T) {
	data, _ := json.Marshal(notify.EventData{Order: "o-1", Site: "s", Compartments: []int{3, 4}, Code: "111222",
		ExpiresAt: time.Date(2026, 1, 2, 18, 30, 0, 0, time.UTC)})
	n := notify.Notification{Kind: notify.KindLoaded, Data: data}
	for _, c := range []struct {
		lang     string
		want     []string
		mustLack []string
	}{
		{"zh", []string{"取件码 111222", "3, 4号柜门", "1月2日 18:30（UTC）"}, []string{"Pickup"}},
		{"en", []string{"Pickup code 111222", "door 3, 4"}, []string{"取件码"}},
		{"", []string{"取件码 111222", "Pickup code 111222"}, nil},
	} {
		n.Lang = c.lang
		text, err := notify.Text(n, time.UTC)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range c.want {
			if !strings.Contains(text, w) {
				t.Errorf("lang %q: %q lacks %q", c.lang, text, w)
			}
		}
		for _, w := range c.mustLack {
			if strings.Contains(text, w) {
				t.Errorf("lang %q: %q has %q", c.lang, text, w)
			}
		}
	}
	kinds := []notify.Kind{notify.KindExpired, notify.KindCompromised,
		notify.KindCodeIssued, notify.KindReassigned, notify.KindExtended, notify.KindCodeInvalidated, notify.KindCancelled, notify.KindReminder}
	for _, k := range kinds {
		if _, err := notify.Text(notify.Notification{Kind: k, Data: data}, nil); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
	if text, err := notify.Text(notify.Notification{Kind: notify.KindLoaded, Data: []byte(`{"order":"o"}`)}, nil); err != nil || strings.Contains(text, "取件码 ") {
		t.Errorf("loaded text without a code: %q, %v", text, err)
	}
	if _, err := notify.Text(notify.Notification{Kind: notify.KindCodeIssued, Data: []byte(`{"order":"o"}`)}, nil); err == nil {
		t.Error("code notice without a code")
	}
	if _, err := notify.Text(notify.Notification{Kind: notify.KindPickedUp, Data: data}, nil); err == nil {
		t.Error("an SMS for a platform-only notice")
	}
}
