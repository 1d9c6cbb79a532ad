package cloud_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/larder-lockers/larder/protocol"
)

// slowSite is a desired publisher whose publishes to one site wait until released, as
// a publish waits for a broker's PUBACK, and which records every site's versions in
// the order published.
type slowSite struct {
	slow    string
	release chan struct{}
	mu      sync.Mutex
	got     map[string][]uint64
}

func (p *slowSite) PublishDesired(ctx context.Context, site string, d protocol.Desired) error {
	if site == p.slow {
		select {
		case <-p.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got[site] = append(p.got[site], d.Version)
	return nil
}

func (p *slowSite) versions(site string) []uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]uint64(nil), p.got[site]...)
}

// TestFleetLaneDeliversSitesAtOnce: the fleet lane delivers each site's messages in
// their order, but one site's slow publish does not hold up the other sites' (an
// operator's remote open used to wait behind every delta queued before it).
func TestFleetLaneDeliversSitesAtOnce(t *testing.T) {
	e := newEnv(t)
	pub := &slowSite{slow: "site-slow", release: make(chan struct{}), got: map[string][]uint64{}}
	e.svc.SetPorts(pub, e.rec, e.rec)
	sites := []string{"site-slow"}
	for i := range 20 {
		sites = append(sites, fmt.Sprintf("site-%02d", i))
	}
	for v := uint64(1); v <= 5; v++ {
		for _, s := range sites {
			e.svc.QueueDesired(s, protocol.Desired{Version: v})
		}
	}
	flushed := make(chan struct{})
	go func() { e.svc.Flush(context.Background()); close(flushed) }()

	deadline := time.Now().Add(10 * time.Second)
	for _, s := range sites[1:] {
		for len(pub.versions(s)) < 5 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if got := pub.versions(s); fmt.Sprint(got) != "[1 2 3 4 5]" {
			t.Fatalf("%s: published %v while another site's publish waited; want [1 2 3 4 5]", s, got)
		}
	}
	close(pub.release)
	<-flushed
	if got := pub.versions("site-slow"); fmt.Sprint(got) != "[1 2 3 4 5]" {
		t.Fatalf("site-slow: published %v, want [1 2 3 4 5] in order", got)
	}
}
