package edge

import (
	"time"

	"github.com/larder-lockers/larder/protocol"
)

// Store is the durable state of the edge. Every change a person or the cloud may have
// been told about happens inside one Update, together with the outbox event describing
// it, so that a crash either keeps both or neither. edge/bolt implements it.
type Store interface {
	// View runs fn in a read-only transaction.
	View(fn func(Tx) error) error
	// Update runs fn in a read-write transaction, committed (fsynced) when fn returns nil.
	Update(fn func(Tx) error) error
}

// Tx is one store transaction. Values are copies: changing one changes nothing until it
// is put back. A Tx must not be used after its function returns.
type Tx interface {
	Compartment(n int) (Compartment, bool, error)
	Compartments() ([]Compartment, error)
	PutCompartment(Compartment) error

	Reservation(order string) (Reservation, bool, error)
	// Reservations calls fn for each reservation in order id order until fn returns false.
	Reservations(fn func(Reservation) bool) error
	// PutReservation stores r and keeps the code-digest index in step: the digest points
	// at r exactly while r.State.CodeLive().
	PutReservation(r Reservation) error
	DeleteReservation(order string) error
	// OrderByCode looks a code digest up in the index of live codes.
	OrderByCode(digest string) (string, bool, error)
	// UsedCode looks a code digest up among finished orders (picked up, removed), to tell
	// a person "already picked up" rather than "wrong code".
	UsedCode(digest string) (string, bool, error)

	Session(id string) (Session, bool, error)
	Sessions() ([]Session, error)
	PutSession(Session) error
	DeleteSession(id string) error

	CredentialByDigest(digest string) (Credential, bool, error)
	Credentials() ([]Credential, error)
	PutCredential(Credential) error
	DeleteCredential(id string) error

	// DriverToken looks a signed-in driver's kiosk session up by its token's keyed
	// digest; DriverTokens lists them all; PutDriverToken stores one under its Digest.
	DriverToken(digest string) (DriverToken, bool, error)
	DriverTokens() ([]DriverToken, error)
	PutDriverToken(DriverToken) error
	DeleteDriverToken(digest string) error

	// Enqueue appends e to the outbox as an encoded envelope whose Seq is the outbox
	// sequence and whose time is at; it returns the sequence.
	Enqueue(at time.Time, e protocol.Event) (uint64, error)
	// Audit appends one door opening to the audit log (Seq is assigned).
	Audit(AuditEntry) error

	// Throttle is the keypad's guessing brake (zero when none was stored); PutThrottle
	// stores it.
	Throttle() (Throttle, error)
	PutThrottle(Throttle) error

	// ZoneReadings returns the last warm-or-transition reading of each zone (see
	// Temperatures); PutZoneReading stores one.
	ZoneReadings() ([]ZoneReading, error)
	PutZoneReading(ZoneReading) error

	// Link is the record of the link to the cloud (zero when none was stored); PutLink
	// stores it.
	Link() (Link, error)
	PutLink(Link) error

	DesiredVersion() (uint64, error)
	SetDesiredVersion(uint64) error
	// Seen reports whether a message id was applied (and has not expired).
	Seen(id string) (bool, error)
	// MarkSeen records a message id as applied until the given time.
	MarkSeen(id string, until time.Time) error

	Command(id string) (CommandRecord, bool, error)
	PutCommand(CommandRecord) error
	// QueueCommandAck appends a, encoded as an envelope with time at, to the queue of
	// command acks the sync publishes; each waits there until the broker has taken it.
	QueueCommandAck(at time.Time, a protocol.CommandAck) error
	// UnfinishedCommands lists the ids of commands not in a final state.
	UnfinishedCommands() ([]string, error)
}
