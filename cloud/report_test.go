package cloud_test

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/larder-lockers/larder/cloud"
	lhttp "github.com/larder-lockers/larder/cloud/http"
	"github.com/larder-lockers/larder/protocol"
)

// did is the test's own record of what it did to one order, from which it computes
// every report figure without the report code.
type did struct {
	site, platform, zone string
	created, loaded      time.Time // loaded zero: never loaded
	closed               time.Time // picked up or returned; zero: still in the locker, or cancelled
	final                cloud.OrderState
	cancelled            bool
	cancelledAt          time.Time
	expired              bool // the deadline passed while it was in the locker
	compromised          bool
	record               *protocol.ColdChain // the cold-chain record sent at the end, nil: none
}

type opened struct {
	at                        time.Time
	site, actor, role, action string
}

// reportWorld drives orders of two platforms at two sites through the real domain with
// a fake clock and random fates, and records what it did.
type reportWorld struct {
	e      *env
	rng    *rand.Rand
	plats  map[string]cloud.Principal
	orders []did
	opens  []opened
	srv    *httptest.Server
	keys   map[string]string // who → API key
}

func newReportWorld(t *testing.T) *reportWorld {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("LARDER_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (LARDER_SEED=%d to replay)", seed, seed)
	e := newEnv(t)
	w := &reportWorld{e: e, rng: rand.New(rand.NewPCG(seed, 0)), keys: map[string]string{},
		plats: map[string]cloud.Principal{
			"veggie": {Role: cloud.RolePlatform, Subject: "veggie"},
			"fruity": {Role: cloud.RolePlatform, Subject: "fruity"}}}
	for _, s := range []string{"yard-a", "yard-b"} {
		// 4 chilled and 4 ambient compartments each.
		e.site(s, nil, bank(2, []protocol.Zone{protocol.ZoneChilled, protocol.ZoneAmbient}, []protocol.Size{protocol.SizeS, protocol.SizeM}))
	}
	for who, in := range map[string]cloud.KeyInput{"ops": {Role: cloud.RoleOps, Subject: "olga"},
		"veggie": {Role: cloud.RolePlatform, Subject: "veggie"}, "fruity": {Role: cloud.RolePlatform, Subject: "fruity"},
		"driver": {Role: cloud.RoleDriver, Subject: "dave"}} {
		_, key, err := e.svc.CreateKey(e.ctx, e.admin, in)
		if err != nil {
			t.Fatal(err)
		}
		w.keys[who] = key
	}
	w.srv = httptest.NewServer(lhttp.New(lhttp.Options{Service: e.svc}))
	t.Cleanup(w.srv.Close)
	return w
}

func (w *reportWorld) minutes(lo, hi int) time.Duration {
	return time.Duration(lo+w.rng.IntN(hi-lo+1)) * time.Minute
}

func (w *reportWorld) pick(xs ...string) string { return xs[w.rng.IntN(len(xs))] }

