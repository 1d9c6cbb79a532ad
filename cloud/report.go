package cloud

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/larder-lockers/larder/protocol"
)

// Reports are computed per request by a scan of the orders created in the report's
// period (and of the audit log, for remote opens), not by counters kept on commit: order
// ids sort by creation time, so the scan reads exactly the period's orders of the scope
// (all, a site, a platform), and the write path of every order stays as it is.
// docs/reports.md defines each report and gives the measurement behind this choice.

// ReportName names a report.
type ReportName string

// Reports.
const (
	ReportOrders      ReportName = "orders"       // orders by outcome
	ReportUtilisation ReportName = "utilisation"  // compartment time held and occupied, by zone
	ReportPickupTime  ReportName = "pickup-time"  // loading to pickup: percentiles, histogram
	ReportExpiry      ReportName = "expiry"       // expired and returned
	ReportColdChain   ReportName = "cold-chain"   // minutes out of temperature, compromised
	ReportRemoteOpens ReportName = "remote-opens" // remote opens by actor
)

// ReportNames lists every report.
func ReportNames() []ReportName {
	return []ReportName{ReportOrders, ReportUtilisation, ReportPickupTime, ReportExpiry, ReportColdChain, ReportRemoteOpens}
}

// ReportFilter is a report's period and scope. From is inclusive, To exclusive; both are
// required, at most maxReportPeriod apart. Site and Platform narrow the scope; a
// platform's report is always of its own orders.
type ReportFilter struct {
	From, To time.Time
	Site     string
	Platform string
}

const maxReportPeriod = 400 * 24 * time.Hour

// Report is a table: one row per group (site and platform, or site and zone, or site
// and actor), values in the order of Columns: strings, integers and numbers (rounded:
// ratios to 4 decimals, minutes and hours to 2), the same in JSON and CSV.
type Report struct {
	Name     ReportName `json:"name"`
	From     time.Time  `json:"from"`
	To       time.Time  `json:"to"`
	Site     string     `json:"site,omitempty"`
	Platform string     `json:"platform,omitempty"`
	Columns  []string   `json:"columns"`
	Rows     [][]any    `json:"rows"`
}

// Report computes report name over f (platform: its own orders; ops, admin: all).
func (s *Service) Report(ctx context.Context, p Principal, name ReportName, f ReportFilter) (Report, error) {
	if err := require(p, RolePlatform, RoleOps, RoleAdmin); err != nil {
		return Report{}, err
	}
	if p.Role == RolePlatform {
		if f.Platform != "" && f.Platform != p.Subject {
			return Report{}, Errorf(EForbidden, "a platform sees only its own orders")
		}
		f.Platform = p.Subject
	}
	switch {
	case !slices.Contains(ReportNames(), name):
		return Report{}, &Error{Code: ENotFound, Field: "name", Message: fmt.Sprintf("no report %q", name)}
	case f.From.IsZero():
		return Report{}, Invalid("from", "required")
	case f.To.IsZero():
		return Report{}, Invalid("to", "required")
	case !f.To.After(f.From):
		return Report{}, Invalid("to", "must be after from")
	case f.To.Sub(f.From) > maxReportPeriod:
		return Report{}, Invalid("to", "a report covers at most 400 days")
	case f.Site != "" && !protocol.ValidSite(f.Site):
		return Report{}, Invalid("site", "not a valid site id")
	case name == ReportRemoteOpens && p.Role == RolePlatform:
		return Report{}, Errorf(EForbidden, "remote opens are ops data, not a platform's")
	case name == ReportRemoteOpens && f.Platform != "":
		return Report{}, Invalid("platform", "remote opens are not per platform")
	}
	f.From, f.To = f.From.UTC(), f.To.UTC()
	r := Report{Name: name, From: f.From, To: f.To, Site: f.Site, Platform: f.Platform, Rows: [][]any{}}
	err := s.store.View(ctx, func(tx Tx) error {
		switch name {
		case ReportUtilisation:
			return s.utilisation(tx, f, &r)
		case ReportRemoteOpens:
			return remoteOpens(tx, f, &r)
		}
		var rows map[group]*tally
		err := scanOrders(tx, f, f.From, func(o *orderFacts) {
			g := group{o.Site, o.Platform}
			if rows == nil {
				rows = map[group]*tally{}
			}
			t := rows[g]
			if t == nil {
				t = &tally{}
				rows[g] = t
			}
			t.add(o, s.now())
		})
		if err != nil {
			return err
		}
		r.Columns = append([]string{"site", "platform"}, columns[name]...)
		for _, g := range sortedGroups(rows) {
			r.Rows = append(r.Rows, append([]any{g.site, g.platform}, rows[g].values(name)...))
		}
		return nil
	})
	return r, internal("report", err)
}

