package mqtt

import (
	"context"
	"time"

	"github.com/larder-lockers/larder/protocol"
)

// The interfaces below are what the adapter needs from the cloud's domain. The domain
// (package cloud, over its store) implements them; cloud/cloudd wires an implementation
// into [Config]. Every method is called from the adapter's per-site workers: calls for
// one site are serialised (never concurrent, in arrival order; CommandProgress excepted), calls for different sites
// run in parallel. The adapter assumes it is the only consumer of its sites' events: the
// one cloud process, or, with several replicas, the replica that owns the site
// ([Config.Owner]), applies a site's events, never several splitting them.
//
// With an owner, every call made for a site carries the fence of the site's lease in
// its context ([cloud.FencesOf]; SiteEvents carries the fences of all its runs' sites):
// a shared store must refuse the call's writes when a fence no longer holds, with an
// error wrapping [cloud.ErrFenced], which the adapter takes as the loss of the site.
//
// A returned error means "not done": the adapter logs it, does not acknowledge the
// message and relies on the edge's redelivery (events) or on the next message (status,
// telemetry). Methods must honour ctx; the adapter bounds each call with
// [Config.CallTimeout].

// Presence records edges going online and offline.
type Presence interface {
	// SiteStatus records that site went online or offline (the retained status message,
	// or the broker's Last Will for the edge). Called on every change the adapter sees
	// and also for repeats (e.g. the retained message replayed when the cloud
	// (re)subscribes): the domain must treat a repeated state as a no-op apart from
	// updating the last-seen time.
	SiteStatus(ctx context.Context, site string, s StatusChange) error
}

// StatusChange is an edge going online or offline as the adapter observed it.
type StatusChange struct {
	// Online is the new state.
	Online bool
	// At is when the cloud received the status message.
	At time.Time
	// LastSeen is when the adapter last received anything from the site before this
	// message; zero when this process has not heard from the site since it started.
	LastSeen time.Time
	// Outage is set on an offline→online change this process witnessed: how long the
	// edge could not reach the cloud, measured from the last message before it went
	// offline (not from the Last Will, which the broker sends only after 1.5 keep-alive
	// periods) to At. It is also set when the cloud itself lost the broker (a central
	// outage): on reconnecting it hears each online site's retained status again, with
	// Outage measured from the moment the cloud lost the broker. The domain extends the pickup deadlines of the site's loaded
	// orders by it (the edge itself kept serving pickups by code meanwhile). Zero when
	// unknown, e.g. the outage began before this process started: the domain then uses
	// its own durable offline-since record if it has one.
	Outage time.Duration
	// Software is the edge's software version from the status message (may be empty).
	Software string
}

// Births records what an edge says about itself on every connect.
type Births interface {
	// SiteBirth reconciles the site with the edge's birth: software, boards and
	// compartments (the edge is the authority for the physical inventory).
	//
	// If b.OutboxHighWater is below the site's event high water (see [Events]), the
	// edge's outbox started over (reinstall, wiped store): SiteBirth must then reset the
	// high water to 0 in the same transaction, so that the new outbox's events (which
	// reuse low sequence numbers) are not mistaken for duplicates. Events are still
	// deduplicated by message id.
	//
	// After SiteBirth returns nil the adapter publishes a full desired snapshot (from
	// [Desireds]) to the site and republishes the site's unexpired pending commands.
	SiteBirth(ctx context.Context, site string, b protocol.Birth) error
}

// Events makes edge events durable. The adapter acknowledges an event to the edge (a
// cumulative [protocol.EventAck]) only after SiteEvents has committed it and every event
// before it.
type Events interface {
	// SiteEvents stores the events of runs (their Bodies are [protocol.Event]s, or
	// [protocol.RejectedEvent]s standing for events that did not decode: the domain
	// records the rejection and counts the sequence as processed) and applies their effects (order loaded, picked up, compromised, ...) in one durable
	// transaction, or as few as it can, and returns only after they committed. Each run
	// is one site's (a site appears once) and holds consecutive sequences following the
	// site's high water, as far as the adapter knows. In the same transaction it sets
	// each site's event high water to its last applied event. It must be idempotent: an
	// event at or below the high water is a no-op.
	//
	// It returns one result per run, in order: the site's high water afterwards, and
	// the first error of the run. Events after a failed one must not be applied (they
	// would leave a gap).
	SiteEvents(ctx context.Context, runs []EventRun) []EventResult
	// EventHighWater is the site's event high water: every event of the site with a
	// sequence up to it has been stored. 0 for a site never heard of. The adapter reads
	// it once per site, and again after each birth (which may reset it) or a failed
	// run, and caches it.
	EventHighWater(ctx context.Context, site string) (uint64, error)
}

