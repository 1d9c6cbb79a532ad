package pg

import "context"

// StartWatch is Watch returning once it listens, for tests that write right after.
func (s *Store) StartWatch(ctx context.Context, buckets []string, fn func(bucket, key string)) error {
	_, err := s.startWatch(ctx, buckets, fn)
	return err
}
