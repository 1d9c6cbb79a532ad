package cloud

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/larder-lockers/larder/protocol"
)

// LiveSite is what the cloud knows of a site from its edge's recent messages (telemetry
// and presence). A process keeps it in memory for the sites it hears: it is rebuilt
// within one telemetry period after a restart, and writing every sample to the store
// would cost a commit per edge per minute for nothing durable.
//
// Several replicas sharing a store (a Watcher) each hear only the sites they own, yet
// any of them serves the console and the API for every site. So there, Run writes the
// live state of the sites this process heard since its last write into the store
// (bucket live_sites), all in one transaction every liveEvery, and Live answers for a
// site from whichever is newer (by LastSeen): what this process heard, or what the
// store holds, read at most every liveEvery (one scan of the bucket for the whole fleet,
// one key for a single site). The live state another replica shows is so at most about
// two liveEvery old. A store of this process alone holds no live state.
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
	// heard: this process has had a telemetry message of the site, so excursion is
	// complete (ApplyTelemetry).
	heard bool
}

// liveEvery is how often Run writes the live state this process heard into a shared
// store, and how old the store's live state that Live answers with may be before it is
// read again.
const liveEvery = 12 * time.Second

// liveBatch bounds the sites one write of live state holds: a fleet heard by one
// replica is written in several transactions rather than one long one.
const liveBatch = 1000

// liveState guards the LiveSites.
type liveState struct {
	mu     sync.Mutex
	sites  map[string]*LiveSite // heard by this process; guarded by mu
	shared bool                 // the store is shared: keep dirty and stored (set by New)
	dirty  map[string]bool      // sites heard since the last storeLive; guarded by mu
	// stored is the store's live state of sites as last read, and scanned when the whole
	// bucket was last read. Guarded by mu.
	stored  map[string]storedLive
	scanned time.Time
}

type storedLive struct {
	ls   LiveSite
	read time.Time
}

// get returns the record of site, creating it (locked use only); it marks the site's
// live state changed.
func (l *liveState) get(site string) *LiveSite {
	ls := l.sites[site]
	if ls == nil {
		ls = &LiveSite{excursion: map[protocol.Zone]bool{}}
		l.sites[site] = ls
	}
	if l.shared {
		l.dirty[site] = true
	}
	return ls
}

// touch records that a message of site arrived at t.
func (l *liveState) touch(site string, t time.Time) {
	l.mu.Lock()
	ls := l.get(site)
	if t.After(ls.LastSeen) {
		ls.LastSeen = t
	}
	l.mu.Unlock()
}

// copyLive returns a copy of ls that shares nothing with it.
func copyLive(ls *LiveSite) LiveSite {
	c := *ls
	c.excursion = nil
	c.heard = false
	c.Zones = append([]protocol.ZoneReading(nil), ls.Zones...)
	c.Boards = append([]protocol.BoardHealth(nil), ls.Boards...)
	return c
}

// Live returns a copy of the live state of site (zero if none arrived yet): what this
// process heard, or over a shared store what another replica heard and wrote, if newer.
func (s *Service) Live(site string) LiveSite {
	s.live.mu.Lock()
	var local LiveSite
	if ls, ok := s.live.sites[site]; ok {
		local = copyLive(ls)
	}
	s.live.mu.Unlock()
	if !s.live.shared {
		return local
	}
	if remote := s.storedLive(site); remote.LastSeen.After(local.LastSeen) {
		return remote
	}
	return local
}

// storeReadTimeout bounds the store read of Live, which has no context of its caller.
const storeReadTimeout = 2 * time.Second

// storedLive is the store's live state of site, read again if the copy at hand is older
// than liveEvery.
func (s *Service) storedLive(site string) LiveSite {
	now := s.now()
	s.live.mu.Lock()
	e, ok := s.live.stored[site]
	fresh := ok && now.Sub(e.read) < liveEvery || now.Sub(s.live.scanned) < liveEvery
	s.live.mu.Unlock()
	if fresh {
		return e.ls
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeReadTimeout)
	defer cancel()
	var ls LiveSite
	err := s.store.View(ctx, func(tx Tx) error {
		ls = LiveSite{}
		_, err := getJSON(tx, bLiveSites, site, &ls)
		return err
	})
	if err != nil {
		s.log.Warn("live state: read", "site", site, "err", err)
		return e.ls
	}
	s.live.mu.Lock()
	s.live.stored[site] = storedLive{ls: ls, read: now}
	s.live.mu.Unlock()
	return ls
}

// scanLive reads the store's live state of every site, if the last scan is older than
// liveEvery, so that the fleet's summaries find it at hand.
func (s *Service) scanLive(ctx context.Context) error {
	now := s.now()
	s.live.mu.Lock()
	fresh := now.Sub(s.live.scanned) < liveEvery
	s.live.mu.Unlock()
	if fresh {
		return nil
	}
	all := map[string]storedLive{}
	err := s.store.View(ctx, func(tx Tx) error {
		clear(all)
		var derr error
		tx.Scan(bLiveSites, "", func(k string, v []byte) bool {
			var ls LiveSite
			if err := json.Unmarshal(v, &ls); err != nil {
				derr = internal("decode "+bLiveSites+"/"+k, err)
				return false
			}
			all[k] = storedLive{ls: ls, read: now}
			return true
		})
		return derr
	})
	if err != nil {
		return internal("live state: scan", err)
	}
	s.live.mu.Lock()
	s.live.stored, s.live.scanned = all, now
	s.live.mu.Unlock()
	return nil
}

// storeLive writes the live state of the sites this process heard since its last call
// into the store, keeping a stored state that is newer (another replica took the site
// over), in transactions of up to liveBatch sites. What fails to commit is written on
// the next call.
func (s *Service) storeLive(ctx context.Context) error {
	s.live.mu.Lock()
	batch := make(map[string]LiveSite, len(s.live.dirty))
	for site := range s.live.dirty {
		if ls, ok := s.live.sites[site]; ok {
			batch[site] = copyLive(ls)
		}
	}
	clear(s.live.dirty)
	s.live.mu.Unlock()
	var firstErr error
	sites := make([]string, 0, liveBatch)
	for len(batch) > 0 {
		sites = sites[:0]
		for site := range batch {
			if sites = append(sites, site); len(sites) == liveBatch {
				break
			}
		}
		err := s.store.Update(ctx, func(tx Tx) error {
			for _, site := range sites {
				if tx.Get(bSites, site) == nil {
					continue // not a site (an edge's stray message): nothing to show
				}
				var old LiveSite
				ok, err := getJSON(tx, bLiveSites, site, &old)
				if err != nil {
					return err
				}
				if ls := batch[site]; !ok || !old.LastSeen.After(ls.LastSeen) {
					if err := putJSON(tx, bLiveSites, site, ls); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil && firstErr == nil {
			firstErr = internal("live state: write", err)
		}
		s.live.mu.Lock()
		for _, site := range sites {
			if err != nil {
				s.live.dirty[site] = true
			}
			delete(batch, site)
		}
		s.live.mu.Unlock()
	}
	return firstErr
}
