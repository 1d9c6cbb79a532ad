package cloud

import (
	"sync"
	"time"

	"github.com/larder-lockers/larder/protocol"
)

// LiveSite is what the cloud knows of a site from its edge's recent messages (telemetry
// and presence). It lives in memory only: it is rebuilt within one telemetry period after
// a restart, and writing every sample to the store would cost a commit per edge per
// minute for nothing durable.
type LiveSite struct {
	LastSeen  time.Time              `json:"last_seen"`
	Zones     []protocol.ZoneReading `json:"zones,omitempty"`
	Boards    []protocol.BoardHealth `json:"boards,omitempty"`
	Outbox    int                    `json:"outbox_depth"`
	Uptime    float64                `json:"uptime_seconds"`
	Telemetry time.Time              `json:"telemetry_at,omitzero"`
	// DesiredVersion is the desired version the edge last reported applied, in its birth
	// or its telemetry (an edge of protocol 1.0 reports it only in its birth); 0 before
	// the first report since this process started.
	DesiredVersion uint64                 `json:"desired_version,omitempty"`
	excursion      map[protocol.Zone]bool // zones with an open temperature alarm we know of
}

// liveState guards the LiveSites.
type liveState struct {
	mu    sync.Mutex
	sites map[string]*LiveSite // guarded by mu
}

// seen records that a message of site arrived at t and returns the record (locked use
// only).
func (l *liveState) get(site string) *LiveSite {
	ls := l.sites[site]
	if ls == nil {
		ls = &LiveSite{excursion: map[protocol.Zone]bool{}}
		l.sites[site] = ls
	}
	return ls
}

func (l *liveState) touch(site string, t time.Time) {
	l.mu.Lock()
	ls := l.get(site)
	if t.After(ls.LastSeen) {
		ls.LastSeen = t
	}
	l.mu.Unlock()
}

// Live returns a copy of the live state of site (zero if none arrived yet).
func (s *Service) Live(site string) LiveSite {
	s.live.mu.Lock()
	defer s.live.mu.Unlock()
	ls, ok := s.live.sites[site]
	if !ok {
		return LiveSite{}
	}
	c := *ls
	c.excursion = nil
	c.Zones = append([]protocol.ZoneReading(nil), ls.Zones...)
	c.Boards = append([]protocol.BoardHealth(nil), ls.Boards...)
	return c
}
