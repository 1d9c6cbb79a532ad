// Package cloud is the domain of Larder's cloud service: sites (locker banks) and their
// compartments, orders and their lifecycle, pickup codes, commands to edges, the audit
// log, and the facts edges report. Adapters live in subpackages named after their
// dependency (bolt, http, mqtt, broker, notify); the assignment policy is cloud/assign;
// cloud/cloudd wires everything into a Main.
//
// # Service and storage
//
// [Service] implements every operation over a [Store]: ordered key-value buckets with
// atomic, durable transactions ([Store.Update], [Store.View]). The domain encodes its
// records as JSON and keeps its own indexes (free compartments by zone and size, live
// codes by digest, live orders by site, deadlines by time), so a store only moves bytes.
// cloud/bolt (bbolt) is the only Store there is.
//
// Invariants (checked by the randomised simulation in sim_test.go):
//   - a compartment holds at most one live reservation (Compartment.Order), and the free
//     index lists exactly the present, in-service compartments without one;
//   - every assignment bumps the compartment's generation (the fencing token the edge
//     checks), so an old code can never open a reused compartment;
//   - pickup codes are unique among the live codes of a site; only keyed digests are
//     stored, and a plain code not told yet only sealed (see code.go);
//   - edge events apply strictly in sequence per site, exactly once.
//
// # Where things are
//
// Each behaviour is found by its noun:
//
//	lifecycle.go    the order lifecycle: the transition table (happening × state → next
//	                state and effects), Service.apply, the guards and effects, deadlines
//	orders.go       the REST operations on orders and their validation; order records
//	redeliver.go    the platform's redelivery of an order (and the refund it records)
//	edge.go         facts from edges: birth, presence, telemetry, and ApplyEdgeEvents (a
//	                batch in one transaction) / ApplyEdgeEvent with the dispatch table
//	                (event kind → happening, alarm or audit entry)
//	alarms.go       alarms: raise, close, ResolveAlarm, their keys
//	sweep.go        what time decides: lapses, expiry, reminders, command time-outs,
//	                credential revocation, forgotten idempotency keys, ended failure
//	                windows (on the work lease's holder)
//	limits.go       rate limits: failure counters in fixed windows, in the store (the
//	                resident page's wrong codes)
//	fence.go        fences (the leases a transaction depends on) and the Watcher of shared stores
//	invariants.go   CheckInvariants: what every committed state must satisfy, over any Store
//	command.go      commands to edges (jobs) and their acknowledgements
//	driver.go       drivers: loading credentials, the manifest, OpenForLoading
//	desired.go      the desired state of a site: deltas and snapshots
//	notice.go       notifications to residents and platforms
//	code.go         pickup codes, the live-code index, and the sealed codes held until
//	                the resident may be told them
//	compartment.go  compartments, the free index, binding and releasing
//	site.go         sites, provisioning, site summaries and detail, the nearest-site search
//	fleet.go        the fleet console's query: states, problems, severity, filters, and the
//	                in-memory fleet index kept fresh on commit
//	auth.go         API keys and roles
//	audit.go        the audit log, indexed by site; its filters
//	report.go       the reports (orders, utilisation, pickup time, expiry, cold chain,
//	                remote opens): a scan of the period's orders per request
//	platform.go     platforms' webhooks
//	store.go        the Store, its transactions and buckets
//	service.go      the Service, its policy, its outbound queue and Run
//	model.go        the domain's types; errors.go its error codes; live.go the view of
//	                each edge from its recent messages, shared between replicas through
//	                the store
//
// # Order lifecycle
//
// An order is assigned when admitted, loaded when the edge reports its last compartment
// loaded, and ends picked up, returned (taken back by a driver, normally once expired) or
// cancelled (by its platform or ops, for want of loading in time, or displaced with no
// compartment free); the edge can also declare it compromised (out of temperature). The
// diagram and the full statement, ignored facts and refusals included, are the
// transition table in lifecycle.go. A picked-up or returned order keeps the edge's
// cold-chain record ([ColdChain]; unknown from edges of protocol 1.0). The platform may
// redeliver an order that was compromised, expired or returned: the replacement is a new
// order, linked both ways (Replaces, ReplacedBy), and the original records the refund the
// platform says it made.
//
// Live states (assigned, loaded, expired, compromised) hold compartments and a code; a
// live order that is picked up or returned ends there, whatever its state. Expiry:
// chilled and frozen orders wait 24 h after loading, cool and ambient 12 h (the holds of
// docs/food-safety.md; [DefaultPolicy]). Extensions never take chilled or frozen food
// beyond 24 h after loading (the food-safety cap, EFoodSafety); after an outage of more
// than a minute (the edge's, the broker's, or the cloud's own downtime, measured from its
// last heartbeat: Resume), a site's orders' deadlines are extended by the outage's
// length, within the same cap. The cloud's evidence and the edge's own report (its
// outage event) are merged in Site.Outages, so an outage both saw extends once
// (settleOutage); each reservation tells the edge its cap (max_expires_at), by which the
// edge extends on its own while it cannot reach the cloud.
//
// # Capacity and assignment
//
// An order is admitted when the free compartments of its site can hold its parcels
// (cloud/assign: best fit by zone and size, several parcels of a zone per compartment,
// accessible orders below 120 cm). A compartment is bound to one order from admission
// until the order ends; an order never loaded lapses at the end of its window plus
// LoadGrace, so a driver's no-show does not hold a compartment for the whole hold time.
// v1 binds at admission: a compartment holding tomorrow's order is not lent to today's
// (a calendar of future bookings is future work). A refusal (ENoCapacity) names the
// nearest sites, by great-circle distance from the ops coordinates, that can hold it.
//
// # Outbound messages
//
// Notifications are part of the transaction of the change they report. The production
// Notifier is a [TxNotifier] (cloud/notify over its sealed outbox in the same bbolt
// file): each notice is written into the durable outbox by the domain's own
// transaction, so that a process killed at any moment has a defined outcome — the
// change and its notices committed together, or neither — and loses nothing it
// acknowledged, the resident's code in the arrival notice included. cloud/notify's
// worker then delivers each notice at least once under a stable id (the notice's id
// plus its channel, also the CloudEvent id), so receivers deduplicate; an id is
// enqueued at most once, and a store that runs a function again (group commit after a
// failure, bbolt's Batch) rolls back the first run's writes. Notice ids sort by time,
// so the outbox grows at its end and a group commit dirties few of its pages.
//
// Desired-state deltas and commands are queued by OnCommit hooks in commit order and
// delivered by [Service.Run] through [DesiredPublisher] and [CommandPublisher]. That
// queue is in memory, and the protocol repairs what a crash loses: the edge sees a
// version gap and asks for a snapshot, a lost command times out. A Notifier that is not
// a TxNotifier (tests, tools) gets its notices from the same in-memory queue, in a
// lane of their own so that a slow notifier never delays an edge, and loses them in a
// crash.
//
// # Secrets
//
// The site key (32 random bytes per site) rests in the store in clear: encryption at rest
// is out of scope for v1; protect the data directory. It leaves the cloud once, through
// [Service.Provision], with the edge's MQTT password (stored as a SHA-256 digest). API
// keys and MQTT passwords are high-entropy and stored as SHA-256; pickup codes and
// driver credentials are low-entropy and stored only as keyed digests (HMAC with the site
// key). The resident's code is drawn at admission, and until the resident may be told it
// (loading; for a reissued code, the edge's report that it applied the code's delta) it
// waits on the order sealed with AES-256-GCM under the notify key (Options.CodeKey),
// which the store does not hold; code.go says how long it may wait. Phone numbers are
// kept for notifications and never logged ([Recipient.LogValue]).
package cloud
