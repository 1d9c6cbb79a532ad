package cloud

import (
	"cmp"
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/larder-lockers/larder/protocol"
)

// The fleet console's view of the sites: what state each is in, what is wrong with it
// and how badly, filtered and sorted problems first.
//
// A site's summary needs its record, a count of its compartments and its open alarms:
// decoding all of them for 10,000 sites of 32 doors takes about 0.9 s on a two-core
// machine, too slow for a page and for a stream that re-reads the fleet every 2 s. So
// the Service keeps the stored part of every summary in memory (fleetIndex) and
// recomputes a site's only after a committed transaction wrote its record, a
// compartment or an alarm of it (indexedStore, below, notices those writes through
// OnCommit). What changes with every telemetry message (zones, last seen, the edge's
// applied version) is not stored with the site and is merged from the live state on each
// read (live.go).
//
// Over a store that several replicas share (a Watcher), the other replicas' writes do
// not pass through this process's OnCommit: Run watches the buckets the index derives
// from (fleetBuckets) and marks the sites they touch, or the whole index when the watch
// says a bucket may have changed while it was interrupted (an empty key; followStore).

// FleetState is what an operator needs to tell one site from another at a glance.
type FleetState string

// Fleet states.
const (
	SiteUnprovisioned  FleetState = "unprovisioned"   // created, its edge has no credentials yet
	SiteNeverConnected FleetState = "never_connected" // provisioned, its edge was never heard
	SiteOnline         FleetState = "online"
	SiteOffline        FleetState = "offline"        // heard before, not connected now (see OfflineSince)
	SiteOutOfService   FleetState = "out_of_service" // every compartment taken out of service by ops
)

// FleetStates lists every fleet state.
func FleetStates() []FleetState {
	return []FleetState{SiteUnprovisioned, SiteNeverConnected, SiteOnline, SiteOffline, SiteOutOfService}
}

// Severity ranks problems; the fleet console lists sites by their worst one.
type Severity string

// Severities, worst first.
const (
	// SevCritical: food or people at risk now (a zone out of temperature, a door opened
	// without a command, a person pressing the kiosk's help button).
	SevCritical Severity = "critical"
	// SevMajor: the site is not serving as it should (offline, a jammed lock, a board
	// down, a door left open, someone guessing codes, a reassignment conflict).
	SevMajor Severity = "major"
	// SevMinor: set up but never came online.
	SevMinor Severity = "minor"
)

// Health is a site's worst severity, or ok, or idle for a site that is not meant to
// serve (unprovisioned, out of service) and has no problem.
type Health string

// Healths besides the severities.
const (
	HealthOK   Health = "ok"
	HealthIdle Health = "idle"
)

// Problem kinds besides the alarm kinds.
const (
	ProblemOffline        = "offline"
	ProblemNeverConnected = "never_connected"
)

// Problem is one thing wrong with a site: an open alarm kind, offline or never
// connected.
type Problem struct {
	Kind     string    `json:"kind"`
	Severity Severity  `json:"severity"`
	Since    time.Time `json:"since,omitzero"`
	// Count is the number of open alarms of this kind (0 for offline, never connected).
	Count int `json:"count,omitempty"`
}

var severityRank = map[Severity]int{SevCritical: 0, SevMajor: 1, SevMinor: 2}

// alarmSeverity says how bad an open alarm of kind is.
func alarmSeverity(kind protocol.EventKind) Severity {
	switch kind {
	case protocol.EventTempExcursion, protocol.EventUncommandedOpen, protocol.EventHelpRequested:
		return SevCritical
	}
	return SevMajor
}

// FleetFilter selects sites; zero fields select all. Sites match every field given.
type FleetFilter struct {
	State    FleetState
	Zone     protocol.Zone      // sites with a compartment of this zone
	Alarm    protocol.EventKind // sites with an open alarm of this kind
	District string
	Tag      string
	// Search matches the id, name or address, case-insensitively, as a substring.
	Search string
	// Problems selects only sites with at least one problem.
	Problems bool
	// Sort is "severity" (the default: worst problem first, then the oldest), "id" or
	// "name".
	Sort string
}

func (f FleetFilter) validate() error {
	if f.State != "" && !slices.Contains(FleetStates(), f.State) {
		return Invalid("state", "want one of %v", FleetStates())
	}
	if f.Zone != "" && !slices.Contains(protocol.Zones(), f.Zone) {
		return Invalid("zone", "want one of %v", protocol.Zones())
	}
	if f.Alarm != "" && !slices.Contains(AlarmKinds(), f.Alarm) {
		return Invalid("alarm", "want one of %v", AlarmKinds())
	}
	if len(f.District) > maxDistrict {
		return Invalid("district", "at most %d characters", maxDistrict)
	}
	if f.Tag != "" && !validTag(f.Tag) {
		return Invalid("tag", "not a tag")
	}
	if len(f.Search) > 200 {
		return Invalid("q", "at most 200 characters")
	}
	switch f.Sort {
	case "", "severity", "id", "name":
	default:
		return Invalid("sort", "want severity, id or name")
	}
	return nil
}

