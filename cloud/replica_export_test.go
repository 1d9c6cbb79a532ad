package cloud

import "context"

// Hooks for the replica tests (replica_test.go): what Run does on its tickers, run now.

// Heartbeat rewrites the cloud's heartbeat as Run does every aliveEvery.
func (s *Service) Heartbeat(ctx context.Context) error { return s.heartbeat(ctx) }

// StoreLive writes the live state this process heard as Run does every liveEvery.
func (s *Service) StoreLive(ctx context.Context) error { return s.storeLive(ctx) }
