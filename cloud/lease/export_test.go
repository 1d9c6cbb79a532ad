package lease

import "time"

// Snapshot returns the site leases each of ms holds (site id → token) at one instant:
// it holds every manager's lock at once, so no lease can move between two of them
// while it reads, and judges every lease's local validity against one clock reading.
func Snapshot(ms ...*Manager) []map[string]int64 {
	for _, m := range ms {
		m.mu.Lock()
	}
	now := time.Now()
	out := make([]map[string]int64, len(ms))
	for i, m := range ms {
		out[i] = map[string]int64{}
		for n, h := range m.held {
			if isSite(n) && now.Before(h.until) {
				out[i][n[len(sitePrefix):]] = h.token
			}
		}
	}
	for _, m := range ms {
		m.mu.Unlock()
	}
	return out
}
