package cloud

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/larder-lockers/larder/protocol"
)

// The invariants of the store: what must hold between the domain's records and its
// indexes after every committed transaction, whichever process (or replica) wrote it.
// CheckInvariants reads them all in one read transaction, so it sees one committed
// state; the simulation test runs it after every step, the replicated end-to-end test
// over PostgreSQL after a replica was killed, and an operator may run it over a copy of
// a store.

// Violation is one broken invariant. Rule is a stable snake_case name (what broke);
// Detail names the records involved. Neither carries a code or a key.
type Violation struct {
	Rule   string `json:"rule"`
	Detail string `json:"detail"`
}

func (v Violation) String() string { return v.Rule + ": " + v.Detail }

// Rules CheckInvariants reports.
const (
	RuleBadRecord        = "bad_record"                // a record whose key or fields do not fit its bucket
	RuleOrderState       = "order_state"               // an order's fields contradict its state
	RuleOrderIndex       = "order_index"               // by_site, by_plat, ext_ids or live disagree with the orders
	RuleSlotNotHeld      = "slot_not_held"             // a live order's compartment does not name it (or its generation)
	RuleDoubleBooked     = "double_booked"             // a compartment claimed by two live orders
	RuleCompartmentOrder = "compartment_order"         // a compartment held by an order that does not claim it
	RuleGeneration       = "generation"                // a slot's generation above its compartment's
	RuleFreeIndex        = "free_index"                // the free index is not exactly the free compartments
	RuleCodeIndex        = "code_index"                // the codes index is not exactly the live, valid codes
	RuleCodeWait         = "code_wait"                 // a held code and the code_waits index disagree
	RuleDueIndex         = "due_index"                 // a live order's deadline is missing from the due index, or a stale entry
	RuleDesiredVersion   = "desired_version"           // an edge applied a version the cloud never issued
	RuleCommand          = "command"                   // a command record in an impossible state
	RuleEffectTwice      = "effect_twice"              // an order picked up (or returned) twice in the audit log
	RuleAuditIndex       = "audit_index"               // the audit log and its per-site index disagree
	RuleUnknownSite      = "unknown_site"              // a record of a site that does not exist
	maxViolationsPerRule = 20                          // beyond this, one more violation says how many were left out
	dueKeyTimeDigits     = len("000000000000")         // dueKey's time part
	auditTimeDigits      = len("00000000000000000000") // auditKey
)

// CheckInvariants checks every invariant of the store's records and indexes in one
// read transaction and returns the broken ones (none: nil), at most 20 of each rule
// plus one saying how many more. The error is for a store that cannot be read or a
// record that cannot be decoded.
//
// What it checks: every order is in a known state with the fields that state implies
// (a final order closed, holding no code, compartment or deadline); every live order
// holds each compartment of its slots (the compartment names it, with the slot's
// generation) and no compartment is claimed by two live orders; every compartment that
// names an order is claimed by it; no generation handed out is above its compartment's;
// the free index is exactly the present, in-service compartments without an order; the
// codes index is exactly the valid codes of the live orders, each unique at its site;
// the code_waits index is exactly the orders whose held code waits for a version; each
// live order with a deadline has exactly one entry in the due index, at its deadline
// (the policy-independent part of it), and the due index has no other entry; the order
// indexes (by_site, by_plat, ext_ids, live) agree with the orders both ways; a site's
// edge never applied a desired version above the site's; command records are in a
// known state consistent with their error; no order was picked up or returned twice
// according to the audit log (the edge reports one pickup per order; a duplicate
// delivery of one report is applied once); the per-site audit index matches the log.
func CheckInvariants(ctx context.Context, store Store) ([]Violation, error) {
	var c checker
	err := store.View(ctx, func(tx Tx) error {
		c = checker{tx: tx, count: map[string]int{}}
		return c.run()
	})
	if err != nil {
		return nil, fmt.Errorf("check invariants: %w", err)
	}
	for rule, n := range c.count {
		if n > maxViolationsPerRule {
			c.out = append(c.out, Violation{Rule: rule, Detail: fmt.Sprintf("and %d more", n-maxViolationsPerRule)})
		}
	}
	sort.SliceStable(c.out, func(i, j int) bool { return c.out[i].Rule < c.out[j].Rule })
	return c.out, nil
}

// checker is one run of CheckInvariants: the records it decoded and what it found.
type checker struct {
	tx    Tx
	out   []Violation
	count map[string]int

	sites  map[string]Site
	comps  map[string]Compartment // site/%05d
	orders map[string]Order
}

func (c *checker) fail(rule, format string, args ...any) {
	c.count[rule]++
	if c.count[rule] <= maxViolationsPerRule {
		c.out = append(c.out, Violation{Rule: rule, Detail: fmt.Sprintf(format, args...)})
	}
}

