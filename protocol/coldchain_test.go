package protocol_test

import (
	"errors"
	"testing"
	"time"

	"github.com/larder-lockers/larder/protocol"
)

// A cold-chain record that cannot be true names its field; the event it rides on still
// decodes (the receiver records the cold chain as unknown).
func TestColdChainCheck(t *testing.T) {
	from := time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC)
	to := from.Add(time.Hour)
	good := protocol.ColdChain{From: from, To: to, LimitC: 8, AboveSeconds: 60, MissingSeconds: 3600}
	if err := good.Check(); err != nil {
		t.Fatalf("good record: %v", err)
	}
	for _, tc := range []struct {
		field string
		mod   func(*protocol.ColdChain)
	}{
		{"cold_chain.from", func(c *protocol.ColdChain) { c.From = time.Time{} }},
		{"cold_chain.to", func(c *protocol.ColdChain) { c.To = time.Time{} }},
		{"cold_chain.to", func(c *protocol.ColdChain) { c.To = from.Add(-time.Second) }},
		{"cold_chain.above_seconds", func(c *protocol.ColdChain) { c.AboveSeconds = -1 }},
		{"cold_chain.above_seconds", func(c *protocol.ColdChain) { c.AboveSeconds = 3602 }},
		{"cold_chain.missing_seconds", func(c *protocol.ColdChain) { c.MissingSeconds = -0.5 }},
		{"cold_chain.missing_seconds", func(c *protocol.ColdChain) { c.MissingSeconds = 7200 }},
	} {
		c := good
		tc.mod(&c)
		var fe *protocol.FieldError
		if err := c.Check(); !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%+v: %v, want a field error on %s", c, err, tc.field)
		}
		e := protocol.Event{Kind: protocol.EventPickedUp, Credential: protocol.CredPickup, Order: "ord-1", ColdChain: &c}
		if err := e.Validate(); err != nil {
			t.Errorf("picked_up with a bad record is refused: %v", err)
		}
	}
}
