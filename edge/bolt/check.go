package bolt

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	bbolt "go.etcd.io/bbolt"

	"github.com/larder-lockers/larder/edge"
	"github.com/larder-lockers/larder/protocol"
)

// Check verifies the store's invariants (package doc) in tx and returns every violation
// found, joined.
func Check(tx *bbolt.Tx) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("bolt: invariant: "+format, args...)) }
	t := &txn{tx: tx}

	comps := map[int]edge.Compartment{}
	cs, err := t.Compartments()
	if err != nil {
		return err
	}
	for _, c := range cs {
		comps[c.Number] = c
	}

	holder := map[int]string{}
	reservations := map[string]edge.Reservation{}
	err = t.Reservations(func(r edge.Reservation) bool {
		reservations[r.Order] = r
		if !r.State.Holds() {
			return true
		}
		for _, s := range r.Slots {
			if other, ok := holder[s.Compartment]; ok {
				bad("compartment %d held by orders %s and %s", s.Compartment, other, r.Order) // 1
			}
			holder[s.Compartment] = r.Order
			c, ok := comps[s.Compartment]
			switch {
			case !ok:
				bad("order %s holds unknown compartment %d", r.Order, s.Compartment)
			case c.Order != r.Order || !c.State.Held():
				bad("order %s holds compartment %d, which is %s for %q", r.Order, s.Compartment, c.State, c.Order) // 2
			case s.Loaded && c.State != edge.StateLoaded && c.State != edge.StateOpening:
				bad("compartment %d is loaded for order %s but %s", s.Compartment, r.Order, c.State)
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	for n, c := range comps {
		if c.State.Held() && holder[n] != c.Order {
			bad("compartment %d is %s for order %q, which does not hold it", n, c.State, c.Order) // 2
		}
		if !c.State.Held() && c.Order != "" {
			bad("compartment %d is %s but names order %q", n, c.State, c.Order)
		}
	}

	indexed := map[string]bool{}
	err = tx.Bucket(bCodes).ForEach(func(k, v []byte) error {
		r, ok := reservations[string(v)]
		switch {
		case !ok:
			bad("code index entry points at missing order %s", v) // 3
		case !r.State.CodeLive():
			bad("code index entry points at order %s in state %s", v, r.State)
		case r.CodeDigest != string(k):
			bad("code index entry of order %s is not its digest", v)
		}
		indexed[string(v)] = true
		return nil
	})
	if err != nil {
		return err
	}
	for o, r := range reservations {
		if r.State.CodeLive() && !indexed[o] {
			bad("order %s (%s) has no code index entry", o, r.State)
		}
	}

	err = tx.Bucket(bUsedCodes).ForEach(func(k, v []byte) error {
		r, ok := reservations[string(v)]
		if !ok || (r.State != edge.OrderPickedUp && r.State != edge.OrderRemoved) || r.CodeDigest != string(k) {
			bad("used-code entry points at order %s, which is not finished with that code", v) // 3
		}
		return nil
	})
	if err != nil {
		return err
	}

	meta := tx.Bucket(bMeta)
	acked, high := getU64(meta, kOutboxAcked), highWater(meta)
	if acked > high {
		bad("outbox acked %d beyond high water %d", acked, high)
	}
	want := acked + 1
	err = tx.Bucket(bOutbox).ForEach(func(k, v []byte) error {
		seq := beU64(k)
		if seq != want {
			bad("outbox sequence %d where %d was expected", seq, want) // 4
		}
		want = seq + 1
		m, err := protocol.Decode(v)
		if err != nil {
			bad("outbox entry %d does not decode: %v", seq, err)
		} else if m.Seq != seq {
			bad("outbox entry %d carries seq %d", seq, m.Seq)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if want != high+1 && high > acked {
		bad("outbox ends at %d, high water %d", want-1, high)
	}
	nRejected := 0
	err = tx.Bucket(bRejected).ForEach(func(k, v []byte) error {
		nRejected++
		var re RejectedEvent
		switch err := json.Unmarshal(v, &re); {
		case err != nil || re.Seq != beU64(k):
			bad("rejected event %d is corrupt", beU64(k))
		case re.Seq > acked:
			bad("rejected event %d not acknowledged (acked %d)", re.Seq, acked) // set aside only with its ack
		}
		return nil
	})
	if err != nil {
		return err
	}
	if nRejected > MaxRejected {
		bad("%d rejected events kept, at most %d", nRejected, MaxRejected)
	}

	ab := tx.Bucket(bAudit)
	var n uint64
	err = ab.ForEach(func(k, v []byte) error {
		n++
		if beU64(k) != n {
			bad("audit key %d where %d was expected", beU64(k), n) // 5
		}
		var a edge.AuditEntry
		if err := json.Unmarshal(v, &a); err != nil || a.Seq != beU64(k) {
			bad("audit entry %d is corrupt", beU64(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if ab.Sequence() != n {
		bad("audit sequence %d but %d entries", ab.Sequence(), n)
	}

	if err := checkCommandAcks(tx, bad); err != nil {
		return err
	}
	if err := checkDriverTokens(tx, bad); err != nil {
		return err
	}

	ss, err := t.Sessions()
	if err != nil {
		return err
	}
	for _, s := range ss {
		r, ok := reservations[s.Order]
		if !ok || !r.State.Holds() {
			bad("session %s names order %s, which holds nothing", s.Kind, s.Order) // 6
			continue
		}
		for _, c := range s.Compartments {
			if !slices.ContainsFunc(r.Slots, func(sl edge.Slot) bool { return sl.Compartment == c }) {
				bad("session %s of order %s opens compartment %d, not the order's", s.Kind, s.Order, c)
			}
		}
	}
	return errors.Join(errs...)
}
