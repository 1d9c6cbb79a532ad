package bolt

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	bbolt "go.etcd.io/bbolt"
	bberrors "go.etcd.io/bbolt/errors"

	"github.com/larder-lockers/larder/edge"
	"github.com/larder-lockers/larder/protocol"
)

var (
	bCompartments = []byte("compartments")
	bReservations = []byte("reservations")
	bCodes        = []byte("codes")
	bUsedCodes    = []byte("used_codes")
	bSessions     = []byte("sessions")
	bCredentials  = []byte("credentials")
	bCredDigests  = []byte("cred_digests")
	bOutbox       = []byte("outbox")
	bInbox        = []byte("inbox")
	bCommands     = []byte("commands")
	bAudit        = []byte("audit")
	bMeta         = []byte("meta")

	allBuckets = [][]byte{bCompartments, bReservations, bCodes, bUsedCodes, bSessions, bCredentials, bCredDigests,
		bOutbox, bInbox, bCommands, bAudit, bMeta, bCommandAcks, bDriverTokens, bRejected}

	kDesiredVersion = []byte("desired_version")
	kOutboxNext     = []byte("outbox_next")
	kOutboxAcked    = []byte("outbox_acked")
	// The keypad throttle. A database from before the throttle may still hold the old
	// keypad lockout under "lockout"; nothing reads it, so an old long lock ends with
	// the upgrade.
	kThrottle = []byte("throttle")
)

// Sentinel errors.
var (
	// ErrLocked: another process holds the database (its lock timeout expired).
	ErrLocked = errors.New("bolt: database is locked by another process")
	// ErrAckBeyond: the cloud acknowledged a sequence that was never written.
	ErrAckBeyond = errors.New("bolt: ack beyond outbox high water")
)

// Options configure Open. The zero value is usable.
type Options struct {
	// Timeout is how long Open waits for the file lock; zero means 1 s (never forever).
	Timeout time.Duration
	Log     *slog.Logger
	// UnsafeNoSync skips fsync on commit. Benchmarks only: it shows what the code costs
	// apart from the disk. A daemon with it set loses acknowledged pickups on power loss.
	UnsafeNoSync bool
}

// Store is the edge's bbolt database. Safe for concurrent use.
type Store struct {
	db  *bbolt.DB
	log *slog.Logger
}

var _ edge.Store = (*Store)(nil)

// Open opens (creating if needed) the database at path.
func Open(path string, opts Options) (*Store, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	// A generous initial map avoids remapping (a pause of every reader and writer) as
	// the file grows; untouched pages cost address space, not memory.
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: opts.Timeout, InitialMmapSize: 64 << 20})
	if errors.Is(err, bberrors.ErrTimeout) {
		return nil, fmt.Errorf("bolt: open %s: %w (is another larder-edge running on this data directory?)", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	db.NoSync = opts.UnsafeNoSync
	return &Store{db: db, log: opts.Log}, nil
}

// Close closes the database. Idempotent.
func (s *Store) Close() error {
	if s == nil || s.db == nil {
		return nil
	}
	return s.db.Close()
}

// DB is the underlying bbolt handle (for Check and tools).
func (s *Store) DB() *bbolt.DB { return s.db }

// View implements edge.Store.
func (s *Store) View(fn func(edge.Tx) error) error {
	return s.db.View(func(tx *bbolt.Tx) error { return fn(&txn{tx: tx}) })
}

// Update implements edge.Store.
func (s *Store) Update(fn func(edge.Tx) error) error {
	return s.db.Update(func(tx *bbolt.Tx) error { return fn(&txn{tx: tx}) })
}

// Check verifies the invariants (see the package doc).
func (s *Store) Check() error { return s.db.View(Check) }

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

func getU64(b *bbolt.Bucket, k []byte) uint64 {
	v := b.Get(k)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func u32(v int) []byte {
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, uint32(v))
	return b
}

// txn implements edge.Tx over one bbolt transaction.
type txn struct{ tx *bbolt.Tx }

func (t *txn) b(name []byte) *bbolt.Bucket { return t.tx.Bucket(name) }

func get[T any](b *bbolt.Bucket, k []byte) (T, bool, error) {
	var v T
	raw := b.Get(k)
	if raw == nil {
		return v, false, nil
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, false, fmt.Errorf("bolt: decode %s: %w", k, err)
	}
	return v, true, nil
}

func put(b *bbolt.Bucket, k []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(k, raw)
}

func (t *txn) Compartment(n int) (edge.Compartment, bool, error) {
	return get[edge.Compartment](t.b(bCompartments), u32(n))
}

func (t *txn) Compartments() ([]edge.Compartment, error) {
	var out []edge.Compartment
	err := t.b(bCompartments).ForEach(func(k, v []byte) error {
		var c edge.Compartment
		if err := json.Unmarshal(v, &c); err != nil {
			return err
		}
		out = append(out, c)
		return nil
	})
	return out, err
}

func (t *txn) PutCompartment(c edge.Compartment) error {
	if c.Number < 1 {
		return fmt.Errorf("bolt: compartment number %d", c.Number)
	}
	return put(t.b(bCompartments), u32(c.Number), c)
}

func (t *txn) Reservation(order string) (edge.Reservation, bool, error) {
	return get[edge.Reservation](t.b(bReservations), []byte(order))
}

func (t *txn) Reservations(fn func(edge.Reservation) bool) error {
	c := t.b(bReservations).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		var r edge.Reservation
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("bolt: decode reservation %s: %w", k, err)
		}
		if !fn(r) {
			return nil
		}
	}
	return nil
}