// one runs one order to the end fate says: 0 cancelled; 1, 2 compromised on the way;
// 3 to 6 taken in time; 7 to 9 past the deadline, and 9 left in the locker when waiting
// allows it (it keeps its compartment). back says whether a driver takes it back
// instead of the resident, record whether the edge sends a cold-chain record.
func (w *reportWorld) one(fate int, waiting, back, record bool) {
	e, t := w.e, w.e.t
	t.Helper()
	d := did{site: w.pick("yard-a", "yard-b"), platform: w.pick("veggie", "fruity"),
		zone: w.pick(string(protocol.ZoneChilled), string(protocol.ZoneAmbient))}
	p := w.plats[d.platform]
	req := e.orderReq(d.site, fmt.Sprintf("ext-%d", len(w.orders)), cloud.Parcel{Size: protocol.SizeS, Zone: protocol.Zone(d.zone)})
	rc, err := e.svc.CreateOrder(e.ctx, p, fmt.Sprintf("idem-%d", len(w.orders)), req)
	if err != nil {
		t.Fatal(err)
	}
	id, comp := rc.Order.ID, rc.Order.Slots[0].Compartment
	d.created = e.clock.Now()
	defer func() { w.orders = append(w.orders, d) }()

	if w.rng.IntN(4) == 0 || len(w.orders) == 1 { // the driver opens it from the phone first
		if _, err := e.svc.OpenForLoading(e.ctx, e.drv, id, comp); err != nil {
			t.Fatal(err)
		}
		w.opens = append(w.opens, opened{e.clock.Now(), d.site, "dave", "driver", "remote_open_loading"})
	}
	if fate == 0 {
		e.clock.Add(w.minutes(1, 30))
		if _, err := e.svc.CancelOrder(e.ctx, p, id, "customer changed their mind"); err != nil {
			t.Fatal(err)
		}
		d.final, d.cancelled, d.cancelledAt = cloud.StateCancelled, true, e.clock.Now()
		return
	}
	e.clock.Add(w.minutes(5, 60))
	e.mustEvent(d.site, protocol.Event{Kind: protocol.EventLoaded, Credential: protocol.CredDriver, Order: id, Compartment: comp})
	d.loaded = e.clock.Now()
	hold := 12 * time.Hour
	if d.zone == string(protocol.ZoneChilled) {
		hold = 24 * time.Hour
	}
	if fate <= 2 { // compromised on the way
		e.clock.Add(w.minutes(5, 60))
		e.mustEvent(d.site, protocol.Event{Kind: protocol.EventOrderCompromised, Credential: protocol.CredNone, Order: id, Compartment: comp, Seconds: 1900})
		d.compromised, d.final = true, cloud.StateCompromised
	}
	if fate >= 7 { // past the deadline: the sweep expires it
		e.clock.Add(hold + w.minutes(1, 120))
		if _, err := e.svc.Sweep(e.ctx); err != nil {
			t.Fatal(err)
		}
		d.expired = true
		if !d.compromised {
			d.final = cloud.StateExpired
		}
		if waiting && fate == 9 {
			return // left in the locker
		}
	} else {
		e.clock.Add(w.minutes(5, 600)) // well inside the 12 h hold
	}
	kind, cred, state := protocol.EventPickedUp, protocol.CredPickup, cloud.StatePickedUp
	if back {
		kind, cred, state = protocol.EventExpiredRemoved, protocol.CredDriver, cloud.StateReturned
	}
	if record { // a 1.1 edge sends a record; a 1.0 edge none
		d.record = &protocol.ColdChain{From: d.loaded, To: e.clock.Now(), LimitC: 8,
			AboveSeconds: float64(w.rng.IntN(3) * w.rng.IntN(150)), MissingSeconds: float64(w.rng.IntN(200))}
	}
	e.mustEvent(d.site, protocol.Event{Kind: kind, Credential: cred, Order: id, Compartment: comp, ColdChain: d.record})
	d.closed, d.final = e.clock.Now(), state
}

// opsOpen opens a door from the ops console.
func (w *reportWorld) opsOpen(actor string) {
	e := w.e
	site := w.pick("yard-a", "yard-b")
	p := cloud.Principal{Role: cloud.RoleOps, Subject: actor}
	if _, err := e.svc.OpenCompartment(e.ctx, p, site, 1+w.rng.IntN(8), "resident locked out, called the hotline"); err != nil {
		e.t.Fatal(err)
	}
	w.opens = append(w.opens, opened{e.clock.Now(), site, actor, "ops", "remote_open"})
}

// run runs n orders: first one of each fate, then random ones.
func (w *reportWorld) run(n int) {
	forced := []struct {
		fate               int
		back, record, wait bool
	}{{0, false, false, false}, {3, false, true, false}, {4, true, false, false}, {1, false, true, false},
		{2, true, false, false}, {7, false, true, false}, {8, true, true, false}, {9, false, false, true}}
	for i := range n {
		w.e.clock.Add(w.minutes(10, 90))
		if w.rng.IntN(5) == 0 || i == 0 {
			w.opsOpen(w.pick("olga", "ivan"))
		}
		if i < len(forced) {
			f := forced[i]
			w.one(f.fate, f.wait, f.back, f.record)
			continue
		}
		// At most a few expired orders wait at once: each keeps a compartment.
		w.one(w.rng.IntN(10), i%20 == 0, w.rng.IntN(3) == 0, w.rng.IntN(4) != 0)
	}
}

