package web_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/larder-lockers/larder/cloud"
	lhttp "github.com/larder-lockers/larder/cloud/http"
	"github.com/larder-lockers/larder/cloud/web"
	"github.com/larder-lockers/larder/internal/browsertest"
	"github.com/larder-lockers/larder/protocol"
)

// The audit viewer with a filter applied, and the pickup-time report drawn as a chart,
// in headless Chromium against the real API; axe-core checks both.
func TestBrowserAuditAndReports(t *testing.T) {
	chrome, axe, root := browsertest.Deps(t)
	artifacts := filepath.Join(root, ".artifacts", "web")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	f.clock.Add(time.Since(t0).Truncate(time.Second) - 6*time.Hour) // the report's default period holds it all
	// Four orders, picked up 30 min, 2 h, 90 min and 5 h after loading.
	waits := []time.Duration{30 * time.Minute, 2 * time.Hour, 90 * time.Minute, 5 * time.Hour}
	for i, wait := range waits {
		o, _ := f.order("r-"+string(rune('a'+i)), cloud.Parcel{Size: protocol.SizeM, Zone: protocol.ZoneChilled})
		o = f.load(o)
		f.clock.Add(wait)
		f.seq++
		m := protocol.Message{Header: protocol.Header{ID: protocol.NewID(), Seq: f.seq, Time: f.clock.Now()}, Type: protocol.TypeEvent,
			Body: protocol.Event{Kind: protocol.EventPickedUp, Credential: protocol.CredPickup, Order: o.ID, Compartment: o.Slots[0].Compartment}}
		if _, err := f.svc.ApplyEdgeEvent(f.ctx, site, m); err != nil {
			t.Fatal(err)
		}
		f.clock.Add(10 * time.Minute)
	}
	ivan := cloud.Principal{Role: cloud.RoleOps, Subject: "ivan"}
	for _, o := range []struct {
		who    cloud.Principal
		door   int
		reason string
	}{{f.ops, 2, "resident locked out"}, {ivan, 2, "door stuck, checked with the resident"}, {ivan, 3, "cleaning"}, {f.ops, 4, "cleaning"}} {
		if _, err := f.svc.OpenCompartment(f.ctx, o.who, site, o.door, o.reason); err != nil {
			t.Fatal(err)
		}
	}

	h := f.handler(web.Options{PollEvery: 100 * time.Millisecond})
	mux := http.NewServeMux()
	mux.Handle("/", lhttp.New(lhttp.Options{Service: f.svc, Logger: f.log}))
	h.Mount(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer h.Close()

	p := browsertest.New(t, chrome, axe, artifacts, 1280, 900)
	p.Step = step
	p.Run(
		chromedp.Navigate(srv.URL+"/ops/"),
		chromedp.WaitVisible(chromedp.CSS(`#key`)),
		chromedp.SendKeys(chromedp.CSS(`#key`), f.opsKey),
		chromedp.Click(chromedp.CSS(`#signin-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#nav a[href="#/audit"]`)),
		chromedp.Click(chromedp.CSS(`#nav a[href="#/audit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#audit-body tr`)),
		chromedp.SendKeys(chromedp.CSS(`#audit-compartment`), "2"),
		chromedp.SendKeys(chromedp.CSS(`#audit-actor`), "ivan"),
		chromedp.Click(chromedp.CSS(`#audit-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#audit-status`)),
	)
	rows := func() []string {
		return browsertest.Eval[[]string](p, `[...document.querySelectorAll('#audit-body tr')].map(tr => [...tr.cells].map(td => td.textContent).slice(1).join('|'))`)
	}
	deadline := time.Now().Add(step)
	for len(rows()) != 1 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	want := site + "|2|remote_open|ivan (ops)|ops_remote|door stuck, checked with the resident|"
	if got := rows(); len(got) != 1 || got[0] != want {
		t.Errorf("audit viewer filtered by door 2 and ivan shows %q, want [%q]", got, want)
	}
	p.Screenshot("ops-audit")
	p.Accessible("ops audit viewer")

	p.Run(
		chromedp.Navigate(srv.URL+"/ops/#/reports/pickup-time"),
		chromedp.WaitVisible(chromedp.CSS(`#report-chart rect[data-series]`)),
	)
	// The histogram's bars, left to right: under 1 h, 1–4 h, 4–12 h, 12–24 h, over 24 h.
	bars := browsertest.Eval[[]string](p, `[...document.querySelectorAll('#report-chart rect[data-series]')].map(r => r.dataset.series + '=' + r.querySelector('title').textContent.split(': ')[1])`)
	wantBars := []string{"under_1h=1 orders", "1h_to_4h=2 orders", "4h_to_12h=1 orders", "12h_to_24h=0 orders", "over_24h=0 orders"}
	if strings.Join(bars, " ") != strings.Join(wantBars, " ") {
		t.Errorf("pickup-time chart bars %v, want %v", bars, wantBars)
	}
	table := p.Text(`#report-table tbody`)
	if !strings.Contains(table, site) || !strings.Contains(table, "veggie") {
		t.Errorf("report table %q does not name the site and the platform", table)
	}
	p.Screenshot("ops-report-pickup-time")
	p.Accessible("ops report chart")
	p.Run(
		chromedp.SetValue(chromedp.CSS(`#report-name`), "utilisation"),
		chromedp.Click(chromedp.CSS(`#report-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#report-chart rect[data-series="occupied_ratio"]`)),
	)
	p.Screenshot("ops-report-utilisation")
	p.Accessible("ops utilisation chart")
	p.NoProblems("ops audit and reports")
}