func (t *txn) PutReservation(r edge.Reservation) error {
	if r.Order == "" {
		return errors.New("bolt: reservation without order id")
	}
	codes := t.b(bCodes)
	old, had, err := t.Reservation(r.Order)
	if err != nil {
		return err
	}
	if had && old.CodeDigest != "" && string(codes.Get([]byte(old.CodeDigest))) == r.Order &&
		(old.CodeDigest != r.CodeDigest || !r.State.CodeLive()) {
		if err := codes.Delete([]byte(old.CodeDigest)); err != nil {
			return err
		}
	}
	if r.State.CodeLive() && r.CodeDigest != "" {
		if o := codes.Get([]byte(r.CodeDigest)); o != nil && string(o) != r.Order {
			return fmt.Errorf("bolt: code digest already belongs to order %s", o)
		}
		if err := codes.Put([]byte(r.CodeDigest), []byte(r.Order)); err != nil {
			return err
		}
	}
	if (r.State == edge.OrderPickedUp || r.State == edge.OrderRemoved) && r.CodeDigest != "" {
		if err := t.b(bUsedCodes).Put([]byte(r.CodeDigest), []byte(r.Order)); err != nil {
			return err
		}
	}
	return put(t.b(bReservations), []byte(r.Order), r)
}

func (t *txn) DeleteReservation(order string) error {
	old, had, err := t.Reservation(order)
	if err != nil || !had {
		return err
	}
	for _, name := range [][]byte{bCodes, bUsedCodes} {
		b := t.b(name)
		if string(b.Get([]byte(old.CodeDigest))) == order {
			if err := b.Delete([]byte(old.CodeDigest)); err != nil {
				return err
			}
		}
	}
	return t.b(bReservations).Delete([]byte(order))
}

func (t *txn) UsedCode(digest string) (string, bool, error) {
	v := t.b(bUsedCodes).Get([]byte(digest))
	return string(v), v != nil, nil
}

func (t *txn) OrderByCode(digest string) (string, bool, error) {
	v := t.b(bCodes).Get([]byte(digest))
	return string(v), v != nil, nil
}

func (t *txn) Session(id string) (edge.Session, bool, error) {
	return get[edge.Session](t.b(bSessions), []byte(id))
}

func (t *txn) Sessions() ([]edge.Session, error) {
	var out []edge.Session
	err := t.b(bSessions).ForEach(func(k, v []byte) error {
		var s edge.Session
		if err := json.Unmarshal(v, &s); err != nil {
			return err
		}
		out = append(out, s)
		return nil
	})
	return out, err
}

func (t *txn) PutSession(s edge.Session) error { return put(t.b(bSessions), []byte(s.ID), s) }

func (t *txn) DeleteSession(id string) error { return t.b(bSessions).Delete([]byte(id)) }

