// Package lease decides which larder-cloud replica serves which site, and which one runs
// the periodic work, when several replicas share one PostgreSQL database.
//
// # Leases
//
// A lease is a row of larder_leases (migration 0002_leases.sql): a name ("site/<id>" for
// a site, "work" for the periodic work), its owner (a replica id), a fencing token and an
// expiry. A replica serves a site — subscribes to its topics and applies its events —
// only while it holds the site's lease; it runs the expiry sweep, reminders, lapses,
// command timeouts and notices only while it holds the work lease. One row per name is
// what makes ownership exclusive: PostgreSQL's primary key holds the invariant, not this
// package.
//
// The token is 0 for a site no replica has owned yet and grows by one on every claim (a
// new tenure: another replica, or the same one after its lease expired). A replica
// attaches its fence ([cloud.Fence]: name and token) to the transactions it runs on a
// lease's behalf; the PostgreSQL store commits them only while the row still carries
// that token. So a replica that paused and lost its lease cannot write when it wakes.
//
// # The manager's tick
//
// [Manager.Run] ticks every Config.Renew (default TTL/5 = 2 s). One tick is at most
// three round trips:
//
//  1. one batch: heartbeat (larder_replicas.seen_at), renew every held lease in one
//     UPDATE that names each lease with its token (a lease missing from the result is
//     lost), count the live replicas (seen within a TTL), the site leases and the fewest
//     site leases a live replica holds, and claim the work lease if this replica does not
//     hold it and it is free;
//  2. when Config.Sites lists sites this replica has not seen, one INSERT creates their
//     rows, unowned;
//  3. one statement that either claims expired site leases (UPDATE … FROM (SELECT … FOR
//     UPDATE SKIP LOCKED LIMIT n)) or hands surplus back (expires_at = now()).
//
// A replica's first tick only heartbeats (and registers sites): replicas started together
// count each other before anyone claims.
//
// # Fair share and rebalancing
//
// With n sites and r live replicas the share is ceil(n/r). A replica below it claims
// expired leases up to it, at most 5,000 per tick. A replica above share + slack (slack:
// 2, or 5 % of the share) hands back leases, at most a fifth of a share per tick, until
// it is at its share; a replica above floor(n/r) hands back too while another holds
// fewer than floor(n/r) − slack (a replica that just joined). A replica at its share
// claims only orphans: leases expired for three renew intervals, which a miscounted
// share would otherwise leave unserved, and those of sites nobody has owned yet. A handed-back site is unserved until the next
// claimer's tick, at most one renew interval.
//
// # Time
//
// Every expiry is set and compared by the database (now() + TTL, expires_at <= now()),
// never by a replica's wall clock, so clock skew between replicas does not matter. A
// replica measures only durations, with its monotonic clock: a lease renewed by a
// statement sent at instant s is valid locally until s + TTL − Renew. The database set
// its expiry to at least s + TTL, so the replica gives a lease up (Owned reports false,
// OnChange hears owned=false) at least one renew interval before another replica can
// claim it, even when the database stops answering: every tick's database work is
// cancelled at the first local expiry. What this assumes: the database server's clock
// does not jump forward by more than a renew interval, and the replica's process is not
// frozen between its Owned check and its write (the fence catches that write).
//
// # Timings, with the defaults (TTL 10 s, Renew 2 s)
//
//   - a replica killed with SIGKILL: its leases expire within 10 s of its last renewal,
//     and survivors claim them within two ticks after: its sites are served within 14 s;
//   - a replica that cannot reach the database gives everything up 8 s after its last
//     successful renewal, 2 s before anyone may take over;
//   - Close (a planned restart): the leases are released at once and claimed within one
//     tick (2 s);
//   - a new site: owned within one or two ticks;
//   - a replica that joins: the others hand back a fifth of a share per tick, so it
//     reaches its share in about five ticks.
package lease
