package cloud_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/larder-lockers/larder/cloud"
	lhttp "github.com/larder-lockers/larder/cloud/http"
	"github.com/larder-lockers/larder/protocol"
)

// readCounter is the real store, counting the keys its read-only transactions visit in
// the audit buckets.
type readCounter struct {
	cloud.Store
	visited atomic.Int64
}

func (s *readCounter) View(ctx context.Context, fn func(cloud.Tx) error) error {
	return s.Store.View(ctx, func(tx cloud.Tx) error { return fn(countedTx{tx, s}) })
}

type countedTx struct {
	cloud.Tx
	s *readCounter
}

func (t countedTx) Range(bucket, from, to string, fn func(string, []byte) bool) error {
	return t.Tx.Range(bucket, from, to, func(k string, v []byte) bool {
		if strings.HasPrefix(bucket, "audit") {
			t.s.visited.Add(1)
		}
		return fn(k, v)
	})
}

func (t countedTx) Scan(bucket, prefix string, fn func(string, []byte) bool) error {
	return t.Tx.Scan(bucket, prefix, func(k string, v []byte) bool {
		if strings.HasPrefix(bucket, "audit") {
			t.s.visited.Add(1)
		}
		return fn(k, v)
	})
}

type auditAPI struct {
	t   *testing.T
	srv *httptest.Server
	key string
}

func (a auditAPI) get(q url.Values, accept string) (int, http.Header, []byte) {
	a.t.Helper()
	req, _ := http.NewRequest("GET", a.srv.URL+"/v1/audit?"+q.Encode(), nil)
	req.Header.Set("Authorization", "Bearer "+a.key)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, b
}