// orderFacts is the part of an Order the reports read; decoding only it keeps the scan
// cheap.
type orderFacts struct {
	ID          string     `json:"id"`
	Platform    string     `json:"platform"`
	Site        string     `json:"site"`
	State       OrderState `json:"state"`
	Slots       []Slot     `json:"slots"`
	Created     time.Time  `json:"created"`
	LoadedAt    time.Time  `json:"loaded_at"`
	ClosedAt    time.Time  `json:"closed_at"`
	ExpiresAt   time.Time  `json:"expires_at"`
	Compromised bool       `json:"compromised"`
	ColdChain   *ColdChain `json:"cold_chain"`
}

// orderKeyAt is the smallest order id made at t (sortableID: "ord_" and the milliseconds
// in 12 hex digits).
func orderKeyAt(t time.Time) string { return fmt.Sprintf("ord_%012x", t.UnixMilli()) }

// scanOrders calls fn for each order of f's scope created in [from, f.To). Order ids
// sort by creation time, so it reads only those: from the platform's index, the site's,
// or the orders themselves.
func scanOrders(tx Tx, f ReportFilter, from time.Time, fn func(*orderFacts)) error {
	bucket, prefix := bOrders, ""
	switch {
	case f.Platform != "":
		bucket, prefix = bByPlat, f.Platform+"/"
	case f.Site != "":
		bucket, prefix = bBySite, f.Site+"/"
	}
	var err error
	tx.Range(bucket, prefix+orderKeyAt(from), prefix+orderKeyAt(f.To), func(k string, v []byte) bool {
		if bucket != bOrders {
			if v = tx.Get(bOrders, strings.TrimPrefix(k, prefix)); v == nil {
				err = fmt.Errorf("index %s: no order", k)
				return false
			}
		}
		var o orderFacts
		if err = json.Unmarshal(v, &o); err != nil {
			return false
		}
		if (f.Site == "" || o.Site == f.Site) && !o.Created.Before(from) && o.Created.Before(f.To) {
			fn(&o)
		}
		return true
	})
	return err
}

type group struct{ site, platform string }

func sortedGroups[T any](m map[group]T) []group {
	gs := make([]group, 0, len(m))
	for g := range m {
		gs = append(gs, g)
	}
	slices.SortFunc(gs, func(a, b group) int {
		if c := strings.Compare(a.site, b.site); c != 0 {
			return c
		}
		return strings.Compare(a.platform, b.platform)
	})
	return gs
}

// Pickup-time histogram: the upper bounds of its buckets (the last is open).
var pickupBuckets = []time.Duration{time.Hour, 4 * time.Hour, 12 * time.Hour, 24 * time.Hour}

var columns = map[ReportName][]string{
	ReportOrders: {"orders", "loaded", "picked_up", "returned", "cancelled", "in_locker", "compromised"},
	ReportPickupTime: {"picked_up", "p50_minutes", "p90_minutes", "max_minutes",
		"under_1h", "1h_to_4h", "4h_to_12h", "12h_to_24h", "over_24h"},
	ReportExpiry: {"loaded", "expired", "picked_up_late", "returned", "returned_after_expiry", "expired_waiting"},
	ReportColdChain: {"closed", "with_record", "without_record", "above_limit", "minutes_above_total",
		"minutes_above_mean", "minutes_above_max", "minutes_missing_total", "compromised"},
}

// tally adds up one group's orders for the order reports.
type tally struct {
	orders, loaded, pickedUp, returned, cancelled, inLocker, compromised int
	expired, pickedLate, returnedLate, expiredWaiting                    int
	pickups                                                              []time.Duration
	closed, withRecord, above                                            int
	aboveS, aboveMaxS, missingS                                          float64
}

