package pg

import (
	"context"
	"time"
)

// StartWatch is Watch returning once it listens, for tests that write right after.
func (s *Store) StartWatch(ctx context.Context, buckets []string, fn func(bucket, key string)) error {
	_, err := s.startWatch(ctx, buckets, fn)
	return err
}

// SetKeepChanges shortens how long the change feed keeps a change, for a test of a watch
// that could not read it for that long. Call it before Watch.
func (s *Store) SetKeepChanges(d time.Duration) { s.keep = d }
