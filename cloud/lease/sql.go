package lease

// The statements the manager runs, in one place. Every expiry is computed and compared
// with the database's clock (now()), never a replica's, so replicas' clock skew does not
// matter; durations travel as milliseconds ($n * interval '1 millisecond').
//
// A lease row whose site no replica has owned yet has owner ” and token 0; the first
// claim makes the token 1, and every later claim (a new tenure: another replica, or the
// same one after its lease expired) adds 1. Renewing and releasing name the token as
// well, so they act only on the tenure the manager holds.
const (
	// sqlHeartbeat: $1 replica id, $2 true on the first heartbeat of a Run.
	sqlHeartbeat = `INSERT INTO larder_replicas (id) VALUES ($1)
ON CONFLICT (id) DO UPDATE SET seen_at = now(),
  started_at = CASE WHEN $2 THEN now() ELSE larder_replicas.started_at END`

	// sqlForgetReplicas deletes the rows of replicas not seen for a day (killed ones
	// never delete their own row); until then an operator can see when they vanished.
	sqlForgetReplicas = `DELETE FROM larder_replicas WHERE seen_at < now() - interval '1 day'`

	// sqlRenew: $1 replica id, $2 TTL (ms), $3 names, $4 tokens. A held lease missing
	// from the result is lost.
	sqlRenew = `UPDATE larder_leases SET expires_at = now() + $2 * interval '1 millisecond'
WHERE owner = $1 AND expires_at > now()
  AND (name, token) IN (SELECT * FROM unnest($3::text[], $4::bigint[]))
RETURNING name, token`

	// sqlCounts: $1 TTL (ms). The replicas seen within a TTL, the site leases there
	// are, and the fewest live site leases a live replica holds.
	sqlCounts = `WITH live AS (SELECT id FROM larder_replicas WHERE seen_at > now() - $1 * interval '1 millisecond')
SELECT (SELECT count(*) FROM live),
  (SELECT count(*) FROM larder_leases WHERE name LIKE 'site/%'),
  (SELECT coalesce(min(n), 0) FROM (SELECT count(l.name) AS n FROM live
     LEFT JOIN larder_leases l ON l.owner = live.id AND l.expires_at > now() AND l.name LIKE 'site/%'
     GROUP BY live.id) held)`

	// sqlClaimWork: $1 replica id, $2 TTL (ms). Returns the token when the work lease
	// was free (absent or expired) and is now ours, no row otherwise.
	sqlClaimWork = `INSERT INTO larder_leases (name, owner, token, expires_at)
VALUES ('work', $1, 1, now() + $2 * interval '1 millisecond')
ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, token = larder_leases.token + 1,
  expires_at = excluded.expires_at
WHERE larder_leases.expires_at <= now()
RETURNING token`

	// sqlAddSites: $1 lease names. Creates the rows of sites no replica has seen
	// before, unowned and expired since ever ('-infinity'), so that they count as
	// orphans and are claimed at once. Sorted, so that replicas inserting the same new names at once
	// take the row locks in the same order and wait for each other instead of
	// deadlocking.
	sqlAddSites = `INSERT INTO larder_leases (name, owner, token, expires_at)
SELECT n, '', 0, '-infinity' FROM unnest($1::text[]) AS n ORDER BY n
ON CONFLICT (name) DO NOTHING`

	// sqlClaimSites: $1 replica id, $2 TTL (ms), $3 minimum time expired (ms), $4 at
	// most this many. Claims site leases that expired (or were never owned, or were
	// released), longest expired first; SKIP LOCKED lets replicas claiming at the same
	// moment take different rows instead of waiting on each other.
	sqlClaimSites = `UPDATE larder_leases l SET owner = $1, token = l.token + 1,
  expires_at = now() + $2 * interval '1 millisecond'
FROM (SELECT name FROM larder_leases
      WHERE name LIKE 'site/%' AND expires_at <= now() - $3 * interval '1 millisecond'
      ORDER BY expires_at LIMIT $4 FOR UPDATE SKIP LOCKED) c
WHERE l.name = c.name
RETURNING l.name, l.token`

	// sqlRelease: $1 replica id, $2 names, $3 tokens. Ends the tenures at once, so the
	// next claimer need not wait for them to expire.
	sqlRelease = `UPDATE larder_leases SET expires_at = now()
WHERE owner = $1 AND expires_at > now()
  AND (name, token) IN (SELECT * FROM unnest($2::text[], $3::bigint[]))`

	// sqlLeave: $1 replica id.
	sqlLeave = `DELETE FROM larder_replicas WHERE id = $1`
)