func (a auditAPI) entries(q url.Values) ([]cloud.AuditEntry, string) {
	a.t.Helper()
	status, _, body := a.get(q, "")
	if status != 200 {
		a.t.Fatalf("audit?%s: %d %s", q.Encode(), status, body)
	}
	var out struct {
		Entries []cloud.AuditEntry `json:"entries"`
		Next    string             `json:"next"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		a.t.Fatal(err)
	}
	return out.Entries, out.Next
}

func TestAuditFiltersAndExport(t *testing.T) {
	e := newEnv(t)
	comps := bank(2, []protocol.Zone{protocol.ZoneChilled}, []protocol.Size{protocol.SizeS, protocol.SizeM})
	e.site("yard-a", nil, comps)
	e.site("yard-b", nil, comps)
	olga := cloud.Principal{Role: cloud.RoleOps, Subject: "olga"}
	ivan := cloud.Principal{Role: cloud.RoleOps, Subject: "ivan"}
	_, key, err := e.svc.CreateKey(e.ctx, e.admin, cloud.KeyInput{Role: cloud.RoleOps, Subject: "olga"})
	if err != nil {
		t.Fatal(err)
	}
	tricky := `=HYPERLINK("http://x"), said "the resident"`
	start := e.clock.Now()
	// Each site's log starts with site_created. Then yard-a: 300 remote opens; yard-b: 3, one with a reason a spreadsheet would run.
	for i := range 300 {
		e.clock.Add(time.Minute)
		if _, err := e.svc.OpenCompartment(e.ctx, olga, "yard-a", 1+i%4, "stuck door "+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	e.clock.Add(time.Minute)
	mid := e.clock.Now()
	for i, who := range []cloud.Principal{ivan, olga, ivan} {
		e.clock.Add(time.Minute)
		reason := "Resident LOCKED out"
		if i == 1 {
			reason = tricky
		}
		if _, err := e.svc.OpenCompartment(e.ctx, who, "yard-b", 2+i, reason); err != nil {
			t.Fatal(err)
		}
	}
	e.clock.Add(time.Minute)
	e.mustEvent("yard-b", protocol.Event{Kind: protocol.EventUncommandedOpen, Credential: protocol.CredNone, Compartment: 3})

	counter := &readCounter{Store: e.db}
	svc := cloud.New(cloud.Options{Store: counter, Now: e.clock.Now})
	srv := httptest.NewServer(lhttp.New(lhttp.Options{Service: svc}))
	defer srv.Close()
	api := auditAPI{t, srv, key}

	actors := func(es []cloud.AuditEntry) string {
		var s []string
		for _, e := range es {
			s = append(s, e.Actor+":"+e.Action+":"+strconv.Itoa(e.Compartment))
		}
		return strings.Join(s, " ")
	}
	for _, c := range []struct {
		name string
		q    url.Values
		want string
	}{
		{"site", url.Values{"site": {"yard-b"}}, "root:site_created:0 ivan:remote_open:2 olga:remote_open:3 ivan:remote_open:4 edge:uncommanded_open:3"},
		{"site and compartment", url.Values{"site": {"yard-b"}, "compartment": {"3"}}, "olga:remote_open:3 edge:uncommanded_open:3"},
		{"actor", url.Values{"site": {"yard-b"}, "actor": {"ivan"}}, "ivan:remote_open:2 ivan:remote_open:4"},
		{"reason, ignoring case", url.Values{"reason": {"locked OUT"}}, "ivan:remote_open:2 ivan:remote_open:4"},
		{"credential", url.Values{"site": {"yard-b"}, "credential": {"none"}}, "edge:uncommanded_open:3"},
		{"time", url.Values{"since": {mid.Add(2 * time.Minute).Format(time.RFC3339)}, "until": {mid.Add(3 * time.Minute).Format(time.RFC3339)}},
			"olga:remote_open:3 ivan:remote_open:4"},
	} {
		got, _ := api.entries(c.q)
		if actors(got) != c.want {
			t.Errorf("%s: got %s, want %s", c.name, actors(got), c.want)
		}
	}

	t.Run("one site's log reads only that site's entries", func(t *testing.T) {
		counter.visited.Store(0)
		api.entries(url.Values{"site": {"yard-b"}})
		if n := counter.visited.Load(); n != 5 {
			t.Errorf("reading yard-b's 5 entries visited %d audit keys, want 5 (yard-a has 301)", n)
		}
		counter.visited.Store(0)
		api.entries(url.Values{"since": {mid.Format(time.RFC3339)}})
		if n := counter.visited.Load(); n != 4 {
			t.Errorf("reading the 4 entries since %s visited %d audit keys, want 4", mid, n)
		}
	})

	t.Run("pages", func(t *testing.T) {
		var all []cloud.AuditEntry
		q := url.Values{"site": {"yard-a"}, "limit": {"70"}}
		for range 10 {
			page, next := api.entries(q)
			all = append(all, page...)
			if next == "" {
				break
			}
			q.Set("after", next)
		}
		if len(all) != 301 {
			t.Fatalf("paged through %d entries of yard-a, want 301", len(all))
		}
		for i, e := range all[1:] {
			if want := "stuck door " + strconv.Itoa(i); e.Reason != want {
				t.Fatalf("entry %d: reason %q, want %q (pages overlap or skip)", i, e.Reason, want)
			}
		}
	})

	t.Run("CSV", func(t *testing.T) {
		for _, ask := range []struct {
			q      url.Values
			accept string
		}{{url.Values{"site": {"yard-b"}, "format": {"csv"}}, ""}, {url.Values{"site": {"yard-b"}}, "text/csv"}} {
			status, hdr, body := api.get(ask.q, ask.accept)
			if status != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/csv") {
				t.Fatalf("CSV: %d %s %s", status, hdr.Get("Content-Type"), body)
			}
			recs, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"id", "time", "site", "actor", "role", "action", "compartment", "order", "reason", "credential", "command"}
			if diff := cmp.Diff(want, recs[0]); diff != "" {
				t.Errorf("header (-want +got):\n%s", diff)
			}
			if len(recs) != 6 {
				t.Fatalf("CSV has %d records, want a header and 5", len(recs))
			}
			if got := recs[3][8]; got != "'"+tricky {
				t.Errorf("reason cell %q, want the text with a leading quote %q", got, "'"+tricky)
			}
			if got := recs[3][:7]; got[3] != "olga" || got[5] != "remote_open" || got[6] != "3" || got[2] != "yard-b" {
				t.Errorf("row %v", got)
			}
		}
		// All of yard-a (301) comes out without paging.
		_, _, body := api.get(url.Values{"site": {"yard-a"}, "format": {"csv"}}, "")
		if recs, _ := csv.NewReader(strings.NewReader(string(body))).ReadAll(); len(recs) != 302 {
			t.Errorf("yard-a's export has %d records, want 302", len(recs))
		}
	})

	t.Run("bad input", func(t *testing.T) {
		for _, q := range []url.Values{
			{"compartment": {"0"}}, {"compartment": {"x"}}, {"credential": {"password"}},
			{"site": {"no such/site"}}, {"since": {"yesterday"}}, {"limit": {"5000"}},
			{"since": {mid.Format(time.RFC3339)}, "until": {start.Format(time.RFC3339)}},
		} {
			if status, _, body := api.get(q, ""); status != 400 {
				t.Errorf("audit?%s: %d %s, want 400", q.Encode(), status, body)
			}
		}
	})

	t.Run("a store from before the site index gets it on start", func(t *testing.T) {
		err := e.db.Update(e.ctx, func(tx cloud.Tx) error {
			var keys []string
			tx.Scan("audit_site", "", func(k string, _ []byte) bool { keys = append(keys, k); return true })
			for _, k := range keys {
				if err := tx.Delete("audit_site", k); err != nil {
					return err
				}
			}
			return tx.Delete("meta", "audit_site_indexed")
		})
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := api.entries(url.Values{"site": {"yard-b"}}); len(got) != 0 {
			t.Fatalf("without the index: %d entries", len(got))
		}
		if _, err := svc.Resume(e.ctx); err != nil {
			t.Fatal(err)
		}
		if got, _ := api.entries(url.Values{"site": {"yard-b"}}); len(got) != 5 {
			t.Errorf("after Resume yard-b has %d entries, want 5", len(got))
		}
	})
}
