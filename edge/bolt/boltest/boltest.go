// Package boltest opens throwaway edge stores for tests and checks the store's
// invariants when each test ends.
package boltest

import (
	"errors"
	"path/filepath"
	"testing"

	bberrors "go.etcd.io/bbolt/errors"

	"github.com/larder-lockers/larder/edge/bolt"
)

// Open opens a store in t's temporary directory. When t ends, the invariants are checked
// (a violation fails the test) and the store is closed.
func Open(t testing.TB) *bolt.Store {
	t.Helper()
	return OpenAt(t, filepath.Join(t.TempDir(), "edge.db"))
}

// OpenAt is Open at a given path (to reopen a store within one test).
func OpenAt(t testing.TB, path string) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { CheckAt(t, s, path) })
	return s
}

// CheckAt checks the invariants of the store at path, reopening it if s was closed.
func CheckAt(t testing.TB, s *bolt.Store, path string) {
	t.Helper()
	err := s.Check()
	if errors.Is(err, bberrors.ErrDatabaseNotOpen) {
		s2, oerr := bolt.Open(path, bolt.Options{})
		if oerr != nil {
			t.Errorf("reopening store for the invariant check: %v", oerr)
			return
		}
		defer s2.Close()
		err = s2.Check()
	}
	if err != nil {
		t.Errorf("store invariants violated after the test:\n%v", err)
	}
	s.Close()
}
