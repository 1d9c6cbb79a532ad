package bolt_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/larder-lockers/larder/edge"
	"github.com/larder-lockers/larder/edge/bolt"
	"github.com/larder-lockers/larder/edge/bolt/boltest"
)

const digestA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
const digestB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

func TestDriverTokensPruned(t *testing.T) {
	s := boltest.Open(t)
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	err := s.Update(func(tx edge.Tx) error {
		tx.PutDriverToken(edge.DriverToken{Digest: digestA, Driver: "drv-1", Credential: "cred-1", Expires: now})
		return tx.PutDriverToken(edge.DriverToken{Digest: digestB, Driver: "drv-2", Credential: "cred-1", Expires: now.Add(time.Second)})
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.Prune(now); err != nil || n != 1 {
		t.Fatalf("pruned %d: %v", n, err)
	}
	s.View(func(tx edge.Tx) error {
		if _, ok, _ := tx.DriverToken(digestA); ok {
			t.Error("a session that ended was kept")
		}
		if d, ok, _ := tx.DriverToken(digestB); !ok || d.Driver != "drv-2" {
			t.Errorf("live session %+v %v", d, ok)
		}
		return nil
	})
}

func TestCheckFindsDriverTokenViolations(t *testing.T) {
	s, err := bolt.Open(filepath.Join(t.TempDir(), "edge.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	exp := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	err = s.Update(func(tx edge.Tx) error {
		// A token stored as itself (32 hex characters), not as its digest.
		tx.PutDriverToken(edge.DriverToken{Digest: "0123456789abcdef0123456789abcdef", Driver: "drv-1", Credential: "c", Expires: exp})
		// A session that never ends.
		tx.PutDriverToken(edge.DriverToken{Digest: digestA, Driver: "drv-2", Credential: "c"})
		for i := range edge.MaxDriverTokens {
			d := strings.Repeat("c", 60) + string(rune('a'+i/16)) + string("0123456789abcdef"[i%16]) + "00"
			tx.PutDriverToken(edge.DriverToken{Digest: d, Driver: "drv-3", Credential: "c", Expires: exp})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Check()
	for _, want := range []string{"not its token's digest", `session of "drv-2" lacks`, "driver sessions stored, at most 64"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check did not report %q: %v", want, err)
		}
	}
	if err != nil && strings.Contains(err.Error(), "0123456789abcdef") {
		t.Error("Check printed a token")
	}
}