// decodeAll decodes every value of bucket into a T, calling fn with the key.
func decodeAll[T any](tx Tx, bucket string, fn func(key string, v T)) error {
	var derr error
	err := tx.Scan(bucket, "", func(k string, raw []byte) bool {
		var v T
		if derr = json.Unmarshal(raw, &v); derr != nil {
			derr = fmt.Errorf("decode %s/%s: %w", bucket, k, derr)
			return false
		}
		fn(k, v)
		return true
	})
	if derr != nil {
		return derr
	}
	return err
}

// readIndex returns the keys of bucket and their values as strings.
func readIndex(tx Tx, bucket string) (map[string]string, error) {
	out := map[string]string{}
	err := tx.Scan(bucket, "", func(k string, v []byte) bool {
		out[k] = string(v)
		return true
	})
	return out, err
}

func (c *checker) run() error {
	tx := c.tx
	c.sites, c.comps, c.orders = map[string]Site{}, map[string]Compartment{}, map[string]Order{}
	if err := decodeAll(tx, bSites, func(k string, s Site) {
		if s.ID != k {
			c.fail(RuleBadRecord, "site record %q has id %q", k, s.ID)
		}
		c.sites[k] = s
	}); err != nil {
		return err
	}
	if err := decodeAll(tx, bComps, func(k string, cp Compartment) {
		if compKey(cp.Site, cp.Number) != k {
			c.fail(RuleBadRecord, "compartment record %q is %s/%d", k, cp.Site, cp.Number)
		}
		c.comps[k] = cp
	}); err != nil {
		return err
	}
	if err := decodeAll(tx, bOrders, func(k string, o Order) {
		if o.ID != k {
			c.fail(RuleBadRecord, "order record %q has id %q", k, o.ID)
		}
		c.orders[k] = o
	}); err != nil {
		return err
	}
	for _, step := range []func() error{c.checkSites, c.checkOrders, c.checkCompartments, c.checkCodes, c.checkDue,
		c.checkOrderIndexes, c.checkCommands, c.checkAudit, c.checkCredentials} {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

func (c *checker) checkSites() error {
	for id, s := range c.sites {
		if s.EdgeDesiredVersion > s.DesiredVersion {
			c.fail(RuleDesiredVersion, "site %s: edge applied v%d, the cloud issued only v%d", id, s.EdgeDesiredVersion, s.DesiredVersion)
		}
	}
	return nil
}

// checkOrders checks each order's state against its fields and its compartments.
func (c *checker) checkOrders() error {
	claimed := map[string]string{} // site/%05d → live order
	for _, id := range sortedIDs(c.orders) {
		o := c.orders[id]
		if _, ok := c.sites[o.Site]; !ok {
			c.fail(RuleUnknownSite, "order %s is of unknown site %q", id, o.Site)
		}
		switch {
		case !o.State.Valid():
			c.fail(RuleOrderState, "order %s has unknown state %q", id, o.State)
			continue
		case !o.State.Live() && o.ClosedAt.IsZero():
			c.fail(RuleOrderState, "order %s is %s but was never closed", id, o.State)
		case o.State.Live() && !o.ClosedAt.IsZero():
			c.fail(RuleOrderState, "order %s is %s but has a closing time", id, o.State)
		case o.State == StateLoaded && o.LoadedAt.IsZero():
			c.fail(RuleOrderState, "order %s is loaded without a loading time", id)
		case !o.State.Live() && o.HeldCode != nil:
			c.fail(RuleOrderState, "%s order %s still holds a sealed code", o.State, id)
		case o.State == StateExpired && o.HeldCode != nil:
			c.fail(RuleOrderState, "expired order %s still holds a sealed code", id)
		}
		for _, sl := range o.Slots {
			k := compKey(o.Site, sl.Compartment)
			cp, ok := c.comps[k]
			if ok && sl.Generation > cp.Generation {
				c.fail(RuleGeneration, "order %s slot %s has generation %d, the compartment only %d", id, k, sl.Generation, cp.Generation)
			}
			if !o.State.Live() {
				continue
			}
			if other, dup := claimed[k]; dup {
				c.fail(RuleDoubleBooked, "compartment %s is claimed by live orders %s and %s", k, other, id)
				continue
			}
			claimed[k] = id
			switch {
			case !ok:
				c.fail(RuleSlotNotHeld, "order %s claims compartment %s, which does not exist", id, k)
			case cp.Order != id || cp.Generation != sl.Generation:
				c.fail(RuleSlotNotHeld, "order %s holds %s at generation %d, the compartment names order %q at generation %d",
					id, k, sl.Generation, cp.Order, cp.Generation)
			}
		}
	}
	for k, cp := range c.comps {
		if cp.Order != "" && claimed[k] != cp.Order {
			c.fail(RuleCompartmentOrder, "compartment %s names order %s, which is not live there", k, cp.Order)
		}
	}
	return nil
}

func (c *checker) checkCompartments() error {
	free, err := readIndex(c.tx, bFree)
	if err != nil {
		return err
	}
	for k, cp := range c.comps {
		if _, ok := c.sites[cp.Site]; !ok {
			c.fail(RuleUnknownSite, "compartment %s is of unknown site", k)
		}
		fk := freeKey(cp)
		_, indexed := free[fk]
		delete(free, fk)
		if cp.free() != indexed {
			c.fail(RuleFreeIndex, "compartment %s: free %v, indexed free %v", k, cp.free(), indexed)
		}
	}
	for fk := range free {
		c.fail(RuleFreeIndex, "free index entry %s names no compartment", fk)
	}
	return nil
}

func (c *checker) checkCodes() error {
	codes, err := readIndex(c.tx, bCodes)
	if err != nil {
		return err
	}
	waits, err := readIndex(c.tx, bCodeWaits)
	if err != nil {
		return err
	}
	for _, id := range sortedIDs(c.orders) {
		o := c.orders[id]
		wk := o.Site + "/" + id
		_, waiting := waits[wk]
		delete(waits, wk)
		switch {
		case !o.State.Live() && waiting:
			c.fail(RuleCodeWait, "%s order %s is in code_waits", o.State, id)
		case waiting != (o.HeldVersion > 0):
			c.fail(RuleCodeWait, "order %s waits for v%d, indexed in code_waits %v", id, o.HeldVersion, waiting)
		case o.HeldVersion > 0 && o.HeldCode == nil:
			c.fail(RuleCodeWait, "order %s waits for v%d without a held code", id, o.HeldVersion)
		}
		if !o.State.Live() || o.CodeInvalid {
			continue
		}
		ck := o.Site + "/" + o.CodeDigest
		got, ok := codes[ck]
		delete(codes, ck)
		if !ok || got != id {
			c.fail(RuleCodeIndex, "order %s: its live code is indexed to %q (shared or missing)", id, got)
		}
	}
	for ck, id := range codes {
		c.fail(RuleCodeIndex, "codes entry %s names order %s, which has no live valid code there", redactDigest(ck), id)
	}
	for wk := range waits {
		c.fail(RuleCodeWait, "code_waits entry %s names no order", wk)
	}
	return nil
}

// redactDigest shortens a site/digest key for a report: the digest is of a live code.
func redactDigest(k string) string {
	site, d, _ := strings.Cut(k, "/")
	if len(d) > 8 {
		d = d[:8] + "…"
	}
	return site + "/" + d
}

// checkDue checks the due index against the live orders' deadlines. The policy's part of
// a deadline (LoadGrace after the window of an order never loaded) is not in the store,
// so that deadline is checked to be no earlier than the window's end.
func (c *checker) checkDue() error {
	due := map[string][]int64{} // order → unix seconds of its entries
	err := c.tx.Scan(bDue, "", func(k string, _ []byte) bool {
		t, err := strconv.ParseInt(k[:min(len(k), dueKeyTimeDigits)], 10, 64)
		if len(k) <= dueKeyTimeDigits+1 || k[dueKeyTimeDigits] != '/' || err != nil {
			c.fail(RuleDueIndex, "due entry %q is not time/order", k)
			return true
		}
		id := k[dueKeyTimeDigits+1:]
		due[id] = append(due[id], t)
		return true
	})
	if err != nil {
		return err
	}
	for _, id := range sortedIDs(c.orders) {
		o := c.orders[id]
		ts := due[id]
		delete(due, id)
		var want time.Time // zero: no deadline
		exact := true
		switch o.State {
		case StateAssigned:
			if anyLoaded(&o) {
				want = o.ExpiresAt
			} else {
				want, exact = o.Window.End, false
			}
		case StateLoaded:
			if want = reminderAt(&o); want.IsZero() {
				want = o.ExpiresAt
			}
		}
		switch {
		case want.IsZero() && len(ts) > 0:
			c.fail(RuleDueIndex, "%s order %s has %d due entries, want none", o.State, id, len(ts))
		case want.IsZero():
		case len(ts) != 1:
			c.fail(RuleDueIndex, "%s order %s has %d due entries, want 1", o.State, id, len(ts))
		case exact && ts[0] != want.Unix(), !exact && ts[0] < want.Unix():
			c.fail(RuleDueIndex, "%s order %s is due at %d, its deadline is %d", o.State, id, ts[0], want.Unix())
		}
	}
	for id := range due {
		c.fail(RuleDueIndex, "due entries name order %s, which does not exist", id)
	}
	return nil
}

// checkOrderIndexes checks by_site, by_plat, ext_ids and live against the orders, both
// ways.
func (c *checker) checkOrderIndexes() error {
	idx := map[string]map[string]string{}
	for _, b := range []string{bBySite, bByPlat, bExtIDs, bLive} {
		m, err := readIndex(c.tx, b)
		if err != nil {
			return err
		}
		idx[b] = m
	}
	for _, id := range sortedIDs(c.orders) {
		o := c.orders[id]
		for _, k := range []struct{ bucket, key string }{{bBySite, o.Site + "/" + id}, {bByPlat, o.Platform + "/" + id}} {
			if _, ok := idx[k.bucket][k.key]; !ok {
				c.fail(RuleOrderIndex, "order %s is missing from %s", id, k.bucket)
			}
			delete(idx[k.bucket], k.key)
		}
		ek := o.Platform + "/" + o.ExternalID
		if got := idx[bExtIDs][ek]; got != id {
			c.fail(RuleOrderIndex, "ext_ids %s names %q, not order %s", ek, got, id)
		}
		delete(idx[bExtIDs], ek)
		lk := o.Site + "/" + id
		if _, ok := idx[bLive][lk]; ok != o.State.Live() {
			c.fail(RuleOrderIndex, "%s order %s: in the live index %v", o.State, id, ok)
		}
		delete(idx[bLive], lk)
	}
	for _, b := range []string{bBySite, bByPlat, bExtIDs, bLive} {
		for k := range idx[b] {
			c.fail(RuleOrderIndex, "%s entry %s names no order", b, k)
		}
	}
	return nil
}

// checkCommands checks each command record's state: known, with an error exactly when
// it failed, of a known site, filed under its own id.
func (c *checker) checkCommands() error {
	return decodeAll(c.tx, bCmds, func(k string, r CommandRecord) {
		switch st := r.State; {
		case r.Command.ID != k:
			c.fail(RuleCommand, "command record %s has id %q", k, r.Command.ID)
		case st != protocol.StateQueued && st != protocol.StateInProgress && !st.Final():
			c.fail(RuleCommand, "command %s has unknown state %q", k, st)
		case st == protocol.StateSucceeded && r.Error != "":
			c.fail(RuleCommand, "command %s succeeded with error %s", k, r.Error)
		case st.Final() && st != protocol.StateSucceeded && r.Error == "":
			c.fail(RuleCommand, "command %s is %s without an error code", k, st)
		}
		if _, ok := c.sites[r.Site]; !ok {
			c.fail(RuleUnknownSite, "command %s is of unknown site %q", k, r.Site)
		}
	})
}

// checkAudit counts the edge's pickups and returns per order, and checks the per-site
// index once the log is fully indexed (indexAudit).
func (c *checker) checkAudit() error {
	site, err := readIndex(c.tx, bAuditSite)
	if err != nil {
		return err
	}
	indexed := c.tx.Get(bMeta, auditIndexedKey) != nil
	effects := map[string]int{} // action/order → count
	err = decodeAll(c.tx, bAudit, func(k string, e AuditEntry) {
		if e.ID != k || len(k) < auditTimeDigits {
			c.fail(RuleBadRecord, "audit entry %q has id %q", k, e.ID)
		}
		if e.Actor == "edge" && e.Order != "" && (e.Action == "picked_up" || e.Action == "expired_removed") {
			effects[e.Action+"/"+e.Order]++
		}
		if e.Site != "" && indexed {
			if _, ok := site[e.Site+"/"+k]; !ok {
				c.fail(RuleAuditIndex, "audit entry %s of site %s is not in audit_site", k, e.Site)
			}
			delete(site, e.Site+"/"+k)
		}
	})
	if err != nil {
		return err
	}
	for _, k := range sortedIDs(effects) {
		if n := effects[k]; n > 1 {
			action, order, _ := strings.Cut(k, "/")
			c.fail(RuleEffectTwice, "order %s: %d %s events applied", order, n, action)
		}
	}
	if indexed {
		for k := range site {
			c.fail(RuleAuditIndex, "audit_site entry %s names no entry", k)
		}
	}
	return nil
}

func (c *checker) checkCredentials() error {
	return decodeAll(c.tx, bCreds, func(k string, cr Credential) {
		if cr.Site+"/"+cr.ID != k {
			c.fail(RuleBadRecord, "credential record %s is %s/%s", k, cr.Site, cr.ID)
		}
		if _, ok := c.sites[cr.Site]; !ok {
			c.fail(RuleUnknownSite, "credential %s is of unknown site", k)
		}
	})
}

func sortedIDs[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