// FleetMatch is the sites a filter selects, in its order, with the counts the console
// shows beside them.
type FleetMatch struct {
	Sites []SiteSummary
	// Totals counts, by state, the sites that match every field of the filter but the
	// state and Problems (the filtered fleet's states, whatever the list shows).
	Totals map[FleetState]int
	// Health counts the matched sites by health.
	Health map[Health]int
	// Fleet is the number of sites in the fleet; Districts and Tags are every district
	// and tag in use, sorted, for the filters.
	Fleet     int
	Districts []string
	Tags      []string
	keys      []string // sort key of each of Sites, ascending
}

// MaxFleetPage is the most sites one page holds.
const MaxFleetPage = 500

// Page returns up to limit sites after cursor ("" for the first page) and the cursor of
// the next page ("" after the last). A cursor is the position after a site in the sort
// order, not an offset, so a page does not repeat or skip a site that did not move.
func (m FleetMatch) Page(cursor string, limit int) ([]SiteSummary, string, error) {
	if limit < 1 || limit > MaxFleetPage {
		return nil, "", Invalid("limit", "want 1 to %d", MaxFleetPage)
	}
	from := 0
	if cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil || len(b) == 0 {
			return nil, "", Invalid("cursor", "not a cursor of this list")
		}
		from, _ = slices.BinarySearch(m.keys, string(b))
		if from < len(m.keys) && m.keys[from] == string(b) {
			from++
		}
	}
	to := min(from+limit, len(m.Sites))
	next := ""
	if to < len(m.Sites) {
		next = base64.RawURLEncoding.EncodeToString([]byte(m.keys[to-1]))
	}
	return m.Sites[from:to], next, nil
}

// Fleet selects and sorts the fleet's sites (ops, admin).
func (s *Service) Fleet(ctx context.Context, p Principal, f FleetFilter) (FleetMatch, error) {
	if err := require(p, RoleOps, RoleAdmin); err != nil {
		return FleetMatch{}, err
	}
	if err := f.validate(); err != nil {
		return FleetMatch{}, err
	}
	all, err := s.fleetSummaries(ctx)
	if err != nil {
		return FleetMatch{}, err
	}
	m := FleetMatch{Totals: map[FleetState]int{}, Health: map[Health]int{}, Fleet: len(all)}
	for _, st := range FleetStates() {
		m.Totals[st] = 0
	}
	districts, tags := map[string]bool{}, map[string]bool{}
	q := strings.ToLower(f.Search)
	type keyed struct {
		key string
		sum SiteSummary
	}
	var hits []keyed
	for _, sum := range all {
		if sum.District != "" {
			districts[sum.District] = true
		}
		for _, t := range sum.Tags {
			tags[t] = true
		}
		if !f.matchesBesidesState(sum, q) {
			continue
		}
		m.Totals[sum.State]++
		if f.State != "" && sum.State != f.State || f.Problems && len(sum.Problems) == 0 {
			continue
		}
		m.Health[sum.Health]++
		hits = append(hits, keyed{f.sortKey(sum), sum})
	}
	slices.SortFunc(hits, func(a, b keyed) int { return cmp.Compare(a.key, b.key) })
	for _, h := range hits {
		m.Sites = append(m.Sites, h.sum)
		m.keys = append(m.keys, h.key)
	}
	m.Districts = sortedKeys(districts)
	m.Tags = sortedKeys(tags)
	return m, nil
}

func (f FleetFilter) matchesBesidesState(sum SiteSummary, q string) bool {
	switch {
	case f.Zone != "" && len(sum.ByZone[f.Zone]) == 0,
		f.Alarm != "" && sum.AlarmKinds[f.Alarm] == 0,
		f.District != "" && sum.District != f.District,
		f.Tag != "" && !slices.Contains(sum.Tags, f.Tag):
		return false
	}
	return q == "" || strings.Contains(sum.ID, q) || strings.Contains(strings.ToLower(sum.Name), q) ||
		strings.Contains(strings.ToLower(sum.Address), q)
}

