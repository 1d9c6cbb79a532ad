package cloud

import (
	"context"
	"encoding/json"
	"errors"
)

// Store is the cloud's storage: a transactional, ordered key-value store of named
// buckets. The domain encodes its own records (JSON) and keeps its own indexes, so a
// Store has to provide only atomic transactions over bytes. cloud/bolt (bbolt) is the
// embedded one, of one process; a store that several cloud replicas share also
// implements [Watcher] and honours the fences of a transaction's context (fence.go).
type Store interface {
	// Update runs fn in a read-write transaction and commits durably before returning nil.
	// If fn returns an error, none of its writes happen and Update returns that error.
	// fn may run more than once (implementations may retry), so it must compute its
	// results afresh on every run and not accumulate across runs. A shared store runs
	// the transactions of several processes as if one after the other (serializable),
	// and refuses with [ErrFenced] one whose context carries a fence that no longer
	// holds ([WithFences]).
	Update(ctx context.Context, fn func(Tx) error) error
	// View runs fn in a read-only transaction.
	View(ctx context.Context, fn func(Tx) error) error
}

// Tx is one transaction. Byte slices returned by Get and passed to Scan are valid only
// until fn returns; callers decode or copy them. The Service wraps the store's Tx (to
// keep its fleet index); an adapter that needs the store's own type unwraps it with an
// Unwrap() Tx method first.
type Tx interface {
	// Get returns the value of key in bucket, or nil if there is none.
	Get(bucket, key string) []byte
	// Put sets key in bucket. In a read-only transaction it returns an error.
	Put(bucket, key string, value []byte) error
	// Delete removes key from bucket; deleting a missing key is not an error.
	Delete(bucket, key string) error
	// Scan calls fn for each key in bucket that starts with prefix, in key order, until fn
	// returns false. fn may Put and Delete (the scan works on a snapshot of the range).
	Scan(bucket, prefix string, fn func(key string, value []byte) bool) error
	// Range is Scan over the keys k with from <= k < to (to "" means no upper bound), so
	// that a scan of keys sorting by time starts at the range's start instead of the
	// bucket's.
	Range(bucket, from, to string, fn func(key string, value []byte) bool) error
	// OnCommit registers fn to run after the transaction has committed durably.
	// Implementations run the functions of successive transactions in commit order, one
	// at a time, on one goroutine: fn must be quick and must not block (hand work to a
	// queue). Functions of a transaction that fails are dropped.
	OnCommit(fn func())
}

// Buckets the domain uses. A Store creates them on open.
const (
	bSites     = "sites"     // site id → Site
	bComps     = "comps"     // site/%05d → Compartment
	bFree      = "free"      // site/zone/rank/low/%05d → "" for each free, in-service compartment
	bOrders    = "orders"    // order id → Order
	bBySite    = "by_site"   // site/order id → ""  (orders of a site, any state)
	bLive      = "live"      // site/order id → "" (live orders of a site)
	bDue       = "due"       // %012d unix seconds/order id → "" (next deadline of a live order)
	bByPlat    = "by_plat"   // platform/order id → ""
	bExtIDs    = "ext_ids"   // platform/external id → order id
	bIdem      = "idem"      // platform/idempotency key → idemRecord
	bCodes     = "codes"     // site/code digest → order id (live codes only)
	bKeys      = "keys"      // API key digest → APIKey
	bKeyIDs    = "key_ids"   // API key id → digest
	bCmds      = "cmds"      // command id → CommandRecord
	bAudit     = "audit"     // %020d time/seq → AuditEntry
	bSeen      = "seen"      // site/message id → "" (edge messages already applied)
	bAlarms    = "alarms"    // site/kind/compartment → Alarm (open alarms)
	bCreds     = "creds"     // site/credential id → LoadingCredential record
	bMeta      = "meta"      // misc singletons ("alive": the cloud's heartbeat, edge.go)
	bPlatforms = "platforms" // platform id → Platform (webhook)
)

// bCodeWaits indexes the orders whose held code waits for the edge (code.go): site/order
// id → "".
const bCodeWaits = "code_waits"

// bIdemEnds indexes the idempotency keys by the end of their retention (orders.go):
// %012d unix seconds/platform/idempotency key → "".
const bIdemEnds = "idem_ends"

// bCmdsPending indexes the commands without a final state by site (command.go): site/
// command id → "". A birth republishes its site's pending commands from it instead of
// reading every command ever stored.
const bCmdsPending = "cmds_pending"

// bAuditSite indexes the audit log by site (audit.go): site/audit id → "".
const bAuditSite = "audit_site"

// bLiveSites holds, over a shared store, the live state of each site as the replica
// that hears it last wrote it (live.go): site id → LiveSite.
const bLiveSites = "live_sites"

// bLimits and bLimitEnds are the failure counters of the rate limits (limits.go): key →
// failureWindow, and %012d unix seconds of the window's end/key → "" (what the sweep
// drops).
const (
	bLimits    = "limits"
	bLimitEnds = "limit_ends"
)

// Buckets lists every bucket, for stores that create them up front.
func Buckets() []string {
	return []string{bSites, bComps, bFree, bOrders, bBySite, bLive, bDue, bByPlat, bExtIDs, bIdem, bIdemEnds, bCodes, bCodeWaits,
		bKeys, bKeyIDs, bCmds, bCmdsPending, bAudit, bAuditSite, bAlarms, bCreds, bMeta, bPlatforms, bLiveSites, bLimits, bLimitEnds}
}

// ErrReadOnly is returned by Put and Delete in a View.
var ErrReadOnly = errors.New("store: read-only transaction")

func getJSON(tx Tx, bucket, key string, v any) (bool, error) {
	b := tx.Get(bucket, key)
	if b == nil {
		return false, nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, internal("decode "+bucket+"/"+key, err)
	}
	return true, nil
}

func putJSON(tx Tx, bucket, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return internal("encode "+bucket, err)
	}
	return tx.Put(bucket, key, b)
}
