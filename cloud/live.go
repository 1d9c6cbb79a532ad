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
// (bucket live_sites) every liveEvery, in one transaction per liveBatch sites (never one
// per message), and Live answers for a site from whichever is newer (by LastSeen): what
// this process heard, or what the store holds, as this process last read it. It reads
// the store's live state whole when Run starts (again after a gap in the watch, and
// every rereadEvery), and in between the sites the store's watch reports written, so
// the live state one replica shows of a site another hears is about liveEvery old at
// most, and Live never reads the store itself (it is called within other
// transactions). A store of this process alone holds no live state.
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
// store.
const liveEvery = 12 * time.Second

// liveBatch bounds the sites one write or read of live state holds: a fleet heard by
// one replica is written and read in several transactions rather than one long one.
const liveBatch = 1000

// liveState guards the LiveSites.
type liveState struct {
	mu     sync.Mutex
	sites  map[string]*LiveSite // heard by this process; guarded by mu
	shared bool                 // the store is shared: the fields below are in use (set by New)
	dirty  map[string]bool      // sites heard since the last storeLive; guarded by mu
	// stored is the store's live state of the sites, as readLive last read it; toRead
	// the sites whose stored state changed since, and rescan whether any may have
	// (a gap in the watch). Guarded by mu.
	stored map[string]LiveSite
	toRead map[string]bool
	rescan bool
	wake   chan struct{} // readLive has work
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
	defer s.live.mu.Unlock()
	var local LiveSite
	if ls, ok := s.live.sites[site]; ok {
		local = copyLive(ls)
	}
	if remote, ok := s.live.stored[site]; ok && remote.LastSeen.After(local.LastSeen) {
		return copyLive(&remote)
	}
	return local
}

// changed records that the store's live state of site changed (the watch of a shared
// store): readLive reads it again. An empty site: any may have changed.
func (l *liveState) changed(site string) {
	l.mu.Lock()
	if site == "" {
		l.rescan = true
	} else {
		l.toRead[site] = true
	}
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// readLive keeps the store's live state at hand until ctx ends (Run, over a shared
// store): all of it at first and after a gap in the watch, then the sites the watch
// reports written.
func (s *Service) readLive(ctx context.Context) {
	s.live.changed("")
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.live.wake:
		case <-retry:
		}
		retry = nil
		if err := s.readStoredLive(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("live state: read", "err", err)
			retry = time.After(time.Second) // what failed is still marked
		}
	}
}

// readStoredLive reads into l.stored what changed since its last call: the whole bucket
// after a rescan mark, else the sites marked changed, in views of up to liveBatch keys.
// What it fails to read stays marked.
func (s *Service) readStoredLive(ctx context.Context) error {
	l := &s.live
	l.mu.Lock()
	rescan, toRead := l.rescan, l.toRead
	l.rescan, l.toRead = false, map[string]bool{}
	l.mu.Unlock()
	if rescan {
		all := map[string]LiveSite{}
		err := s.store.View(ctx, func(tx Tx) error {
			clear(all)
			var derr error
			tx.Scan(bLiveSites, "", func(k string, v []byte) bool {
				var ls LiveSite
				if err := json.Unmarshal(v, &ls); err != nil {
					derr = internal("decode "+bLiveSites+"/"+k, err)
					return false
				}
				all[k] = ls
				return true
			})
			return derr
		})
		if err != nil {
			l.mu.Lock()
			l.rescan = true
			l.mu.Unlock()
			return err
		}
		l.mu.Lock()
		l.stored = all
		l.mu.Unlock()
		return nil
	}
	sites := make([]string, 0, liveBatch)
	for len(toRead) > 0 {
		sites = sites[:0]
		for site := range toRead {
			if sites = append(sites, site); len(sites) == liveBatch {
				break
			}
		}
		got := map[string]LiveSite{}
		err := s.store.View(ctx, func(tx Tx) error {
			clear(got)
			for _, site := range sites {
				var ls LiveSite
				ok, err := getJSON(tx, bLiveSites, site, &ls)
				if err != nil {
					return err
				}
				if ok {
					got[site] = ls
				}
			}
			return nil
		})
		l.mu.Lock()
		for _, site := range sites {
			delete(toRead, site)
			switch ls, ok := got[site]; {
			case err != nil:
				l.toRead[site] = true
			case ok:
				l.stored[site] = ls
			default:
				delete(l.stored, site)
			}
		}
		if err != nil {
			for site := range toRead {
				l.toRead[site] = true
			}
		}
		l.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// writeLive runs storeLive every liveEvery until ctx ends (Run, over a shared store).
func (s *Service) writeLive(ctx context.Context) {
	t := time.NewTicker(liveEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.storeLive(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("live state: write", "err", err)
			}
		}
	}
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
