package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"strconv"

	"github.com/jackc/pgx/v5"
)

// Copied is what [CopyToPG] copied: the counts by state and a digest (hex SHA-256) of
// every notification's id, state and attempts in id order, equal on both sides.
type Copied struct {
	Stats  Stats
	Digest string
}

// CopyToPG copies every notification of from (pending ones with their data, attempts
// and next try; dead letters, delivered and cancelled ones with their bookkeeping) into
// to, which must be empty, and verifies the copy before it commits: the counts by state
// and the digest of ids, states and attempts read back from PostgreSQL must equal the
// bbolt queue's. Records are unsealed with from's key and sealed with to's (the keys
// may differ). Times keep PostgreSQL's precision, microseconds. On any error nothing is
// written. Run it with the bbolt cloud stopped (it reads one snapshot), for the move to
// PostgreSQL; claims start empty.
func CopyToPG(ctx context.Context, from *BoltQueue, to *PGQueue) (Copied, error) {
	if err := from.Check(ctx); err != nil {
		return Copied{}, fmt.Errorf("notify: copy: the bbolt queue is inconsistent: %w", err)
	}
	tx, err := to.pool.Begin(ctx)
	if err != nil {
		return Copied{}, fmt.Errorf("notify: copy: %w", err)
	}
	defer tx.Rollback(ctx)
	// No enqueue may slip in between the emptiness check and the copy.
	if _, err := tx.Exec(ctx, `LOCK TABLE larder_notices IN SHARE ROW EXCLUSIVE MODE`); err != nil {
		return Copied{}, fmt.Errorf("notify: copy: %w", err)
	}
	var nonEmpty bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM larder_notices)`).Scan(&nonEmpty); err != nil {
		return Copied{}, fmt.Errorf("notify: copy: %w", err)
	}
	if nonEmpty {
		return Copied{}, fmt.Errorf("notify: copy: larder_notices is not empty: the copy goes into an empty outbox only")
	}

	var want Copied
	sum := sha256.New()
	err = from.view(ctx, func(t *boltTx) error {
		c := t.items.Cursor()
		k, _ := c.First()
		var rowErr error
		src := pgx.CopyFromFunc(func() ([]any, error) {
			if k == nil {
				return nil, nil
			}
			n, err := t.get(string(k))
			if err != nil {
				rowErr = err
				return nil, err
			}
			k, _ = c.Next()
			want.Stats.add(n.State, 1)
			digest(sum, n.ID, string(n.State), n.Attempts)
			return to.row(n), nil
		})
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"larder_notices"}, []string{"id", "kind", "channel", "order_id", "site",
			"state", "attempts", "next_try", "created", "due", "done_at", "last_error", "lang", "target", "body"}, src)
		if rowErr != nil {
			return rowErr
		}
		return err
	})
	if err != nil {
		return Copied{}, fmt.Errorf("notify: copy: %w", err)
	}
	want.Digest = hex.EncodeToString(sum.Sum(nil))

	// Read the copy back, in the same order (ids are COLLATE "C": byte order, as bbolt's).
	var got Copied
	sum.Reset()
	rows, err := tx.Query(ctx, `SELECT id, state, attempts FROM larder_notices ORDER BY id`)
	if err != nil {
		return Copied{}, fmt.Errorf("notify: copy: verify: %w", err)
	}
	for rows.Next() {
		var id, state string
		var attempts int
		if err := rows.Scan(&id, &state, &attempts); err != nil {
			rows.Close()
			return Copied{}, fmt.Errorf("notify: copy: verify: %w", err)
		}
		got.Stats.add(State(state), 1)
		digest(sum, id, state, attempts)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return Copied{}, fmt.Errorf("notify: copy: verify: %w", err)
	}
	got.Digest = hex.EncodeToString(sum.Sum(nil))
	if got != want {
		return Copied{}, fmt.Errorf("notify: copy: verify: PostgreSQL holds %+v, bbolt %+v", got, want)
	}
	if err := tx.Commit(ctx); err != nil {
		return Copied{}, fmt.Errorf("notify: copy: %w", err)
	}
	return want, nil
}

// digest adds one notification to the copy's digest.
func digest(h hash.Hash, id, state string, attempts int) {
	h.Write([]byte(id))
	h.Write([]byte{0})
	h.Write([]byte(state))
	h.Write([]byte{0})
	h.Write(strconv.AppendInt(nil, int64(attempts), 10))
	h.Write([]byte{'\n'})
}