func (t *tally) add(o *orderFacts, now time.Time) {
	t.orders++
	loaded := !o.LoadedAt.IsZero() || slices.ContainsFunc(o.Slots, func(s Slot) bool { return s.Loaded })
	if loaded {
		t.loaded++
	}
	if o.Compromised {
		t.compromised++
	}
	end := o.ClosedAt
	if end.IsZero() {
		end = now
	}
	// Expired: loaded (at least partly) and still in the locker when its deadline passed.
	expired := loaded && !end.Before(o.ExpiresAt) && o.State != StateCancelled
	if expired {
		t.expired++
	}
	switch o.State {
	case StatePickedUp:
		t.pickedUp++
		if expired {
			t.pickedLate++
		}
		if !o.LoadedAt.IsZero() {
			t.pickups = append(t.pickups, o.ClosedAt.Sub(o.LoadedAt))
		}
	case StateReturned:
		t.returned++
		if expired {
			t.returnedLate++
		}
	case StateCancelled:
		t.cancelled++
	case StateExpired:
		t.expiredWaiting++
	}
	if o.State.Live() {
		t.inLocker++
	}
	if o.State == StatePickedUp || o.State == StateReturned {
		t.closed++
		if cc := o.ColdChain; cc != nil && cc.Known && cc.ColdChain != nil {
			t.withRecord++
			t.aboveS += cc.AboveSeconds
			t.aboveMaxS = max(t.aboveMaxS, cc.AboveSeconds)
			t.missingS += cc.MissingSeconds
			if cc.AboveSeconds > 0 {
				t.above++
			}
		}
	}
}

func (t *tally) values(name ReportName) []any {
	switch name {
	case ReportOrders:
		return []any{t.orders, t.loaded, t.pickedUp, t.returned, t.cancelled, t.inLocker, t.compromised}
	case ReportExpiry:
		return []any{t.loaded, t.expired, t.pickedLate, t.returned, t.returnedLate, t.expiredWaiting}
	case ReportPickupTime:
		slices.Sort(t.pickups)
		hist := make([]int, len(pickupBuckets)+1)
		for _, d := range t.pickups {
			i, _ := slices.BinarySearchFunc(pickupBuckets, d, func(b, d time.Duration) int {
				if b <= d {
					return -1
				}
				return 1
			})
			hist[i]++
		}
		var maxD time.Duration
		if n := len(t.pickups); n > 0 {
			maxD = t.pickups[n-1]
		}
		v := []any{len(t.pickups), minutes(percentile(t.pickups, 50)), minutes(percentile(t.pickups, 90)), minutes(maxD)}
		for _, n := range hist {
			v = append(v, n)
		}
		return v
	case ReportColdChain:
		mean := 0.0
		if t.withRecord > 0 {
			mean = t.aboveS / float64(t.withRecord)
		}
		return []any{t.closed, t.withRecord, t.closed - t.withRecord, t.above, round(t.aboveS/60, 2),
			round(mean/60, 2), round(t.aboveMaxS/60, 2), round(t.missingS/60, 2), t.compromised}
	}
	return nil
}

// percentile is the nearest-rank percentile of sorted ds (0 when there are none).
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return ds[(p*len(ds)+99)/100-1]
}

func minutes(d time.Duration) float64 { return round(d.Minutes(), 2) }

func round(x float64, places int) float64 {
	m := math.Pow(10, float64(places))
	return math.Round(x*m) / m
}

