package pg

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// A transaction's round trips. BEGIN is not one of its own: it goes out in front of the
// transaction's first read, in one pipeline (pgx.Batch.BeginTx). At the end the fence
// check, the buffered writes and COMMIT go out together (txn.commit). So a transaction
// of n reads that writes costs n+1 round trips, one of n reads that does not write n+1
// (its COMMIT), and a read-only one that read nothing none.

var (
	rwOptions = pgx.TxOptions{IsoLevel: pgx.RepeatableRead}
	roOptions = pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}
)

// read runs one query of the transaction and calls each for every row, beginning the
// transaction in the same round trip if it has not begun.
func (t *txn) read(sql string, args []any, each func(pgx.Rows) error) error {
	if t.tx != nil {
		rows, _ := t.tx.Query(t.ctx, sql, args...)
		return forEach(rows, each)
	}
	var b pgx.Batch
	b.BeginTx(t.opts)
	b.Queue(sql, args...)
	br := t.conn.SendBatch(t.ctx, &b)
	t.tx = br.Tx() // closed, its methods failing, if the batch failed before BEGIN
	if _, err := br.Exec(); err != nil {
		br.Close()
		return err
	}
	rows, _ := br.Query()
	err := forEach(rows, each)
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return err
}

func forEach(rows pgx.Rows, each func(pgx.Rows) error) error {
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// begin begins the transaction in a round trip of its own if no read has begun it (for
// an adapter's statements, Pgx). A failure fails the transaction.
func (t *txn) begin() {
	if t.tx != nil {
		return
	}
	var b pgx.Batch
	b.BeginTx(t.opts)
	br := t.conn.SendBatch(t.ctx, &b)
	t.tx = br.Tx()
	if err := br.Close(); err != nil {
		t.fail("begin", "", "", err)
	}
}

// end rolls back whatever the connection still has open (a transaction that failed or
// was not committed), so that it goes back to the pool idle; the pool would close it
// otherwise. A transaction committed in txn.commit's batch leaves nothing open.
func (t *txn) end(ctx context.Context) {
	if st := t.conn.PgConn().TxStatus(); st == 'T' || st == 'E' {
		t.conn.Exec(ctx, "ROLLBACK")
	}
}
