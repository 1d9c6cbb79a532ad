package cloud

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"
)

// Rate limits: failure counters in fixed windows, kept in the store so that every
// replica sharing it counts the same failures (the resident page's wrong codes per order
// and per client address, cloud/web). A key with max failures in its current window is
// blocked until that window ends. A window starts at the key's first failure, so an idle
// key costs nothing; an ended window is dropped by the sweep (bLimitEnds indexes windows
// by their end), so a flood of distinct keys holds at most the keys of the failures of
// one window plus a sweep period.

// FailureLimit is a key and the failures within its window that block it.
type FailureLimit struct {
	Key string
	Max int
}

// failureWindow is a key's current window: when it ends and the failures in it.
type failureWindow struct {
	Ends     time.Time `json:"ends"`
	Failures int       `json:"failures"`
}

// maxLimitKey is the longest key stored as it is; a longer one (a client address a
// proxy made up) is stored as its SHA-256.
const maxLimitKey = 128

func limitKey(key string) string {
	if len(key) <= maxLimitKey {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(sum[:])
}

func windowEndKey(ends time.Time, key string) string {
	return fmt.Sprintf("%012d/%s", ends.Unix(), key)
}

// FailureWait returns how long the longest blocked of limits stays blocked: 0 when none
// is.
func (s *Service) FailureWait(ctx context.Context, limits ...FailureLimit) (time.Duration, error) {
	var wait time.Duration
	err := s.store.View(ctx, func(tx Tx) error {
		wait = 0
		now := s.now()
		for _, l := range limits {
			var w failureWindow
			ok, err := getJSON(tx, bLimits, limitKey(l.Key), &w)
			if err != nil {
				return err
			}
			if left := w.Ends.Sub(now); ok && left > 0 && w.Failures >= l.Max {
				wait = max(wait, left)
			}
		}
		return nil
	})
	return wait, internal("failure wait", err)
}

// CountFailure counts one failure of each of keys, in windows of window (positive).
func (s *Service) CountFailure(ctx context.Context, window time.Duration, keys ...string) error {
	if window <= 0 {
		return Invalid("window", "must be positive")
	}
	return internal("count failure", s.store.Update(ctx, func(tx Tx) error {
		now := s.now().UTC()
		for _, key := range keys {
			key = limitKey(key)
			var w failureWindow
			ok, err := getJSON(tx, bLimits, key, &w)
			if err != nil {
				return err
			}
			if !ok || !now.Before(w.Ends) {
				if ok {
					if err := tx.Delete(bLimitEnds, windowEndKey(w.Ends, key)); err != nil {
						return err
					}
				}
				w = failureWindow{Ends: now.Add(window)}
				if err := tx.Put(bLimitEnds, windowEndKey(w.Ends, key), []byte{}); err != nil {
					return err
				}
			}
			w.Failures++
			if err := putJSON(tx, bLimits, key, w); err != nil {
				return err
			}
		}
		return nil
	}))
}

// maxDropped bounds the windows one sweep drops, so that its transaction stays short
// after a flood; the next sweep drops the rest.
const maxDropped = 10000

// dropEndedWindows deletes the failure windows that ended by now (the sweep).
func dropEndedWindows(tx Tx, now time.Time) error {
	return dropEnded(tx, bLimitEnds, bLimits, windowEndKey(now, ""))
}

// dropEnded deletes, at most maxDropped at a time, the entries of an end-time index
// (ends: "%012d unix seconds/key" → "") before upTo, and the records of records they
// name.
func dropEnded(tx Tx, ends, records, upTo string) error {
	var ended []string
	if err := tx.Range(ends, "", upTo, func(k string, _ []byte) bool {
		ended = append(ended, k)
		return len(ended) < maxDropped
	}); err != nil {
		return err
	}
	for _, k := range ended {
		if err := tx.Delete(ends, k); err != nil {
			return err
		}
		if err := tx.Delete(records, k[13:]); err != nil {
			return err
		}
	}
	return nil
}