// fetch gets a report as JSON and as CSV (both ways of asking) and checks that the
// three agree; it returns the rows as strings.
func (w *reportWorld) fetch(who, name string, q url.Values) (status int, columns []string, rows [][]string) {
	t := w.e.t
	t.Helper()
	get := func(query, accept string) (*http.Response, []byte) {
		req, _ := http.NewRequest("GET", w.srv.URL+"/v1/reports/"+name+"?"+query, nil)
		req.Header.Set("Authorization", "Bearer "+w.keys[who])
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res, b
	}
	res, body := get(q.Encode(), "")
	if res.StatusCode != 200 {
		return res.StatusCode, nil, nil
	}
	var rep struct {
		Columns []string `json:"columns"`
		Rows    [][]any  `json:"rows"`
	}
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatalf("%s: %v: %s", name, err, body)
	}
	for _, r := range rep.Rows {
		var line []string
		for _, v := range r {
			switch v := v.(type) {
			case string:
				line = append(line, v)
			case float64:
				line = append(line, strconv.FormatFloat(v, 'f', -1, 64))
			default:
				t.Fatalf("%s: value %v (%T) is neither string nor number", name, v, v)
			}
		}
		rows = append(rows, line)
	}
	qc := url.Values{}
	for k, v := range q {
		qc[k] = v
	}
	qc.Set("format", "csv")
	for _, way := range []struct{ query, accept string }{{qc.Encode(), ""}, {q.Encode(), "text/csv"}} {
		res, body := get(way.query, way.accept)
		if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/csv") {
			t.Fatalf("%s as CSV: %d %s: %s", name, res.StatusCode, res.Header.Get("Content-Type"), body)
		}
		recs, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
		if err != nil {
			t.Fatalf("%s as CSV: %v", name, err)
		}
		if diff := cmp.Diff(rep.Columns, recs[0]); diff != "" {
			t.Errorf("%s: CSV header (-JSON +CSV):\n%s", name, diff)
		}
		if diff := cmp.Diff(rows, recs[1:], cmpEmpty); diff != "" {
			t.Errorf("%s: CSV rows (-JSON +CSV):\n%s", name, diff)
		}
	}
	return 200, rep.Columns, rows
}

var cmpEmpty = cmp.Transformer("nilIsEmpty", func(x [][]string) [][]string {
	if x == nil {
		return [][]string{}
	}
	return x
})

func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
func r2(v float64) float64 { return math.Round(v*100) / 100 }

type gkey struct{ site, platform string }

// groups splits the record by site and platform, keeping those keep selects.
func groups(ds []did, keep func(did) bool) ([]gkey, map[gkey][]did) {
	m := map[gkey][]did{}
	for _, d := range ds {
		if keep(d) {
			k := gkey{d.site, d.platform}
			m[k] = append(m[k], d)
		}
	}
	var ks []gkey
	for k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool {
		return ks[i].site < ks[j].site || ks[i].site == ks[j].site && ks[i].platform < ks[j].platform
	})
	return ks, m
}

// wantOrderReports computes the order reports from the record alone.
func wantOrderReports(ds []did, keep func(did) bool) map[string][][]string {
	out := map[string][][]string{}
	ks, m := groups(ds, keep)
	for _, k := range ks {
		var n, loaded, picked, returned, cancelled, inLocker, compromised, late, retLate, waiting int
		var pickups []time.Duration
		var closed, withRec, above int
		var aboveS, maxS, missS float64
		for _, d := range m[k] {
			n++
			if !d.loaded.IsZero() {
				loaded++
			}
			if d.compromised {
				compromised++
			}
			switch d.final {
			case cloud.StatePickedUp:
				picked++
				pickups = append(pickups, d.closed.Sub(d.loaded))
				if d.expired {
					late++
				}
			case cloud.StateReturned:
				returned++
				if d.expired {
					retLate++
				}
			case cloud.StateCancelled:
				cancelled++
			case cloud.StateExpired:
				waiting++
			}
			if d.closed.IsZero() && !d.cancelled {
				inLocker++
			}
			if !d.closed.IsZero() {
				closed++
				if d.record != nil {
					withRec++
					aboveS += d.record.AboveSeconds
					missS += d.record.MissingSeconds
					maxS = math.Max(maxS, d.record.AboveSeconds)
					if d.record.AboveSeconds > 0 {
						above++
					}
				}
			}
		}
		expired := 0
		for _, d := range m[k] {
			if d.expired {
				expired++
			}
		}
		row := func(vs ...any) []string {
			line := []string{k.site, k.platform}
			for _, v := range vs {
				switch v := v.(type) {
				case int:
					line = append(line, strconv.Itoa(v))
				case float64:
					line = append(line, num(v))
				}
			}
			return line
		}
		out["orders"] = append(out["orders"], row(n, loaded, picked, returned, cancelled, inLocker, compromised))
		out["expiry"] = append(out["expiry"], row(loaded, expired, late, returned, retLate, waiting))

		slices.Sort(pickups)
		rank := func(p float64) float64 {
			if len(pickups) == 0 {
				return 0
			}
			return r2(pickups[int(math.Ceil(p/100*float64(len(pickups))))-1].Minutes())
		}
		hist := make([]int, 5)
		for _, d := range pickups {
			switch {
			case d < time.Hour:
				hist[0]++
			case d < 4*time.Hour:
				hist[1]++
			case d < 12*time.Hour:
				hist[2]++
			case d < 24*time.Hour:
				hist[3]++
			default:
				hist[4]++
			}
		}
		maxP := 0.0
		if len(pickups) > 0 {
			maxP = r2(pickups[len(pickups)-1].Minutes())
		}
		out["pickup-time"] = append(out["pickup-time"], row(len(pickups), rank(50), rank(90), maxP, hist[0], hist[1], hist[2], hist[3], hist[4]))
		mean := 0.0
		if withRec > 0 {
			mean = aboveS / float64(withRec)
		}
		out["cold-chain"] = append(out["cold-chain"], row(closed, withRec, closed-withRec, above, r2(aboveS/60), r2(mean/60), r2(maxS/60), r2(missS/60), compromised))
	}
	return out
}

