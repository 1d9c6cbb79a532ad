// Package edge is the domain of one locker bank (a "site"): its compartments and their
// state machine, the reservations the cloud sends (orders with slots, code digests and
// expiries), and the flows people and the cloud drive through a Locker:
//
//   - Pickup: a resident's code and second factor (last 4 digits of the phone number),
//     looked up by keyed digest and compared in constant time, single use. Every
//     compartment of the order opens, staggered; picked_up is recorded when the doors
//     close and the infrared sees them empty. PickupQR takes instead the device-bound QR
//     payload of the resident page, whose tag (protocol.QRTag) it verifies offline with the
//     site key: it opens without the second factor and is honoured while the keypad
//     waits; a payload that does not verify is refused unlooked-at and counts nothing.
//   - Keypad throttle: after FreeFailures wrong codes in a row the keypad waits DelayBase
//     before checking another, doubling to DelayMax (60 s), starting over after a quiet
//     period; FailureBudget wrong codes per BudgetWindow send code_lockout (reason
//     wrong_code_budget) for ops, locking no one out. MaxOrderFailures wrong second
//     factors for one order's right code invalidate that code (code_lockout, reason
//     order_invalidated); the cloud drops it and tells the resident, and a new one is
//     drawn by reissue. Both are persisted: a reboot resets neither. docs/codes.md has
//     the arithmetic.
//   - Driver mode: a loading credential synced from the cloud opens a 15-minute kiosk
//     session; the driver opens each assigned compartment, loads and closes; loaded is
//     recorded when the infrared sees the item. A jammed, faulty or full compartment is
//     replaced by a free one of the same zone and the same or a larger size (smallest
//     first; below 120 cm for accessible orders) and reported as reassigned; the code
//     follows the order. Expired or cancelled orders are returned (expired_removed).
//   - Alarms: door left open, uncommanded open, jammed lock, board offline/online, zone
//     temperature excursions (DefaultZoneLimits), and the cold chain: each loaded order
//     integrates the time its zone's air spent above the zone's limit and is flagged
//     compromised once past its budget; its record (time above, peak, time without a
//     reading) rides on picked_up and expired_removed (protocol.ColdChain).
//   - Desired state by version (snapshot, delta, gap) and commands as jobs, deduplicated
//     durably.
//   - Outages (link.go): the edge records durably since when it cannot reach the cloud
//     (Link: the sync's LinkDown, its own downtime, a first start). While that is longer
//     than a minute, every flow honours an order past its ExpiresAt by the outage's
//     length, never past the cap the cloud sent (MaxExpiresAt; none from a 1.0 cloud):
//     Locker.expired is the one answer for the kiosk, the manifest and returns. LinkUp
//     reports the outage to the cloud (an outage event); the cloud's next deadlines are
//     then the edge's.
//
// # Durability
//
// Every change is made in one Store transaction together with the outbox event that
// reports it, so a crash keeps both or neither. Doors are recorded as opening (a Session
// and audit entries) before any relay is pulsed; a restart resumes the sessions in
// progress from the store and completes them when the sensors agree, so a kill -9 in
// the middle of a pickup yields exactly one picked_up. A command's state and the ack that
// reports it are written together too; acks wait in the store until the broker has
// taken them, so one made offline survives a restart. Drivers' kiosk sessions are
// stored (as the keyed digest of their token, with their end), so a restart does not
// sign a driver out in the middle of a stop. edge/bolt implements Store.
//
// # Time and hardware
//
// Time comes from an injected Clock; timers run in Tick (about once a second) and the
// cold chain in Temperatures, so tests drive them with a FakeClock. Hardware comes in
// through the narrow Latch interface (edge/hw documents its contract) and hw.Events from
// the poller (HandleHW). Secrets never appear in logs, events or errors.
//
// # Caveats
//
// A gap between two zone
// readings longer than two minutes (a failed probe, the edge down) counts against the
// cold chain only when the readings on both sides are warm, and always as time without
// a reading; warm readings are stored, and a cold one once a minute, so this holds
// across restarts (a crash adds at most a minute to the time without a reading). A code is
// looked up by its keyed digest in an index (codes are unique per site); the second
// factor is compared in constant time. A reassigned slot gets the compartment's last
// generation plus one, as the cloud computes it when it applies the reassigned event;
// the cloud's value wins at the next desired state.
package edge
