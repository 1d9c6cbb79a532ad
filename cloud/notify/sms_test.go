package notify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/larder-lockers/larder/cloud/notify"
)

// gateway is an SMS gateway: it records {to, text} and answers with the scripted
// statuses (then 200).
type gateway struct {
	mu     sync.Mutex
	script []int
	sent   []struct{ To, Text string }
	auth   []string
}

func (g *gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var m struct{ To, Text string }
	json.NewDecoder(r.Body).Decode(&m)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.auth = append(g.auth, r.Header.Get("Authorization"))
	status := http.StatusOK
	if len(g.script) > 0 {
		status, g.script = g.script[0], g.script[1:]
	}
	if status == http.StatusOK {
		g.sent = append(g.sent, m)
	}
	w.WriteHeader(status)
}

// guard answers reminder checks from a table by order id; default: send.
type guard struct {
	mu       sync.Mutex
	pickedUp map[string]bool
	later    map[string]time.Time
	asked    int
}

func (g *guard) Reminder(_ context.Context, n notify.Notification) (bool, time.Time, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.asked++
	if g.pickedUp[n.Order] {
		return false, time.Time{}, nil
	}
	if t, ok := g.later[n.Order]; ok && n.NextTry.Before(t) {
		return false, t, nil
	}
	return true, time.Time{}, nil
}

func smsRig(t *testing.T, gwScript []int, logs *bytes.Buffer) (*rig, *gateway, *guard) {
	gw := &gateway{script: gwScript}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	g := &guard{pickedUp: map[string]bool{}, later: map[string]time.Time{}}
	r := newRig(t, nil, func(c *notify.WorkerConfig) {
		c.Senders[notify.ChannelSMS] = &notify.SMS{URL: srv.URL, Token: "gw-token", Location: time.UTC}
		c.Guard = g
		if logs != nil {
			c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
	})
	return r, gw, g
}

var resident = func() notify.Order {
	o := order
	o.Phone = "+8613800001234"
	return o
}()

func TestLoadedSchedulesRemindersExactlyOnce(t *testing.T) {
	r, _, _ := smsRig(t, nil, nil)
	ctx := context.Background()
	for range 2 { // a redelivered "loaded" event notifies once
		if err := r.sched.Loaded(ctx, resident); err != nil {
			t.Fatal(err)
		}
	}
	st, _ := r.q.Stats(ctx)
	if st.Pending != 6 {
		t.Fatalf("pending %d, want 6 (loaded, reminder 50 %%, reminder 90 %%, each by webhook and SMS)", st.Pending)
	}
	for _, c := range []struct {
		id  string
		due time.Time
	}{
		{"o-42/loaded/webhook", t0},
		{"o-42/loaded/sms", t0},
		{"o-42/reminder_50/webhook", t0.Add(12 * time.Hour)},
		{"o-42/reminder_50/sms", t0.Add(12 * time.Hour)},
		{"o-42/reminder_90/webhook", t0.Add(21*time.Hour + 36*time.Minute)},
		{"o-42/reminder_90/sms", t0.Add(21*time.Hour + 36*time.Minute)},
	} {
		n, err := r.q.Get(ctx, c.id)
		if err != nil || !n.Due.Equal(c.due) {
			t.Errorf("%s: due %v (%v), want %v", c.id, n.Due, err, c.due)
		}
	}
	if err := r.sched.Loaded(ctx, notify.Order{ID: "o-9", Platform: "plat"}); err == nil {
		t.Error("loaded without a window accepted")
	}
}

func TestSMSAndReminders(t *testing.T) {
	var logs bytes.Buffer
	r, gw, g := smsRig(t, []int{500}, &logs)
	ctx := context.Background()
	r.sched.Loaded(ctx, resident)

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
	if msg.To != resident.Phone || !strings.Contains(msg.Text, "482913") || !strings.Contains(msg.Text, "取件码") ||
		!strings.Contains(msg.Text, "Pickup code") || !strings.Contains(msg.Text, "door 7") || !strings.Contains(msg.Text, "05-05 09:00") {
		t.Fatalf("loaded SMS %+v", msg)
	}
	if gw.auth[0] != "Bearer gw-token" {
		t.Fatalf("auth %q", gw.auth[0])
	}
	var data notify.EventData
	json.Unmarshal(r.recv.events[0].Data, &data)
	if data.Code != "482913" {
		t.Fatalf("the platform asked for the code and got %q", data.Code)
	}
	if n, _ := r.q.Get(ctx, "o-42/loaded/sms"); n.Data != nil {
		t.Fatal("delivered SMS still holds its data (the code)")
	}

	// 50 %: sent without the code. The deadline was extended (an outage) before the
	// 90 % reminder, which moves; then the order is picked up, which cancels it.
	r.clk.Advance(12 * time.Hour)
	r.round(t)
	if len(gw.sent) != 2 || strings.Contains(gw.sent[1].Text, "482913") || !strings.Contains(gw.sent[1].Text, "Reminder") {
		t.Fatalf("reminder SMS %+v", gw.sent)
	}
	g.later["o-42"] = t0.Add(23 * time.Hour)
	r.clk.Advance(10 * time.Hour) // 22 h: the original 90 % time
	r.round(t)
	n, _ := r.q.Get(ctx, "o-42/reminder_90/sms")
	if n.State != notify.StatePending || !n.NextTry.Equal(t0.Add(23*time.Hour)) || n.Attempts != 0 {
		t.Fatalf("postponed reminder %+v", n)
	}
	g.pickedUp["o-42"] = true
	r.clk.Advance(time.Hour)
	r.round(t)
	for _, id := range []string{"o-42/reminder_90/sms", "o-42/reminder_90/webhook"} {
		if n, _ := r.q.Get(ctx, id); n.State != notify.StateCancelled {
			t.Fatalf("%s after pickup: %+v", id, n)
		}
	}
	if len(gw.sent) != 2 {
		t.Fatalf("gateway got %d messages, want 2", len(gw.sent))
	}
	if strings.Contains(logs.String(), "482913") || strings.Contains(logs.String(), "13800001234") {
		t.Fatalf("logs leak the code or the phone:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "o-42/loaded/sms") {
		t.Fatalf("logs say nothing useful:\n%s", logs.String())
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
		{"zh", []string{"取件码 111222", "3, 4号柜门", "01-02 18:30"}, []string{"Pickup"}},
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
	kinds := []notify.Kind{notify.KindReminder50, notify.KindReminder90, notify.KindExpired, notify.KindCompromised,
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