func (t *txn) CredentialByDigest(digest string) (edge.Credential, bool, error) {
	id := t.b(bCredDigests).Get([]byte(digest))
	if id == nil {
		return edge.Credential{}, false, nil
	}
	return get[edge.Credential](t.b(bCredentials), id)
}

func (t *txn) Credentials() ([]edge.Credential, error) {
	var out []edge.Credential
	err := t.b(bCredentials).ForEach(func(k, v []byte) error {
		var c edge.Credential
		if err := json.Unmarshal(v, &c); err != nil {
			return err
		}
		out = append(out, c)
		return nil
	})
	return out, err
}

func (t *txn) PutCredential(c edge.Credential) error {
	if err := t.DeleteCredential(c.ID); err != nil {
		return err
	}
	if err := t.b(bCredDigests).Put([]byte(c.Digest), []byte(c.ID)); err != nil {
		return err
	}
	return put(t.b(bCredentials), []byte(c.ID), c)
}

func (t *txn) DeleteCredential(id string) error {
	old, had, err := get[edge.Credential](t.b(bCredentials), []byte(id))
	if err != nil || !had {
		return err
	}
	if err := t.b(bCredDigests).Delete([]byte(old.Digest)); err != nil {
		return err
	}
	return t.b(bCredentials).Delete([]byte(id))
}

func (t *txn) Enqueue(at time.Time, e protocol.Event) (uint64, error) {
	meta := t.b(bMeta)
	seq := getU64(meta, kOutboxNext)
	if seq == 0 {
		seq = 1
	}
	payload, err := protocol.Encode(protocol.Header{ID: protocol.NewID(), Seq: seq, Time: at}, e)
	if err != nil {
		return 0, fmt.Errorf("bolt: enqueue %s: %w", e.Kind, err)
	}
	if err := t.b(bOutbox).Put(u64(seq), payload); err != nil {
		return 0, err
	}
	return seq, meta.Put(kOutboxNext, u64(seq+1))
}

func (t *txn) Audit(a edge.AuditEntry) error {
	b := t.b(bAudit)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	a.Seq = seq
	return put(b, u64(seq), a)
}

func (t *txn) Throttle() (edge.Throttle, error) {
	th, _, err := get[edge.Throttle](t.b(bMeta), kThrottle)
	return th, err
}

func (t *txn) PutThrottle(th edge.Throttle) error { return put(t.b(bMeta), kThrottle, th) }

var zonePrefix = []byte("zone:")

func (t *txn) ZoneReadings() ([]edge.ZoneReading, error) {
	var out []edge.ZoneReading
	c := t.b(bMeta).Cursor()
	for k, v := c.Seek(zonePrefix); k != nil && bytes.HasPrefix(k, zonePrefix); k, v = c.Next() {
		var z edge.ZoneReading
		if err := json.Unmarshal(v, &z); err != nil {
			return nil, fmt.Errorf("bolt: decode %s: %w", k, err)
		}
		out = append(out, z)
	}
	return out, nil
}

func (t *txn) PutZoneReading(z edge.ZoneReading) error {
	return put(t.b(bMeta), append(slices.Clone(zonePrefix), z.Zone...), z)
}

func (t *txn) DesiredVersion() (uint64, error) { return getU64(t.b(bMeta), kDesiredVersion), nil }

func (t *txn) SetDesiredVersion(v uint64) error { return t.b(bMeta).Put(kDesiredVersion, u64(v)) }

func (t *txn) Seen(id string) (bool, error) { return t.b(bInbox).Get([]byte(id)) != nil, nil }

func (t *txn) MarkSeen(id string, until time.Time) error {
	return t.b(bInbox).Put([]byte(id), u64(uint64(until.UnixNano())))
}

func (t *txn) Command(id string) (edge.CommandRecord, bool, error) {
	return get[edge.CommandRecord](t.b(bCommands), []byte(id))
}

func (t *txn) PutCommand(c edge.CommandRecord) error { return put(t.b(bCommands), []byte(c.ID), c) }

func (t *txn) UnfinishedCommands() ([]string, error) {
	var ids []string
	err := t.b(bCommands).ForEach(func(k, v []byte) error {
		var c edge.CommandRecord
		if err := json.Unmarshal(v, &c); err != nil {
			return err
		}
		if !c.State.Final() {
			ids = append(ids, c.ID)
		}
		return nil
	})
	return ids, err
}
