package notify_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/cloud/bolt"
	"github.com/larder-lockers/larder/cloud/notify"
	"github.com/larder-lockers/larder/protocol"
)

// The crash test's child process and its store.
const (
	crashChildEnv = "LARDER_NOTIFY_CRASH_CHILD"
	crashPublic   = "https://lockers.example"
	crashPlatform = "veggie"
	crashSites    = 4
)

var crashKey = []byte("0123456789abcdef0123456789abcdef")

// openCrashService opens the store in dir with cloudd's wiring of the notifier: the
// sealed BoltQueue in the same bbolt file, as the service's transactional Notifier.
func openCrashService(t testing.TB, dir string) (*cloud.Service, *bolt.DB, *notify.BoltQueue) {
	db, err := bolt.Open(filepath.Join(dir, "cloud.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	q, err := notify.NewBoltQueue(db, "notify", crashKey)
	if err != nil {
		t.Fatal(err)
	}
	svc := cloud.New(cloud.Options{Store: db, Notifier: &notify.Notifier{Outbox: q, PublicURL: crashPublic}})
	return svc, db, q
}

// crashChild is the process the test kills: on crashSites sites at once it creates an
// order, loads it and picks it up, over and over, on a durable store, and prints each
// step the service acknowledged ("created|loaded|picked <order>"). It never delivers a
// notification (no worker, no Service.Run): whatever the parent finds delivered later
// came from the outbox on disk.
func crashChild(t *testing.T, dir string) {
	svc, _, _ := openCrashService(t, dir)
	ctx := context.Background()
	admin := cloud.Principal{Role: cloud.RoleAdmin, Subject: "root"}
	plat := cloud.Principal{Role: cloud.RolePlatform, Subject: crashPlatform}
	var comps []protocol.Compartment
	for i := range 8 {
		comps = append(comps, protocol.Compartment{Number: i + 1, Size: protocol.SizeM, Zone: protocol.ZoneChilled, HeightCM: 60, Lock: i})
	}
	var out sync.Mutex
	ack := func(step, order string) {
		out.Lock()
		fmt.Printf("%s %s\n", step, order)
		out.Unlock()
	}
	var wg sync.WaitGroup
	for s := range crashSites {
		site := fmt.Sprintf("yard-%d", s)
		name := "Yard " + site
		if _, err := svc.CreateSite(ctx, admin, cloud.SiteInput{ID: site, Name: &name}); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.ApplyBirth(ctx, site, time.Now(), protocol.Birth{Software: "crash", Compartments: comps}); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var seq uint64
			event := func(ev protocol.Event) error {
				seq++
				_, err := svc.ApplyEdgeEvent(ctx, site, protocol.Message{Header: protocol.Header{ID: protocol.NewID(), Seq: seq, Time: time.Now()},
					Type: protocol.TypeEvent, Body: ev})
				return err
			}
			for i := 0; ; i++ {
				now := time.Now()
				rc, err := svc.CreateOrder(ctx, plat, fmt.Sprintf("%s-%d", site, i), cloud.OrderRequest{ExternalID: fmt.Sprintf("%s-%d", site, i),
					Site: site, Recipient: cloud.Recipient{Phone: "+8613800138000"}, Parcels: []cloud.Parcel{{Size: protocol.SizeS, Zone: protocol.ZoneChilled}},
					Window: cloud.Window{Start: now, End: now.Add(2 * time.Hour)}})
				if err != nil {
					t.Error(err)
					return
				}
				id := rc.Order.ID
				ack("created", id)
				if err := event(protocol.Event{Kind: protocol.EventLoaded, Credential: protocol.CredDriver, Order: id, Compartment: rc.Order.Slots[0].Compartment}); err != nil {
					t.Error(err)
					return
				}
				ack("loaded", id)
				if err := event(protocol.Event{Kind: protocol.EventPickedUp, Credential: protocol.CredPickup, Order: id}); err != nil {
					t.Error(err)
					return
				}
				ack("picked", id)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done: // only on errors
	case <-time.After(time.Minute): // the parent never came to kill us
	}
	os.Exit(3)
}

// hub records what the worker delivers: signed CloudEvents and SMS.
type hub struct {
	t      *testing.T
	mu     sync.Mutex
	events []notify.CloudEvent
	texts  []string
}

func (h *hub) webhook(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := notify.Verify(secret, r.Header.Get(notify.SignatureHeader), body, time.Now(), 0); err != nil {
		h.t.Errorf("webhook: %v", err)
	}
	var ev notify.CloudEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		h.t.Errorf("webhook: %v", err)
	}
	h.mu.Lock()
	h.events = append(h.events, ev)
	h.mu.Unlock()
}

func (h *hub) sms(w http.ResponseWriter, r *http.Request) {
	var m struct{ To, Text string }
	if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
		h.t.Errorf("sms: %v", err)
	}
	h.mu.Lock()
	h.texts = append(h.texts, m.Text)
	h.mu.Unlock()
}

// TestCrashLosesNoNotice kills (SIGKILL) a process that is committing order changes at
// full speed and has never delivered a notification, reopens its store, runs the
// delivery worker, and checks that every change that committed — acknowledged or not —
// has its notices delivered, each exactly once, and that the resident's code arrived
// with its link. Before notices were written in the domain's transaction, every notice
// still in memory at the kill was lost.
func TestCrashLosesNoNotice(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(t, dir)
		return
	}
	if testing.Short() {
		t.Skip("starts and kills a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashLosesNoNotice$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]string{} // order → last acknowledged step
	sc := bufio.NewScanner(stdout)
	steps := 0
	for steps < 240 && sc.Scan() {
		step, order, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		acked[order] = step
		steps++
	}
	// Kill it mid-stride: its goroutines are inside transactions and between commits
	// and replies right now.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, stdout)
	cmd.Wait()
	if steps < 240 {
		t.Fatalf("the child acknowledged only %d steps before it ended", steps)
	}

	svc, db, q := openCrashService(t, dir)
	defer db.Close()
	ctx := context.Background()
	if err := db.Check(); err != nil {
		t.Fatalf("bbolt check after the kill: %v", err)
	}
	must(t, q.Check(ctx))
	h := &hub{t: t}
	hooks := httptest.NewServer(http.HandlerFunc(h.webhook))
	defer hooks.Close()
	smsgw := httptest.NewServer(http.HandlerFunc(h.sms))
	defer smsgw.Close()
	w, err := notify.NewWorker(notify.WorkerConfig{Queue: q, Senders: map[notify.Channel]notify.Sender{
		notify.ChannelWebhook: &notify.Webhook{Endpoints: notify.StaticEndpoints{crashPlatform: {URL: hooks.URL, Secret: secret}}},
		notify.ChannelSMS:     &notify.SMS{URL: smsgw.URL, Location: time.UTC},
	}})
	must(t, err)
	for {
		n, err := w.Round(ctx)
		must(t, err)
		if n == 0 {
			break
		}
	}
	if st, _ := q.Stats(ctx); st.Pending != 0 || st.Dead != 0 {
		t.Fatalf("outbox after delivery: %+v", st)
	}

	// What committed: every order in the store, and how far it got.
	orders, err := svc.ListOrders(ctx, cloud.Principal{Role: cloud.RoleOps, Subject: "test"}, cloud.OrderFilter{Limit: 1000})
	must(t, err)
	state := map[string]cloud.OrderState{}
	for _, o := range orders {
		state[o.ID] = o.State
	}
	rank := map[string]int{"created": 0, "loaded": 1, "picked": 2}
	stateRank := map[cloud.OrderState]int{cloud.StateAssigned: 0, cloud.StateLoaded: 1, cloud.StatePickedUp: 2}
	for id, step := range acked {
		st, ok := state[id]
		if !ok || stateRank[st] < rank[step] {
			t.Errorf("order %s: acknowledged %s, store says %q", id, step, st)
		}
	}

	// What was delivered: each CloudEvent id once, each notice of each order once.
	seen := map[string]bool{}
	got := map[string]map[string]int{} // order → event type → count
	for _, ev := range h.events {
		if seen[ev.ID] {
			t.Errorf("CloudEvent %s delivered twice", ev.ID)
		}
		seen[ev.ID] = true
		if got[ev.Subject] == nil {
			got[ev.Subject] = map[string]int{}
		}
		got[ev.Subject][strings.TrimPrefix(ev.Type, notify.TypePrefix)]++
	}
	wantTypes := [][]string{{"created"}, {"created", "loaded"}, {"created", "loaded", "picked_up"}}
	for id, st := range state {
		want := wantTypes[stateRank[st]]
		for _, typ := range want {
			if got[id][typ] != 1 {
				t.Errorf("order %s (%s): %d %q webhooks, want 1", id, st, got[id][typ], typ)
			}
		}
		if len(got[id]) != len(want) {
			t.Errorf("order %s (%s): webhooks %v, want %v", id, st, got[id], want)
		}
	}
	for id := range got {
		if _, ok := state[id]; !ok {
			t.Errorf("a notice about order %s, which never committed", id)
		}
	}

	// The residents' arrival texts: one per loaded order, with the code and its link.
	link := regexp.MustCompile(`取件码 (\d{8})，.*取件页面：` + regexp.QuoteMeta(crashPublic) + `/r/(ord_[0-9a-f]+)#c=(\d{8})\n`)
	texts := map[string]int{}
	for _, s := range h.texts {
		m := link.FindStringSubmatch(s)
		if m == nil || m[1] != m[3] {
			t.Errorf("arrival SMS without its code and link: %q", s)
			continue
		}
		texts[m[2]]++
	}
	loaded := 0
	for id, st := range state {
		if stateRank[st] >= 1 {
			loaded++
			if texts[id] != 1 {
				t.Errorf("order %s (%s): %d arrival texts, want 1", id, st, texts[id])
			}
		}
	}
	t.Logf("killed after %d acknowledged steps; %d orders committed (%d loaded); %d webhooks and %d texts delivered",
		steps, len(state), loaded, len(h.events), len(h.texts))
}

// TestNotifyTxCommitsWithTheChange: in a group commit (or bbolt's Batch), a function
// that fails after its notice was enqueued leaves no notice, the others' notices commit
// exactly once, and a transaction of another kind cannot host the outbox.
func TestNotifyTxCommitsWithTheChange(t *testing.T) {
	for _, mode := range []bolt.CommitMode{bolt.GroupCommit, bolt.BoltBatch} {
		t.Run(mode.String(), func(t *testing.T) {
			db, err := bolt.Open(filepath.Join(t.TempDir(), "cloud.db"), bolt.Options{NoSync: true, Mode: mode})
			must(t, err)
			defer db.Close()
			q, err := notify.NewBoltQueue(db, "notify", crashKey)
			must(t, err)
			var wakes sync.WaitGroup
			nt := &notify.Notifier{Outbox: q, Wake: func() { wakes.Done() }}
			ctx := context.Background()
			const n = 64
			wakes.Add(n / 2)
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					err := db.Update(ctx, func(tx cloud.Tx) error {
						if err := tx.Put("meta", fmt.Sprintf("k%03d", i), []byte("v")); err != nil {
							return err
						}
						note := cloud.Notification{Type: cloud.NoteCreated, ID: fmt.Sprintf("evt_%03d", i), Time: t0,
							Site: "s-1", Order: fmt.Sprintf("ord_%03d", i), Platform: "plat"}
						if err := nt.NotifyTx(tx, note); err != nil {
							return err
						}
						if i%2 == 1 {
							return errors.New("the change fails after its notice")
						}
						return nil
					})
					if (err != nil) != (i%2 == 1) {
						t.Errorf("update %d: %v", i, err)
					}
				}()
			}
			wg.Wait()
			wakes.Wait() // one wake per committed transaction that enqueued
			st, err := q.Stats(ctx)
			must(t, err)
			if st.Pending != n/2 {
				t.Errorf("%d notices pending, want %d", st.Pending, n/2)
			}
			for i := range n {
				_, err := q.Get(ctx, fmt.Sprintf("evt_%03d/webhook", i))
				if (err == nil) != (i%2 == 0) {
					t.Errorf("notice %d: %v (the change committed: %t)", i, err, i%2 == 0)
				}
			}
			must(t, q.Check(ctx))
			must(t, db.Check())

			// A transaction that is not bbolt's cannot host the outbox: the change fails.
			note := cloud.Notification{Type: cloud.NoteCreated, ID: "evt_x", Site: "s-1", Order: "ord_x", Platform: "plat"}
			if err := nt.NotifyTx(plainTx{}, note); err == nil {
				t.Error("NotifyTx over a non-bbolt transaction succeeded")
			}
			// Nor can a transaction of another bbolt file.
			other, err := bbolt.Open(filepath.Join(t.TempDir(), "other.db"), 0o600, &bbolt.Options{Timeout: time.Second})
			must(t, err)
			defer other.Close()
			err = other.Update(func(tx *bbolt.Tx) error {
				_, err := q.EnqueueBolt(tx, notify.Notification{ID: "x/webhook", Kind: notify.KindCreated, Channel: notify.ChannelWebhook, Target: "plat"})
				return err
			})
			if err == nil {
				t.Error("EnqueueTx in another database's transaction succeeded")
			}
		})
	}
}

// plainTx is a cloud.Tx of some other store.
type plainTx struct{}

func (plainTx) Get(string, string) []byte                            { return nil }
func (plainTx) Put(string, string, []byte) error                     { return nil }
func (plainTx) Delete(string, string) error                          { return nil }
func (plainTx) Scan(string, string, func(string, []byte) bool) error { return nil }
func (plainTx) Range(string, string, string, func(string, []byte) bool) error {
	return nil
}
func (plainTx) OnCommit(func()) {}
