package broker_test

import (
	"testing"

	"github.com/larder-lockers/larder/cloud/broker"
	"github.com/larder-lockers/larder/protocol"
)

// FuzzACL: whatever topic or filter an edge sends, the ACL grants exactly the topics
// of its own site that protocol builds for it, never a wildcard beyond its site filter.
func FuzzACL(f *testing.F) {
	for _, c := range protocol.Channels() {
		f.Add("site-a", protocol.Topic("site-a", c))
		f.Add("site-a", protocol.Topic("site-b", c))
		f.Add("site-a", protocol.AllSites(c))
	}
	f.Add("site-a", protocol.SiteFilter("site-a"))
	f.Add("site-a", "larder/v1/site-a/#/x")
	f.Add("site-a", "larder/v1/site-a/events/")
	f.Add("site-a", "larder/v1/site-a//events")
	f.Add("site-a", "$share/g/larder/v1/site-a/commands")
	f.Add("site-a", "larder/v1/+/events")
	f.Add("site-a", "larder/v1/site-a/events\x00")
	f.Fuzz(func(t *testing.T, site, topic string) {
		if !protocol.ValidSite(site) {
			return
		}
		allowed := map[string]bool{}
		readable := map[string]bool{protocol.SiteFilter(site): true}
		for _, c := range protocol.Channels() {
			if c.FromEdge() {
				allowed[protocol.Topic(site, c)] = true
			} else {
				readable[protocol.Topic(site, c)] = true
			}
		}
		if got := broker.MayPublish(site, topic); got != allowed[topic] {
			t.Fatalf("MayPublish(%q, %q) = %v", site, topic, got)
		}
		if got := broker.MaySubscribe(site, topic); got != readable[topic] {
			t.Fatalf("MaySubscribe(%q, %q) = %v", site, topic, got)
		}
	})
}
