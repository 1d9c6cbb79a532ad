package edge_test

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/larder-lockers/larder/edge"
	"github.com/larder-lockers/larder/protocol"
)

// TestDriverSessionSurvivesRestart: a driver signed in at the kiosk stays signed in
// across a restart of the edge, and the session ends when it would have without one:
// DriverSession (15 min) after sign-in. The token itself is nowhere in the database.
func TestDriverSessionSurvivesRestart(t *testing.T) {
	h := newHarness(t)
	h.reserve(alice)
	tok := h.driver()
	h.clock.Advance(10 * time.Minute)
	h.restart(nil)
	if d, err := h.l.Driver(tok); err != nil || d != "drv-7" {
		t.Fatalf("after a restart: driver %q, %v", d, err)
	}
	if _, err := h.l.DriverOpen(h.ctx, "drv-7", alice.id, 1); err != nil {
		t.Fatalf("open after a restart: %v", err)
	}
	h.clock.Advance(5*time.Minute - time.Second)
	h.restart(nil)
	if _, err := h.l.Driver(tok); err != nil {
		t.Fatalf("a second before its end: %v", err)
	}
	h.clock.Advance(time.Second)
	if _, err := h.l.Driver(tok); code(err) != edge.CodeBadCredential {
		t.Fatalf("15 minutes after sign-in: %v", err)
	}

	// Signing out is durable too.
	tok2 := h.driver()
	if err := h.l.DriverLogout(tok2); err != nil {
		t.Fatal(err)
	}
	h.restart(nil)
	if _, err := h.l.Driver(tok2); code(err) != edge.CodeBadCredential {
		t.Fatalf("signed-out token after a restart: %v", err)
	}

	h.store.Close()
	raw, err := os.ReadFile(h.path)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{tok, tok2} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Fatal("a kiosk token is stored in clear")
		}
	}
}

// TestDriverSessionEndsWithCredential: a session lasts at most as long as the
// credential it was opened with, and ends at once when the cloud revokes it.
func TestDriverSessionEndsWithCredential(t *testing.T) {
	h := newHarness(t)
	v, _ := h.l.DesiredVersion()
	cred := func(exp time.Time) []protocol.LoadingCredential {
		return []protocol.LoadingCredential{{ID: "cred-1", Digest: protocol.CredentialDigest(siteKey, "driver-secret"), Driver: "drv-7", ExpiresAt: exp}}
	}
	h.desired(protocol.Desired{Version: v + 1, Full: true, Credentials: cred(t0.Add(5 * time.Minute))})
	tok := h.driver()
	h.restart(nil)
	h.clock.Advance(5 * time.Minute)
	if _, err := h.l.Driver(tok); code(err) != edge.CodeBadCredential {
		t.Fatalf("session outlived its credential: %v", err)
	}

	h.desired(protocol.Desired{Version: v + 2, Full: true, Credentials: cred(t0.Add(time.Hour))})
	tok = h.driver()
	h.desired(protocol.Desired{Version: v + 3, Full: true})
	if _, err := h.l.Driver(tok); code(err) != edge.CodeBadCredential {
		t.Fatalf("session of a revoked credential: %v", err)
	}
	h.restart(nil)
	if ts := h.driverTokens(); len(ts) != 0 {
		t.Fatalf("revoked session still stored: %+v", ts)
	}
}

// TestDriverSessionsBounded: past MaxDriverTokens live sessions, a sign-in ends the
// session that would end soonest; sessions that have ended are swept at sign-in.
func TestDriverSessionsBounded(t *testing.T) {
	h := newHarness(t)
	h.reserve(alice)
	var toks []string
	for range edge.MaxDriverTokens + 1 {
		toks = append(toks, h.driver())
		h.clock.Advance(time.Second)
	}
	if _, err := h.l.Driver(toks[0]); code(err) != edge.CodeBadCredential {
		t.Fatalf("oldest session kept beyond the bound: %v", err)
	}
	for _, tok := range toks[1:] {
		if _, err := h.l.Driver(tok); err != nil {
			t.Fatalf("live session ended: %v", err)
		}
	}
	if n := len(h.driverTokens()); n != edge.MaxDriverTokens {
		t.Fatalf("%d sessions stored", n)
	}
	h.clock.Advance(time.Hour)
	h.driver()
	if n := len(h.driverTokens()); n != 1 {
		t.Fatalf("%d sessions stored after the others ended", n)
	}
}

func (h *harness) driverTokens() []edge.DriverToken {
	h.t.Helper()
	var ts []edge.DriverToken
	if err := h.store.View(func(tx edge.Tx) error {
		var err error
		ts, err = tx.DriverTokens()
		return err
	}); err != nil {
		h.t.Fatal(err)
	}
	return ts
}