// EventRun is one site's events for [Events.SiteEvents], in sequence order.
type EventRun struct {
	Site   string
	Events []protocol.Message
}

// EventResult is what [Events.SiteEvents] did with one run.
type EventResult struct {
	// Ack is the site's event high water after the call: what the adapter acknowledges.
	Ack uint64
	// Err, when set, is why the run's events after Ack were not applied.
	Err error
}

// Telemetry records an edge's periodic health reports.
type Telemetry interface {
	// SiteTelemetry records t, received at the given time. Telemetry is QoS 0 and
	// best effort: an error is logged and the report dropped.
	SiteTelemetry(ctx context.Context, site string, t protocol.Telemetry, at time.Time) error
}

// Desireds gives the desired state to publish to an edge.
type Desireds interface {
	// DesiredSnapshot is the site's complete desired state at its current version
	// (Full true, Version ≥ 1). The adapter publishes it after a birth and on a
	// [protocol.DesiredGet]. A site with nothing desired yet still has a version: the
	// domain should start every site at version 1 with an empty snapshot.
	DesiredSnapshot(ctx context.Context, site string) (protocol.Desired, error)
}

// Commands keeps the state of command jobs durably.
type Commands interface {
	// CommandProgress records a state of command ack.CommandID at site: the edge's acks
	// (QUEUED, IN_PROGRESS, SUCCEEDED, FAILED, REJECTED, TIMED_OUT) and the cloud's own
	// TIMED_OUT when no final ack arrived before the command's expiry (plus
	// [Config.CommandGrace]). A transition out of a final state must be ignored
	// (return nil): a late SUCCEEDED after the cloud's TIMED_OUT is recorded by the
	// domain only if it chooses to (e.g. as a note), never by reopening the job. Acks
	// for unknown command ids return nil (logged by the domain if it likes).
	//
	// Unlike the other methods, CommandProgress may run concurrently with the other
	// calls for the same site (SiteEvents); its own calls for a site stay in arrival
	// order.
	CommandProgress(ctx context.Context, site string, ack protocol.CommandAck, at time.Time) error
	// PendingCommands lists the commands of site (all sites when site is "") that have
	// no final state yet. The adapter calls it at start (to arm expiry timers after a
	// restart; with an owner, every CommandGrace/2 instead, arming those of the sites it
	// owns), and after a site's birth or gain (to republish the unexpired ones: the edge
	// carries a command out at most once per id, so republishing is safe).
	PendingCommands(ctx context.Context, site string) ([]PendingCommand, error)
}

// PendingCommand is a command without a final state.
type PendingCommand struct {
	Site    string
	Command protocol.Command
}

// Fleet is everything the adapter consumes, for wiring convenience.
type Fleet interface {
	Presence
	Births
	Events
	Telemetry
	Desireds
	Commands
}

// Publisher is what the adapter offers the domain: publishing cloud→edge messages. The
// domain declares its own interface with the methods it uses; *[Adapter] satisfies it.
//
//	PublishDesired(ctx context.Context, site string, d protocol.Desired) error
//	PublishCommand(ctx context.Context, site string, c protocol.Command) error
//
// PublishDesired sends a full snapshot or a delta (see [protocol.Desired]); the envelope
// sequence is d.Version. PublishCommand sends c and arms its expiry timer; the domain
// must have recorded the command as pending (so [Commands.PendingCommands] lists it)
// before calling it; with an owner, only the site's owner arms the timer (see the
// package doc). Both return once the broker acknowledged the publish (QoS 1) or
// ctx / the adapter's publish timeout expired; a nil error is not proof that the edge
// got it: desired state converges by version and DesiredGet, commands by their acks
// and timeouts.
type Publisher interface {
	PublishDesired(ctx context.Context, site string, d protocol.Desired) error
	PublishCommand(ctx context.Context, site string, c protocol.Command) error
}
