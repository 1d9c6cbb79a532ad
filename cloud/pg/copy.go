package pg

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/larder-lockers/larder/cloud"
)

// copyBatch is the number of keys Copy writes per transaction.
const copyBatch = 2000

// CopyReport says what Copy copied, or what Verify found, bucket by bucket.
type CopyReport struct {
	Buckets []BucketReport
	Keys    int // keys in all buckets
	Elapsed time.Duration
}

// BucketReport is one bucket's key count and SHA-256 over its (bucket, key, value)
// triples in key order, each field length-prefixed; equal on both sides when the copy is
// exact.
type BucketReport struct {
	Name   string
	Keys   int
	SHA256 string
}

// Copy copies every bucket of cloud.Buckets() from src (a cloud/bolt store, say) into
// dst, which must be empty, in transactions of copyBatch keys, then verifies the copy
// (Verify). The source must not change meanwhile: copy from a stopped cloud. On an
// error dst may hold part of the copy; empty it (TRUNCATE larder_kv) before trying
// again.
func Copy(ctx context.Context, src cloud.Store, dst *Store) (CopyReport, error) {
	start := time.Now()
	var n int
	if err := dst.pool.QueryRow(ctx, "SELECT count(*) FROM (SELECT 1 FROM larder_kv LIMIT 1) x").Scan(&n); err != nil {
		return CopyReport{}, fmt.Errorf("pg: copy: %w", err)
	}
	if n > 0 {
		return CopyReport{}, fmt.Errorf("pg: copy: the destination already holds records; copy into an empty database")
	}
	for _, bucket := range cloud.Buckets() {
		if err := copyBucket(ctx, src, dst, bucket); err != nil {
			return CopyReport{}, fmt.Errorf("pg: copy %s: %w", bucket, err)
		}
	}
	rep, err := Verify(ctx, src, dst)
	rep.Elapsed = time.Since(start)
	return rep, err
}

// copyBucket copies one bucket in one read transaction of src, writing a batch to dst
// each time copyBatch keys are read.
func copyBucket(ctx context.Context, src cloud.Store, dst *Store, bucket string) error {
	return src.View(ctx, func(tx cloud.Tx) error {
		var rows [][]any
		var err error
		write := func() {
			err = pgx.BeginFunc(ctx, dst.pool, func(tx pgx.Tx) error {
				_, err := tx.CopyFrom(ctx, pgx.Identifier{"larder_kv"}, []string{"bucket", "key", "value"}, pgx.CopyFromRows(rows))
				return err
			})
			rows = rows[:0]
		}
		scanErr := tx.Scan(bucket, "", func(k string, v []byte) bool {
			if err = checkKey(k); err != nil {
				err = fmt.Errorf("key %q: %w", k, err)
				return false
			}
			rows = append(rows, []any{bucket, k, append([]byte{}, v...)})
			if len(rows) == copyBatch {
				write()
			}
			return err == nil
		})
		if scanErr != nil {
			return scanErr
		}
		if err == nil && len(rows) > 0 {
			write()
		}
		return err
	})
}

// Verify compares src and dst bucket by bucket (key counts and SHA-256, each side read
// through its own Store) and returns dst's report; a difference is an error naming the
// bucket.
func Verify(ctx context.Context, src cloud.Store, dst *Store) (CopyReport, error) {
	var rep CopyReport
	for _, bucket := range cloud.Buckets() {
		s, err := digest(ctx, src, bucket)
		if err != nil {
			return rep, fmt.Errorf("pg: verify %s: source: %w", bucket, err)
		}
		d, err := digest(ctx, dst, bucket)
		if err != nil {
			return rep, fmt.Errorf("pg: verify %s: destination: %w", bucket, err)
		}
		rep.Buckets = append(rep.Buckets, d)
		rep.Keys += d.Keys
		if s != d {
			return rep, fmt.Errorf("pg: verify %s: source has %d keys (sha256 %s), destination %d (sha256 %s)", bucket, s.Keys, s.SHA256, d.Keys, d.SHA256)
		}
	}
	return rep, nil
}

func digest(ctx context.Context, st cloud.Store, bucket string) (BucketReport, error) {
	r := BucketReport{Name: bucket}
	err := st.View(ctx, func(tx cloud.Tx) error {
		h := sha256.New()
		r.Keys = 0
		err := tx.Scan(bucket, "", func(k string, v []byte) bool {
			field(h, []byte(bucket))
			field(h, []byte(k))
			field(h, v)
			r.Keys++
			return true
		})
		r.SHA256 = hex.EncodeToString(h.Sum(nil))
		return err
	})
	return r, err
}

// field writes b length-prefixed, so that no two different triples hash alike.
func field(h hash.Hash, b []byte) {
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(b))))
	h.Write(b)
}
