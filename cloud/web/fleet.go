package web

import (
	"math"
	"net/http"
	"strconv"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/cloud/notify"
	"github.com/larder-lockers/larder/protocol"
)

// The fleet console's API: GET /ops/api/fleet (a page of sites, problems first, with
// the counts beside it) and GET /ops/api/fleet/map (the same sites as map markers).
// Both take the filters state, zone, alarm, district, tag, q (search) and problems=1.

// FleetPage is the answer of GET /ops/api/fleet.
type FleetPage struct {
	Sites      []cloud.SiteSummary `json:"sites"`
	NextCursor string              `json:"next_cursor,omitempty"`
	// Matched is the number of sites the filters select; Fleet the number of all sites.
	Matched int `json:"matched"`
	Fleet   int `json:"fleet"`
	// Totals counts by state the sites that match every filter but the state.
	Totals    map[cloud.FleetState]int `json:"totals"`
	Health    map[cloud.Health]int     `json:"health"`
	Districts []string                 `json:"districts"`
	Tags      []string                 `json:"tags"`
	// Backlog counts the notification outbox by state; absent without a Backlog.
	Backlog *notify.Stats `json:"backlog,omitempty"`
}

// FleetMap is the answer of GET /ops/api/fleet/map. Sites with a problem are markers of
// their own (the worst MaxMapMarkers of them); every other matched site with a location
// counts in a cell of a MapGrid × MapGrid grid over the matched sites' bounds, so that
// the answer and the drawing stay small at any fleet size.
type FleetMap struct {
	Matched int         `json:"matched"`
	Located int         `json:"located"` // matched sites with a location
	Bounds  *MapBounds  `json:"bounds,omitempty"`
	Markers []MapMarker `json:"markers"`
	Cells   []MapCell   `json:"cells"`
}

// MapBounds is the box of the located matched sites.
type MapBounds struct {
	MinLat float64 `json:"min_lat"`
	MinLon float64 `json:"min_lon"`
	MaxLat float64 `json:"max_lat"`
	MaxLon float64 `json:"max_lon"`
}

// MapMarker is one site with a problem.
type MapMarker struct {
	Site    string       `json:"site"`
	Name    string       `json:"name,omitempty"`
	Lat     float64      `json:"lat"`
	Lon     float64      `json:"lon"`
	Health  cloud.Health `json:"health"`
	Problem string       `json:"problem"` // the worst problem's kind
}

// MapCell is the other sites in one grid cell: their count, mean position and worst
// health.
type MapCell struct {
	Lat    float64      `json:"lat"`
	Lon    float64      `json:"lon"`
	Sites  int          `json:"sites"`
	Health cloud.Health `json:"health"`
}

// Map limits.
const (
	MaxMapMarkers = 300
	MapGrid       = 48
)

// fleetFilter reads the filters of the query string; the domain validates them.
func fleetFilter(r *http.Request) (cloud.FleetFilter, error) {
	q := r.URL.Query()
	f := cloud.FleetFilter{State: cloud.FleetState(q.Get("state")), Zone: protocol.Zone(q.Get("zone")),
		Alarm: protocol.EventKind(q.Get("alarm")), District: q.Get("district"), Tag: q.Get("tag"), Search: q.Get("q"),
		Sort: q.Get("sort")}
	switch q.Get("problems") {
	case "", "0":
	case "1":
		f.Problems = true
	default:
		return f, cloud.Invalid("problems", "want 1 or 0")
	}
	return f, nil
}

func (h *Handler) getFleet(w http.ResponseWriter, r *http.Request) {
	f, err := fleetFilter(r)
	if err != nil {
		h.domainError(w, r, err)
		return
	}
	limit := 50
	if v := r.URL.Query().Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil {
			h.domainError(w, r, cloud.Invalid("limit", "want a number"))
			return
		}
	}
	m, err := h.svc.Fleet(r.Context(), principal(r), f)
	if err != nil {
		h.domainError(w, r, err)
		return
	}
	sites, next, err := m.Page(r.URL.Query().Get("cursor"), limit)
	if err != nil {
		h.domainError(w, r, err)
		return
	}
	out := FleetPage{Sites: sites, NextCursor: next, Matched: len(m.Sites), Fleet: m.Fleet, Totals: m.Totals,
		Health: m.Health, Districts: m.Districts, Tags: m.Tags}
	if out.Sites == nil {
		out.Sites = []cloud.SiteSummary{}
	}
	if h.backlog != nil {
		st, err := h.backlog.Stats(r.Context())
		if err != nil {
			h.domainError(w, r, err)
			return
		}
		out.Backlog = &st
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) getFleetMap(w http.ResponseWriter, r *http.Request) {
	f, err := fleetFilter(r)
	if err != nil {
		h.domainError(w, r, err)
		return
	}
	m, err := h.svc.Fleet(r.Context(), principal(r), f)
	if err != nil {
		h.domainError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, fleetMap(m.Sites))
}

// healthRank orders healths worst first, for a cell's colour.
var healthRank = map[cloud.Health]int{cloud.Health(cloud.SevCritical): 0, cloud.Health(cloud.SevMajor): 1,
	cloud.Health(cloud.SevMinor): 2, cloud.HealthOK: 3, cloud.HealthIdle: 4}

// fleetMap lays out sites (problems first, as Fleet sorts them by severity) on the map.
func fleetMap(sites []cloud.SiteSummary) FleetMap {
	out := FleetMap{Matched: len(sites), Markers: []MapMarker{}, Cells: []MapCell{}}
	var b MapBounds
	for _, s := range sites {
		if s.Location == nil {
			continue
		}
		l := *s.Location
		if out.Located == 0 {
			b = MapBounds{l.Lat, l.Lon, l.Lat, l.Lon}
		}
		out.Located++
		b = MapBounds{math.Min(b.MinLat, l.Lat), math.Min(b.MinLon, l.Lon), math.Max(b.MaxLat, l.Lat), math.Max(b.MaxLon, l.Lon)}
	}
	if out.Located == 0 {
		return out
	}
	out.Bounds = &b
	type acc struct {
		lat, lon float64
		n        int
		health   cloud.Health
	}
	cells := map[[2]int]*acc{}
	var order [][2]int
	cell := func(v, lo, hi float64) int {
		if hi <= lo {
			return 0
		}
		return min(int((v-lo)/(hi-lo)*MapGrid), MapGrid-1)
	}
	for _, s := range sites {
		if s.Location == nil {
			continue
		}
		l := *s.Location
		if len(s.Problems) > 0 && len(out.Markers) < MaxMapMarkers {
			out.Markers = append(out.Markers, MapMarker{Site: s.ID, Name: s.Name, Lat: l.Lat, Lon: l.Lon, Health: s.Health,
				Problem: s.Problems[0].Kind})
			continue
		}
		k := [2]int{cell(l.Lat, b.MinLat, b.MaxLat), cell(l.Lon, b.MinLon, b.MaxLon)}
		a := cells[k]
		if a == nil {
			a = &acc{health: s.Health}
			cells[k] = a
			order = append(order, k)
		}
		a.lat += l.Lat
		a.lon += l.Lon
		a.n++
		if healthRank[s.Health] < healthRank[a.health] {
			a.health = s.Health
		}
	}
	for _, k := range order {
		a := cells[k]
		out.Cells = append(out.Cells, MapCell{Lat: a.lat / float64(a.n), Lon: a.lon / float64(a.n), Sites: a.n, Health: a.health})
	}
	return out
}
