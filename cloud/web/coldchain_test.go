package web_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/cloud/web"
	"github.com/larder-lockers/larder/protocol"
)

// finish reports o picked up (or returned) by the edge, with the cold-chain record rec
// (nil: an edge of protocol 1.0).
func (f *fixture) finish(o cloud.Order, kind protocol.EventKind, rec *protocol.ColdChain) {
	f.t.Helper()
	f.seq++
	m := protocol.Message{Header: protocol.Header{ID: protocol.NewID(), Seq: f.seq, Time: f.clock.Now()},
		Type: protocol.TypeEvent, Body: protocol.Event{Kind: kind, Credential: protocol.CredPickup, Order: o.ID, ColdChain: rec}}
	if _, err := f.svc.ApplyEdgeEvent(f.ctx, site, m); err != nil {
		f.t.Fatal(err)
	}
}

// After pickup the resident page says how cold the food was kept, in Chinese and in
// English; before, it says nothing of it.
func TestResidentColdChain(t *testing.T) {
	chilled := cloud.Parcel{Size: protocol.SizeM, Zone: protocol.ZoneChilled}
	frozen := cloud.Parcel{Size: protocol.SizeS, Zone: protocol.ZoneFrozen}
	peak := func(c float64) *float64 { return &c }
	for _, tc := range []struct {
		name     string
		parcel   cloud.Parcel
		kind     protocol.EventKind
		rec      func(from, to time.Time) *protocol.ColdChain
		known    bool
		zh, en   string
		minutes  int
		missingM int
	}{
		{"kept cold", chilled, protocol.EventPickedUp, func(from, to time.Time) *protocol.ColdChain {
			return &protocol.ColdChain{From: from, To: to, LimitC: 8, PeakC: peak(4.5)}
		}, true, "全程冷藏，温度从未高于 8 °C。", "Kept cold throughout: never above 8 °C.", 0, 0},
		{"kept frozen", frozen, protocol.EventPickedUp, func(from, to time.Time) *protocol.ColdChain {
			return &protocol.ColdChain{From: from, To: to, LimitC: -15, PeakC: peak(-18)}
		}, true, "全程冷冻，温度从未高于 −15 °C。", "Kept frozen throughout: never above −15 °C.", 0, 0},
		{"minutes above", chilled, protocol.EventPickedUp, func(from, to time.Time) *protocol.ColdChain {
			return &protocol.ColdChain{From: from, To: to, LimitC: 8, AboveSeconds: 12*60 + 5, PeakC: peak(9.25)}
		}, true, "有 13 分钟高于 8 °C（最高 9.3 °C）。", "13 minutes above 8 °C (warmest 9.3 °C).", 13, 0},
		{"readings missing", chilled, protocol.EventPickedUp, func(from, to time.Time) *protocol.ColdChain {
			return &protocol.ColdChain{From: from, To: to, LimitC: 8, PeakC: peak(5), MissingSeconds: 60}
		}, true, "测量时温度从未高于 8 °C。有 1 分钟没有温度读数。", "Never above 8 °C when measured. No temperature reading for 1 minute.", 0, 1},
		{"returned, above and missing", chilled, protocol.EventExpiredRemoved, func(from, to time.Time) *protocol.ColdChain {
			return &protocol.ColdChain{From: from, To: to, LimitC: 8, AboveSeconds: 1, MissingSeconds: 600}
		}, true, "有 1 分钟高于 8 °C。有 10 分钟没有温度读数。", "1 minute above 8 °C. No temperature reading for 10 minutes.", 1, 10},
		{"a 1.0 edge", chilled, protocol.EventPickedUp, func(time.Time, time.Time) *protocol.ColdChain { return nil },
			false, "柜子没有报告这份订单的温度记录。", "The locker did not report a temperature record for this order.", 0, 0},
		{"an impossible record", chilled, protocol.EventPickedUp, func(from, to time.Time) *protocol.ColdChain {
			return &protocol.ColdChain{From: to, To: from, LimitC: 8}
		}, false, "柜子没有报告这份订单的温度记录。", "The locker did not report a temperature record for this order.", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			h := f.handler(web.Options{})
			o, code := f.order("cc-1", tc.parcel)
			o = f.load(o)
			get := func() web.ResidentOrder {
				t.Helper()
				w := do(h, "GET", "/r/api/orders/"+o.ID, "10.0.0.1", map[string]string{web.CodeHeader: code}, "")
				if w.Code != http.StatusOK {
					t.Fatalf("status %d: %s", w.Code, w.Body)
				}
				if strings.Contains(w.Body.String(), "cold_chain") != (o.State == cloud.StatePickedUp || o.State == cloud.StateReturned) {
					t.Errorf("cold_chain in the view of a %s order: %s", o.State, w.Body)
				}
				return decodeTo[web.ResidentOrder](t, w)
			}
			get()
			f.clock.Add(2 * time.Hour)
			f.finish(o, tc.kind, tc.rec(o.LoadedAt, f.clock.Now()))
			o, _ = f.svc.GetOrder(f.ctx, f.ops, o.ID)
			v := get().ColdChain
			if v == nil {
				t.Fatal("no cold chain after the order ended")
			}
			if v.Known != tc.known || v.ZH != tc.zh || v.EN != tc.en || v.AboveMinutes != tc.minutes || v.MissingMinutes != tc.missingM {
				t.Errorf("cold chain %+v, want known %v, %q / %q, %d min above, %d missing", v, tc.known, tc.zh, tc.en, tc.minutes, tc.missingM)
			}
		})
	}
	// The page shows the sentence of its language.
	h := newFixture(t).handler(web.Options{})
	if page := do(h, "GET", "/r/x", "10.0.0.2", nil, "").Body.String(); !strings.Contains(page, `id="cold-text"`) {
		t.Error("the resident page has no place for the cold chain")
	}
	if js := do(h, "GET", "/assets/resident.js", "10.0.0.2", nil, "").Body.String(); !strings.Contains(js, "v.cold_chain[L.lang]") {
		t.Error("the resident page does not show the cold chain in its language")
	}
}
