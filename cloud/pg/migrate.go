package pg

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one file migrations/NNNN_name.sql.
type migration struct {
	version int
	name    string
	sql     string
}

// migrationLock is the key of the transaction-level advisory lock that serialises the
// migrations of replicas starting at once ("larder" in ASCII).
const migrationLock = 0x6c6172646572

// migrations returns the embedded migrations in version order.
func migrations() ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, p := range names {
		base := strings.TrimSuffix(path.Base(p), ".sql")
		num, name, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("pg: migration %s: want NNNN_name.sql", p)
		}
		b, err := migrationFiles.ReadFile(p)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: name, sql: string(b)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("pg: two migrations numbered %d", out[i].version)
		}
	}
	return out, nil
}

// migrate applies the migrations the database lacks, each in its own transaction under
// the advisory lock, and refuses a database that has a migration this binary does not
// know (a newer larder-cloud ran on it).
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	all, err := migrations()
	if err != nil {
		return err
	}
	latest := all[len(all)-1].version
	for {
		done, err := migrateOne(ctx, pool, all, latest)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}

// migrateOne applies the first missing migration; done reports that none was missing.
func migrateOne(ctx context.Context, pool *pgxpool.Pool, all []migration, latest int) (done bool, err error) {
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(migrationLock)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS larder_schema_migrations (
			version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`)
		if err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, "SELECT version FROM larder_schema_migrations")
		applied, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			return err
		}
		for _, v := range applied {
			if int(v) > latest {
				return fmt.Errorf("database has schema migration %d, this larder-cloud knows up to %d: run a newer larder-cloud", v, latest)
			}
		}
		for _, m := range all {
			if slices.Contains(applied, int32(m.version)) {
				continue
			}
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("migration %04d_%s: %w", m.version, m.name, err)
			}
			_, err := tx.Exec(ctx, "INSERT INTO larder_schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name)
			return err
		}
		done = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("pg: migrate: %w", err)
	}
	return done, nil
}