// wantUtilisation computes the utilisation rows over [from, end) from the record: 4
// compartments per zone at each site.
func wantUtilisation(ds []did, from, end time.Time, keep func(did) bool) [][]string {
	type zk struct{ site, zone string }
	held, occ := map[zk]time.Duration{}, map[zk]time.Duration{}
	clip := func(a, b time.Time) time.Duration {
		if a.Before(from) {
			a = from
		}
		if b.After(end) {
			b = end
		}
		if b.Before(a) {
			return 0
		}
		return b.Sub(a)
	}
	sites := map[string]bool{}
	for _, d := range ds {
		if !keep(d) {
			continue
		}
		stop := d.closed
		if d.cancelled {
			stop = d.cancelledAt
		}
		if stop.IsZero() {
			stop = end
		}
		k := zk{d.site, d.zone}
		if h := clip(d.created, stop); h > 0 {
			held[k] += h
			sites[d.site] = true
		}
		if !d.loaded.IsZero() {
			occ[k] += clip(d.loaded, stop)
		}
	}
	var rows [][]string
	capacity := 4 * end.Sub(from)
	for _, s := range []string{"yard-a", "yard-b"} {
		if !sites[s] {
			continue
		}
		for _, z := range []string{"chilled", "ambient"} {
			k := zk{s, z}
			rows = append(rows, []string{s, z, "4", num(r2(held[k].Hours())), num(r2(occ[k].Hours())),
				num(math.Round(float64(held[k])/float64(capacity)*1e4) / 1e4), num(math.Round(float64(occ[k])/float64(capacity)*1e4) / 1e4)})
		}
	}
	return rows
}

