package cloud

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// audit appends e to the audit log inside tx. The key sorts by time; a random suffix
// keeps two entries of one nanosecond apart without a shared counter (a hot key would
// serialise every writer on it).
func audit(tx Tx, now time.Time, e AuditEntry) {
	if e.Time.IsZero() {
		e.Time = now.UTC()
	}
	e.ID = fmt.Sprintf("%020d-%s", e.Time.UnixNano(), randomToken(4))
	putJSON(tx, bAudit, e.ID, e) // an error here surfaces at commit
}

// AuditFilter selects audit entries. Zero fields select everything; Limit zero means 100
// (at most 1000).
type AuditFilter struct {
	Site  string
	Since time.Time
	Until time.Time
	Limit int
}

// Audit queries the audit log, oldest first (ops, admin).
func (s *Service) Audit(ctx context.Context, p Principal, f AuditFilter) ([]AuditEntry, error) {
	if err := require(p, RoleOps, RoleAdmin); err != nil {
		return nil, err
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	if f.Limit > 1000 {
		return nil, Invalid("limit", "at most 1000")
	}
	if !f.Until.IsZero() && !f.Since.IsZero() && f.Until.Before(f.Since) {
		return nil, Invalid("until", "before since")
	}
	out := []AuditEntry{}
	err := s.store.View(ctx, func(tx Tx) error {
		var derr error
		start := ""
		if !f.Since.IsZero() {
			start = fmt.Sprintf("%020d", f.Since.UnixNano())
		}
		// Scan with the shortest common prefix: entries sort by time, so stop at Until.
		tx.Scan(bAudit, "", func(k string, v []byte) bool {
			if k < start {
				return true
			}
			var e AuditEntry
			if derr = json.Unmarshal(v, &e); derr != nil {
				return false
			}
			if !f.Until.IsZero() && e.Time.After(f.Until) {
				return false
			}
			if f.Site == "" || e.Site == f.Site {
				out = append(out, e)
			}
			return len(out) < f.Limit
		})
		return derr
	})
	return out, internal("audit", err)
}
