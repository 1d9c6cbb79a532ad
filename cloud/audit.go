package cloud

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/larder-lockers/larder/protocol"
)

// audit appends e to the audit log inside tx. The key sorts by time; a random suffix
// keeps two entries of one nanosecond apart without a shared counter (a hot key would
// serialise every writer on it). An entry of a site is also indexed under the site, so
// that reading one site's log never reads another's.
func audit(tx Tx, now time.Time, e AuditEntry) {
	if e.Time.IsZero() {
		e.Time = now.UTC()
	}
	e.ID = auditKey(e.Time) + "-" + randomToken(4)
	putJSON(tx, bAudit, e.ID, e) // an error here surfaces at commit
	if e.Site != "" {
		tx.Put(bAuditSite, e.Site+"/"+e.ID, []byte{})
	}
}

// auditKey is the time part of an audit id: entries sort by it.
func auditKey(t time.Time) string { return fmt.Sprintf("%020d", t.UnixNano()) }

// auditIndexedKey marks in bMeta that bAuditSite covers the whole log.
const auditIndexedKey = "audit_site_indexed"

// indexAudit fills bAuditSite from the log once, for a store written before the index
// existed (Resume calls it on start).
func indexAudit(tx Tx) error {
	if tx.Get(bMeta, auditIndexedKey) != nil {
		return nil
	}
	var err error
	tx.Scan(bAudit, "", func(k string, v []byte) bool {
		var e AuditEntry
		if err = json.Unmarshal(v, &e); err != nil {
			return false
		}
		if e.Site != "" {
			err = tx.Put(bAuditSite, e.Site+"/"+e.ID, []byte{})
		}
		return err == nil
	})
	if err != nil {
		return internal("index audit", err)
	}
	return tx.Put(bMeta, auditIndexedKey, []byte("1"))
}

// AuditFilter selects audit entries. Zero fields select everything. Since and Until are
// inclusive. Reason matches entries whose reason contains it (ignoring case); the
// other fields match exactly. After is the ID of the last entry of the previous page.
// Limit zero means 100 (at most 1000).
type AuditFilter struct {
	Site        string
	Compartment int
	Reason      string
	Credential  protocol.CredentialKind
	Actor       string
	Since       time.Time
	Until       time.Time
	After       string
	Limit       int
}

func (f AuditFilter) match(e AuditEntry) bool {
	return (f.Site == "" || e.Site == f.Site) &&
		(f.Compartment == 0 || e.Compartment == f.Compartment) &&
		(f.Credential == "" || e.Credential == f.Credential) &&
		(f.Actor == "" || e.Actor == f.Actor) &&
		(f.Reason == "" || strings.Contains(strings.ToLower(e.Reason), strings.ToLower(f.Reason)))
}

func (f *AuditFilter) check() error {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	switch {
	case f.Limit > 1000:
		return Invalid("limit", "at most 1000")
	case !f.Until.IsZero() && !f.Since.IsZero() && f.Until.Before(f.Since):
		return Invalid("until", "before since")
	case f.Site != "" && !protocol.ValidSite(f.Site):
		return Invalid("site", "not a valid site id")
	case f.Compartment < 0:
		return Invalid("compartment", "want a positive integer")
	case f.Credential != "" && !validCredential(f.Credential):
		return Invalid("credential", "unknown credential kind %q", f.Credential)
	case len(f.Reason) > 200:
		return Invalid("reason", "at most 200 characters")
	case len(f.Actor) > 200:
		return Invalid("actor", "at most 200 characters")
	}
	return nil
}

// Audit queries the audit log, oldest first (ops, admin): at most f.Limit entries; the
// next page starts after the last one's ID (f.After).
func (s *Service) Audit(ctx context.Context, p Principal, f AuditFilter) ([]AuditEntry, error) {
	if err := require(p, RoleOps, RoleAdmin); err != nil {
		return nil, err
	}
	if err := f.check(); err != nil {
		return nil, err
	}
	out := []AuditEntry{}
	err := s.store.View(ctx, func(tx Tx) error {
		return scanAudit(tx, f, func(e AuditEntry) bool {
			out = append(out, e)
			return len(out) < f.Limit
		})
	})
	return out, internal("audit", err)
}

// scanAudit calls fn, oldest first, for each entry f selects (Limit aside) until fn
// returns false. With a site it reads only that site's index; either way only the keys
// from Since (or After) to Until.
func scanAudit(tx Tx, f AuditFilter, fn func(AuditEntry) bool) error {
	bucket, prefix := bAudit, ""
	if f.Site != "" {
		bucket, prefix = bAuditSite, f.Site+"/"
	}
	from, to := prefix, prefix+"~" // "~" sorts after every digit
	if !f.Since.IsZero() {
		from = prefix + auditKey(f.Since)
	}
	if f.After != "" && prefix+f.After+"\x00" > from {
		from = prefix + f.After + "\x00"
	}
	if !f.Until.IsZero() {
		to = prefix + auditKey(f.Until.Add(time.Nanosecond))
	}
	var err error
	tx.Range(bucket, from, to, func(k string, v []byte) bool {
		if f.Site != "" {
			// The entry and its index key are written in one transaction.
			if v = tx.Get(bAudit, strings.TrimPrefix(k, prefix)); v == nil {
				err = fmt.Errorf("audit index %s: no entry", k)
				return false
			}
		}
		var e AuditEntry
		if err = json.Unmarshal(v, &e); err != nil {
			return false
		}
		return !f.match(e) || fn(e)
	})
	return err
}

func validCredential(c protocol.CredentialKind) bool {
	switch c {
	case protocol.CredNone, protocol.CredPickup, protocol.CredDriver, protocol.CredOpsRemote,
		protocol.CredOpsLocal, protocol.CredSystem:
		return true
	}
	return false
}