// sortKey orders sites as f.Sort says by comparing strings: the cursor of a page is
// the key of its last site. Site ids never contain the separator (0x00).
func (f FleetFilter) sortKey(sum SiteSummary) string {
	switch f.Sort {
	case "id":
		return sum.ID
	case "name":
		return strings.ToLower(cmp.Or(sum.Name, sum.ID)) + "\x00" + sum.ID
	}
	rank, since := 9, int64(0) // no problem: after every site with one, in id order
	if len(sum.Problems) > 0 {
		rank = severityRank[sum.Problems[0].Severity]
		since = sum.Problems[0].Since.Unix()
	}
	// Unix seconds fit 12 digits until the year 33658; a zero since sorts first.
	return fmt.Sprintf("%d%012d\x00%s", rank, max(since, 0), sum.ID)
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// fleetSummaries is the summary of every site, in id order, from the index.
func (s *Service) fleetSummaries(ctx context.Context) ([]SiteSummary, error) {
	stored, err := s.fleet.read(ctx, s.store)
	if err != nil {
		return nil, internal("fleet", err)
	}
	for i := range stored {
		s.withLive(&stored[i])
	}
	return stored, nil
}

// fleetBuckets are the buckets a site's stored summary derives from; their keys start
// with the site id (up to the first '/').
var fleetBuckets = []string{bSites, bComps, bAlarms}

// fleetIndex holds the stored part of each site's summary (storedSummary), recomputed
// after a commit writes the site's records.
type fleetIndex struct {
	mu      sync.Mutex
	written map[string]uint64     // site → commits that wrote its records; guarded by mu
	entries map[string]fleetEntry // guarded by mu
	// filled: every site had an entry read after the last reset; guarded by mu.
	filled bool
	// resets counts the times the whole index was marked stale (reset); filledAt is
	// resets when the last full read started, so that a reset during a full read is
	// not lost. Guarded by mu.
	resets, filledAt uint64
}

type fleetEntry struct {
	written uint64 // written[site] when the entry was read from the store
	sum     SiteSummary
}

// wrote records that a committed transaction wrote records of sites (an OnCommit hook).
func (ix *fleetIndex) wrote(sites map[string]bool) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.written == nil {
		ix.written = map[string]uint64{}
	}
	for id := range sites {
		ix.written[id]++
	}
}

// reset marks every entry stale: the next read reads every site again.
func (ix *fleetIndex) reset() {
	ix.mu.Lock()
	ix.resets++
	ix.mu.Unlock()
}

// read returns a copy of every entry in id order, reading first the sites whose entry
// is missing or older than their last write, or every site after a reset. A write that
// commits while it reads leaves the entry stale (its count moved on), so the next read
// reads it again.
func (ix *fleetIndex) read(ctx context.Context, store Store) ([]SiteSummary, error) {
	ix.mu.Lock()
	filled := ix.filled && ix.filledAt == ix.resets
	resets := ix.resets
	stale := map[string]uint64{}
	for id, n := range ix.written {
		if e, ok := ix.entries[id]; !ok || e.written != n {
			stale[id] = n
		}
	}
	if !filled {
		clear(stale)
		for id, n := range ix.written {
			stale[id] = n
		}
	}
	ix.mu.Unlock()

	fresh := map[string]SiteSummary{}
	gone := []string{}
	if !filled || len(stale) > 0 {
		err := store.View(ctx, func(tx Tx) error {
			clear(fresh)
			gone = gone[:0]
			if !filled {
				sites, err := allSites(tx)
				if err != nil {
					return err
				}
				for i := range sites {
					sum, err := storedSummary(tx, &sites[i])
					if err != nil {
						return err
					}
					fresh[sites[i].ID] = sum
				}
				return nil
			}
			for id := range stale {
				st, err := loadSite(tx, id)
				if ErrorCode(err) == ENotFound {
					gone = append(gone, id)
					continue
				}
				if err != nil {
					return err
				}
				sum, err := storedSummary(tx, st)
				if err != nil {
					return err
				}
				fresh[id] = sum
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}

	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.entries == nil || !filled {
		ix.entries = map[string]fleetEntry{} // a full read: a site it did not find is gone
	}
	for id, sum := range fresh {
		ix.entries[id] = fleetEntry{written: stale[id], sum: sum}
	}
	for _, id := range gone {
		delete(ix.entries, id)
	}
	if !filled {
		ix.filled, ix.filledAt = true, resets
	}
	out := make([]SiteSummary, 0, len(ix.entries))
	for _, e := range ix.entries {
		out = append(out, e.sum)
	}
	slices.SortFunc(out, func(a, b SiteSummary) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// indexedStore tells the fleet index which sites each committed transaction wrote.
type indexedStore struct {
	Store
	ix *fleetIndex
}

func (s indexedStore) Update(ctx context.Context, fn func(Tx) error) error {
	return s.Store.Update(ctx, func(tx Tx) error { return fn(&indexedTx{Tx: tx, ix: s.ix}) })
}

// indexedTx notes the sites whose records (site, compartments, alarms) it writes.
type indexedTx struct {
	Tx
	ix    *fleetIndex
	sites map[string]bool
}

// Unwrap returns the store's own transaction, for adapters that join it (the notify
// outbox writes into the same bbolt transaction).
func (t *indexedTx) Unwrap() Tx { return t.Tx }

func (t *indexedTx) Put(bucket, key string, value []byte) error {
	t.note(bucket, key)
	return t.Tx.Put(bucket, key, value)
}

func (t *indexedTx) Delete(bucket, key string) error {
	t.note(bucket, key)
	return t.Tx.Delete(bucket, key)
}

func (t *indexedTx) note(bucket, key string) {
	if bucket != bSites && bucket != bComps && bucket != bAlarms {
		return
	}
	site, _, _ := strings.Cut(key, "/")
	if t.sites == nil {
		t.sites = map[string]bool{}
		t.Tx.OnCommit(func() { t.ix.wrote(t.sites) })
	}
	t.sites[site] = true
}