func TestReportsSeeded(t *testing.T) {
	w := newReportWorld(t)
	w.run(120)
	// The last two: one assigned, one loaded, both still there at the end.
	for range 2 {
		w.e.clock.Add(10 * time.Minute)
		req := w.e.orderReq("yard-a", fmt.Sprintf("ext-last-%d", len(w.orders)), cloud.Parcel{Size: protocol.SizeS, Zone: protocol.ZoneAmbient})
		rc, err := w.e.svc.CreateOrder(w.e.ctx, w.plats["veggie"], fmt.Sprintf("idem-last-%d", len(w.orders)), req)
		if err != nil {
			t.Fatal(err)
		}
		d := did{site: "yard-a", platform: "veggie", zone: "ambient", created: w.e.clock.Now(), final: cloud.StateAssigned}
		if len(w.orders)%2 == 0 {
			w.e.clock.Add(time.Minute)
			w.e.mustEvent("yard-a", protocol.Event{Kind: protocol.EventLoaded, Credential: protocol.CredDriver, Order: rc.Order.ID, Compartment: rc.Order.Slots[0].Compartment})
			d.loaded, d.final = w.e.clock.Now(), cloud.StateLoaded
		}
		w.orders = append(w.orders, d)
	}
	now := w.e.clock.Now()
	from, to := t0, now.Add(time.Hour)
	q := url.Values{"from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}}
	all := func(did) bool { return true }

	t.Run("ops sees every order", func(t *testing.T) {
		want := wantOrderReports(w.orders, all)
		for _, name := range []string{"orders", "expiry", "pickup-time", "cold-chain"} {
			_, _, got := w.fetch("ops", name, q)
			if diff := cmp.Diff(want[name], got, cmpEmpty); diff != "" {
				t.Errorf("%s (-want +got):\n%s", name, diff)
			}
		}
	})

	t.Run("a period counts the orders created in it", func(t *testing.T) {
		lo, hi := w.orders[20].created, w.orders[70].created // from inclusive, to exclusive
		in := func(d did) bool { return !d.created.Before(lo) && d.created.Before(hi) }
		qp := url.Values{"from": {lo.Format(time.RFC3339Nano)}, "to": {hi.Format(time.RFC3339Nano)}, "site": {"yard-b"}}
		_, _, got := w.fetch("ops", "orders", qp)
		want := wantOrderReports(w.orders, func(d did) bool { return in(d) && d.site == "yard-b" })["orders"]
		if diff := cmp.Diff(want, got, cmpEmpty); diff != "" {
			t.Errorf("orders of yard-b in [order 20, order 70) (-want +got):\n%s", diff)
		}
	})

	t.Run("utilisation", func(t *testing.T) {
		// A period from the middle: orders created before it still count for the time
		// they held a compartment in it.
		start := w.orders[len(w.orders)/2].created.Add(17 * time.Minute)
		qu := url.Values{"from": {start.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}}
		_, _, got := w.fetch("ops", "utilisation", qu)
		if diff := cmp.Diff(wantUtilisation(w.orders, start, now, all), got, cmpEmpty); diff != "" {
			t.Errorf("utilisation (-want +got):\n%s", diff)
		}
		_, _, got = w.fetch("veggie", "utilisation", qu)
		veggie := func(d did) bool { return d.platform == "veggie" }
		if diff := cmp.Diff(wantUtilisation(w.orders, start, now, veggie), got, cmpEmpty); diff != "" {
			t.Errorf("veggie's utilisation (-want +got):\n%s", diff)
		}
	})

	t.Run("remote opens by actor", func(t *testing.T) {
		count := map[[4]string]int{}
		for _, o := range w.opens {
			count[[4]string{o.site, o.actor, o.role, o.action}]++
		}
		var want [][]string
		for k, n := range count {
			want = append(want, append(k[:], strconv.Itoa(n)))
		}
		sort.Slice(want, func(i, j int) bool {
			a, b := want[i], want[j]
			return a[0]+"\x00"+a[1]+"\x00"+a[3] < b[0]+"\x00"+b[1]+"\x00"+b[3]
		})
		_, cols, got := w.fetch("ops", "remote-opens", q)
		if diff := cmp.Diff([]string{"site", "actor", "role", "action", "opens"}, cols); diff != "" {
			t.Errorf("columns: %s", diff)
		}
		if diff := cmp.Diff(want, got, cmpEmpty); diff != "" {
			t.Errorf("remote opens (-want +got):\n%s", diff)
		}
	})

	t.Run("a platform sees only its own orders", func(t *testing.T) {
		for _, plat := range []string{"veggie", "fruity"} {
			want := wantOrderReports(w.orders, func(d did) bool { return d.platform == plat })
			for _, name := range []string{"orders", "expiry", "pickup-time", "cold-chain"} {
				_, _, got := w.fetch(plat, name, q)
				if diff := cmp.Diff(want[name], got, cmpEmpty); diff != "" {
					t.Errorf("%s's %s (-want +got):\n%s", plat, name, diff)
				}
			}
		}
		other := url.Values{"from": q["from"], "to": q["to"], "platform": {"fruity"}}
		if status, _, _ := w.fetch("veggie", "orders", other); status != 403 {
			t.Errorf("veggie asking for fruity's orders: %d, want 403", status)
		}
		if status, _, _ := w.fetch("veggie", "remote-opens", q); status != 403 {
			t.Errorf("a platform asking for remote opens: %d, want 403", status)
		}
		if status, _, _ := w.fetch("driver", "orders", q); status != 403 {
			t.Errorf("a driver asking for a report: %d, want 403", status)
		}
		_, _, got := w.fetch("ops", "orders", other)
		want := wantOrderReports(w.orders, func(d did) bool { return d.platform == "fruity" })["orders"]
		if diff := cmp.Diff(want, got, cmpEmpty); diff != "" {
			t.Errorf("ops asking for fruity's orders (-want +got):\n%s", diff)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		for _, c := range []struct {
			name  string
			q     url.Values
			state int
		}{
			{"orders", url.Values{"to": q["to"]}, 400},
			{"orders", url.Values{"from": q["from"]}, 400},
			{"orders", url.Values{"from": q["to"], "to": q["from"]}, 400},
			{"orders", url.Values{"from": {"yesterday"}, "to": q["to"]}, 400},
			{"orders", url.Values{"from": {from.Format(time.RFC3339)}, "to": {from.Add(401 * 24 * time.Hour).Format(time.RFC3339)}}, 400},
			{"orders", url.Values{"from": q["from"], "to": q["to"], "site": {"no such/site"}}, 400},
			{"remote-opens", url.Values{"from": q["from"], "to": q["to"], "platform": {"veggie"}}, 400},
			{"revenue", q, 404},
		} {
			if status, _, _ := w.fetch("ops", c.name, c.q); status != c.state {
				t.Errorf("%s?%s: %d, want %d", c.name, c.q.Encode(), status, c.state)
			}
		}
	})
}