// utilisation: for each site and zone, the compartment time held by orders (admission to
// close) and occupied (loading to close) within the period up to now, against the time
// of the zone's compartments present now.
func (s *Service) utilisation(tx Tx, f ReportFilter, r *Report) error {
	r.Columns = []string{"site", "zone", "compartments", "held_hours", "occupied_hours", "held_ratio", "occupied_ratio"}
	now := s.now()
	end := f.To
	if end.After(now) {
		end = now
	}
	type key struct {
		site string
		zone protocol.Zone
	}
	held, occupied := map[key]time.Duration{}, map[key]time.Duration{}
	sites := map[string]bool{}
	if f.Site != "" {
		sites[f.Site] = true
	}
	overlap := func(a, b time.Time) time.Duration {
		a, b = later(a, f.From), earlier(b, end)
		return max(b.Sub(a), 0)
	}
	add := func(o *orderFacts) {
		close := o.ClosedAt
		if close.IsZero() {
			close = end
		}
		for _, sl := range o.Slots {
			k := key{o.Site, sl.Zone}
			if d := overlap(o.Created, close); d > 0 {
				held[k] += d
				sites[o.Site] = true
			}
			if !o.LoadedAt.IsZero() {
				occupied[k] += overlap(o.LoadedAt, close)
			}
		}
	}
	since := f.From.Add(-s.utilisationLookback())
	if err := scanOrders(tx, f, since, add); err != nil {
		return err
	}
	// A live order made before that (an expired order nobody took back) still holds its
	// compartments: the live index finds it by its id, which says when it was made.
	prefix := ""
	if f.Site != "" {
		prefix = f.Site + "/"
	}
	var err error
	tx.Range(bLive, prefix, prefix+"~", func(k string, _ []byte) bool {
		_, id, _ := strings.Cut(k, "/")
		if id >= orderKeyAt(since) {
			return true
		}
		var o orderFacts
		ok, gerr := getJSON(tx, bOrders, id, &o)
		if gerr == nil && !ok {
			gerr = fmt.Errorf("live index %s: no order", k)
		}
		if err = gerr; err != nil {
			return false
		}
		if f.Platform == "" || o.Platform == f.Platform {
			add(&o)
		}
		return true
	})
	if err != nil {
		return err
	}
	period := max(end.Sub(f.From), 0)
	for _, site := range slices.Sorted(maps.Keys(sites)) {
		comps, err := siteComps(tx, site)
		if err != nil {
			return err
		}
		count := map[protocol.Zone]int{}
		for _, c := range comps {
			if c.Present {
				count[c.Zone]++
			}
		}
		for _, z := range []protocol.Zone{protocol.ZoneFrozen, protocol.ZoneChilled, protocol.ZoneCool, protocol.ZoneAmbient} {
			k := key{site, z}
			if count[z] == 0 && held[k] == 0 {
				continue
			}
			capacity := time.Duration(count[z]) * period
			r.Rows = append(r.Rows, []any{site, string(z), count[z], round(held[k].Hours(), 2), round(occupied[k].Hours(), 2),
				ratio(held[k], capacity), ratio(occupied[k], capacity)})
		}
	}
	return nil
}

// utilisationLookback is how long before a period an order may have been created and
// still hold a compartment in it: a window starts at most MaxAhead ahead and lasts at
// most 24 h; then the lapse grace or the longest hold after loading.
func (s *Service) utilisationLookback() time.Duration {
	var hold time.Duration
	for _, h := range s.pol.MaxHold {
		hold = max(hold, h)
	}
	return s.pol.MaxAhead + 24*time.Hour + max(hold, s.pol.LoadGrace)
}

func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return round(float64(a)/float64(b), 4)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// remoteOpens counts the doors opened from the cloud (ops' remote opens and drivers'
// opens for loading) in the period, by site, actor and action, from the audit log.
func remoteOpens(tx Tx, f ReportFilter, r *Report) error {
	r.Columns = []string{"site", "actor", "role", "action", "opens"}
	type key struct{ site, actor, role, action string }
	count := map[key]int{}
	af := AuditFilter{Site: f.Site, Since: f.From, Until: f.To.Add(-time.Nanosecond)}
	err := scanAudit(tx, af, func(e AuditEntry) bool {
		if e.Action == "remote_open" || e.Action == "remote_open_loading" {
			count[key{e.Site, e.Actor, string(e.Role), e.Action}]++
		}
		return true
	})
	if err != nil {
		return err
	}
	keys := slices.SortedFunc(maps.Keys(count), func(a, b key) int {
		return strings.Compare(a.site+"\x00"+a.actor+"\x00"+a.action, b.site+"\x00"+b.actor+"\x00"+b.action)
	})
	for _, k := range keys {
		r.Rows = append(r.Rows, []any{k.site, k.actor, k.role, k.action, count[k]})
	}
	return nil
}
