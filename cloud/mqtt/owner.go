package mqtt

import (
	"errors"
	"slices"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/protocol"
)

// Ownership tells the adapter which sites its replica owns, when several replicas share
// one store and one broker (cloud/lease, through a small adapter in the wiring). With
// none ([Config.Owner] nil) the adapter owns every site, as a single process does.
type Ownership interface {
	// OnChange registers fn, called for every site this replica gains (owned true, with
	// the fence of its lease) or loses (owned false), including the sites it already
	// owns when OnChange is called. The adapter calls it once, from [New]. fn is quick
	// and never blocks: it records the change for the adapter's own goroutine. A gain
	// for an owned site with another fence means the lease was lost and taken again.
	OnChange(fn func(site string, fence cloud.Fence, owned bool))
}

// owned is the adapter's view of the sites its replica owns: fed by [Ownership], and by
// the adapter itself when the store refuses a fence ([cloud.ErrFenced]: the lease moved
// before the owner noticed).
type owned struct {
	mu      sync.Mutex
	fences  map[string]cloud.Fence // the sites owned now; guarded by mu
	changed map[string]bool        // sites whose ownership changed since follow last looked; guarded by mu
	wake    chan struct{}          // cap 1: changed is not empty
}

func newOwned() *owned {
	return &owned{fences: map[string]cloud.Fence{}, changed: map[string]bool{}, wake: make(chan struct{}, 1)}
}

// set records a change reported by the owner.
func (o *owned) set(site string, f cloud.Fence, own bool) {
	o.mu.Lock()
	prev, had := o.fences[site]
	switch {
	case own && (!had || prev != f):
		o.fences[site] = f
		o.changed[site] = true
	case !own && had:
		delete(o.fences, site)
		o.changed[site] = true
	}
	o.mu.Unlock()
	o.poke()
}

// drop forgets site if it is still owned with fence f (the store refused f), and
// reports whether it did.
func (o *owned) drop(site string, f cloud.Fence) bool {
	o.mu.Lock()
	cur, ok := o.fences[site]
	if ok && cur == f {
		delete(o.fences, site)
		o.changed[site] = true
	}
	o.mu.Unlock()
	if ok && cur == f {
		o.poke()
		return true
	}
	return false
}

// again marks sites changed once more (if still owned), for follow to retry them.
func (o *owned) again(sites []string) {
	o.mu.Lock()
	for _, s := range sites {
		if _, ok := o.fences[s]; ok {
			o.changed[s] = true
		}
	}
	o.mu.Unlock()
	o.poke()
}

// poke wakes follow.
func (o *owned) poke() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *owned) fence(site string) (cloud.Fence, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	f, ok := o.fences[site]
	return f, ok
}

// sites lists the sites owned now, sorted.
func (o *owned) sites() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]string, 0, len(o.fences))
	for s := range o.fences {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// take returns the changes since the last call: the sites gained (owned now) and lost.
func (o *owned) take() (gained, lost []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for s := range o.changed {
		if _, ok := o.fences[s]; ok {
			gained = append(gained, s)
		} else {
			lost = append(lost, s)
		}
	}
	clear(o.changed)
	slices.Sort(gained)
	slices.Sort(lost)
	return gained, lost
}

// fence returns the fence calls for site carry, and whether the replica owns site.
// Without an owner every site is owned, with no fence.
func (a *Adapter) fence(site string) (cloud.Fence, bool) {
	if a.own == nil {
		return cloud.Fence{}, true
	}
	return a.own.fence(site)
}

func (a *Adapter) owns(site string) bool {
	_, ok := a.fence(site)
	return ok
}

// leaseLost handles a call that failed with [cloud.ErrFenced]: the lease of site moved
// to another replica before the owner reported it. The site is treated as lost (see
// follow); the owner reports a gain again if this replica takes the lease back.
func (a *Adapter) leaseLost(site string, f cloud.Fence) {
	if a.own == nil {
		return
	}
	if a.own.drop(site, f) {
		a.m.fenced.Inc()
		a.warn.Warn("mqtt: the site's lease moved to another replica; site dropped", "site", site, "fence_token", f.Token)
	}
}

// isFenced reports whether err means a lease moved.
func isFenced(err error) bool { return errors.Is(err, cloud.ErrFenced) }

// follow applies ownership changes until the adapter closes: on a loss it unsubscribes
// from the site and has its worker forget it (staged and held events are dropped
// unacknowledged, so the edge resends them to the new owner; its command timers are
// disarmed); on a gain it subscribes, then has the worker take the site up (see
// [worker.gained]). Changes that come while one batch is applied are applied in the
// next; a site gained and lost in between is only lost.
func (a *Adapter) follow() {
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-a.own.wake:
		}
		gained, lost := a.own.take()
		a.subMu.Lock()
		if len(lost) > 0 {
			var drop []string
			for _, s := range lost {
				if a.subscribed[s] {
					drop = append(drop, s)
					delete(a.subscribed, s)
				}
			}
			if err := a.unsubscribeSites(drop); err != nil {
				a.warn.Warn("mqtt: unsubscribe from lost sites", "sites", len(drop), "err", err)
			}
			for _, s := range lost {
				a.dispatch(task{site: s, kind: taskLost})
			}
		}
		if len(gained) > 0 {
			var add []string
			for _, s := range gained {
				if !a.subscribed[s] {
					add = append(add, s)
				}
			}
			// Subscribe before taking the site up, so that the edge's resend, which
			// the worker's first ack triggers, reaches this replica.
			ok, err := a.subscribeSites(add)
			for _, s := range ok {
				a.subscribed[s] = true
			}
			if err != nil && a.client.IsConnectionOpen() {
				// Try the rest again later, and take them up once subscribed.
				retry := slices.DeleteFunc(slices.Clone(add), func(s string) bool { return a.subscribed[s] })
				a.warn.Warn("mqtt: subscribe to gained sites failed; retrying", "sites", len(retry), "err", err)
				time.AfterFunc(retryAfter, func() { a.own.again(retry) })
				gained = slices.DeleteFunc(gained, func(s string) bool { return slices.Contains(retry, s) })
			}
			// Not connected: onConnect subscribes every owned site, and acknowledges
			// each again on reconnecting.
			for _, s := range gained {
				a.dispatch(task{site: s, kind: taskGained})
			}
		}
		a.m.sitesOwned.Set(float64(len(a.subscribed)))
		a.subMu.Unlock()
	}
}

// subscribeBatch is how many sites one SUBSCRIBE names (six filters each, about 27 KB:
// well under the brokers' packet limits), and subscribeInFlight how many SUBSCRIBEs
// may await their SUBACK at once.
const (
	subscribeBatch    = 100
	subscribeInFlight = 8
)

// siteFilters are the edge→cloud topics of sites.
func siteFilters(sites []string) map[string]byte {
	subs := make(map[string]byte, len(sites)*6)
	for _, c := range protocol.Channels() {
		if !c.FromEdge() {
			continue
		}
		for _, s := range sites {
			subs[protocol.Topic(s, c)] = c.QoS()
		}
	}
	return subs
}

// subscribeSites subscribes to the edge→cloud topics of sites in batches, and returns
// the sites the broker granted. An error means the connection failed or timed out;
// the sites granted so far are returned with it.
func (a *Adapter) subscribeSites(sites []string) ([]string, error) {
	if a.cfg.SubscribeAll {
		return sites, nil // the connection's wildcard subscription covers them
	}
	type batch struct {
		sites []string
		tok   paho.Token
	}
	var (
		inflight []batch
		granted  []string
		firstErr error
	)
	fail := func(err error) {
		if firstErr == nil {
			firstErr = err
		}
	}
	settle := func(b batch) {
		if !b.tok.WaitTimeout(a.cfg.PublishTimeout) {
			fail(errors.New("no SUBACK within the publish timeout"))
			return
		}
		if err := b.tok.Error(); err != nil {
			fail(err)
			return
		}
		res := b.tok.(*paho.SubscribeToken).Result()
		for _, s := range b.sites {
			if refused(res, s) {
				a.log.Error("mqtt: subscription refused by broker", "site", s)
				continue
			}
			granted = append(granted, s)
		}
	}
	for len(sites) > 0 && firstErr == nil {
		n := min(len(sites), subscribeBatch)
		b := batch{sites: sites[:n]}
		sites = sites[n:]
		// No per-filter callback: paho keeps its routes in a list that each new
		// route walks (quadratic over thousands of sites); the default publish
		// handler, onMessage, gets every message instead.
		b.tok = a.client.SubscribeMultiple(siteFilters(b.sites), nil)
		inflight = append(inflight, b)
		if len(inflight) == subscribeInFlight {
			settle(inflight[0])
			inflight = inflight[1:]
		}
	}
	for _, b := range inflight {
		settle(b)
	}
	return granted, firstErr
}

// refused reports whether the broker refused any filter of site in a SUBACK's result.
func refused(res map[string]byte, site string) bool {
	for f := range siteFilters([]string{site}) {
		if code, ok := res[f]; !ok || code >= 0x80 {
			return true
		}
	}
	return false
}

// unsubscribeSites unsubscribes from the edge→cloud topics of sites, in batches.
func (a *Adapter) unsubscribeSites(sites []string) error {
	if len(sites) == 0 || !a.client.IsConnectionOpen() || a.cfg.SubscribeAll {
		return nil // a new connection subscribes only the owned sites
	}
	for len(sites) > 0 {
		n := min(len(sites), subscribeBatch)
		var topics []string
		for f := range siteFilters(sites[:n]) {
			topics = append(topics, f)
		}
		sites = sites[n:]
		tok := a.client.Unsubscribe(topics...)
		if !tok.WaitTimeout(a.cfg.PublishTimeout) {
			return errors.New("no UNSUBACK within the publish timeout")
		}
		if err := tok.Error(); err != nil {
			return err
		}
	}
	return nil
}

// gainAckRepeat is when a new owner acknowledges a gained site's high water the second
// time (see [worker.gained]).
const gainAckRepeat = time.Second
