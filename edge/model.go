package edge

import (
	"time"

	"github.com/larder-lockers/larder/protocol"
)

// CompartmentSpec is one door of the bank as configured at installation. Row 1 is the
// bottom row and column 1 the leftmost; they only serve to tell a person where the door
// is ("door 12, bottom row, left").
type CompartmentSpec struct {
	Number   int           `json:"number"`
	Size     protocol.Size `json:"size"`
	Zone     protocol.Zone `json:"zone"`
	HeightCM int           `json:"height_cm"`
	Board    int           `json:"board"`
	Lock     int           `json:"lock"`
	Row      int           `json:"row"`
	Column   int           `json:"column"`
}

// AccessibleMaxHeightCM: an order flagged accessible only goes into compartments whose
// floor is below this height, about the 48 in (122 cm) that commercial lockers use for
// their accessible doors (Amazon offers 15–48 in from the ground, Luxer One below 48 in).
const AccessibleMaxHeightCM = 120

// State is where a compartment is in its life.
//
//	free ──reserve──▶ reserved ──driver open──▶ loading ──closed, IR occupied──▶ loaded
//	loaded ──pickup/return──▶ opening ──closed, IR empty──▶ free
//	loading ──closed, IR empty──▶ reserved
//	any unheld ──ops──▶ out_of_service ──ops──▶ free;  a jam at loading ──▶ jammed ──ops in service──▶ free
type State string

// Compartment states.
const (
	StateFree         State = "free"
	StateReserved     State = "reserved"
	StateLoading      State = "loading"
	StateLoaded       State = "loaded"
	StateOpening      State = "opening"
	StateOutOfService State = "out_of_service"
	StateJammed       State = "jammed"
)

// States lists every compartment state (for metrics).
func States() []State {
	return []State{StateFree, StateReserved, StateLoading, StateLoaded, StateOpening, StateOutOfService, StateJammed}
}

// Held reports whether a compartment in state s belongs to an order.
func (s State) Held() bool {
	return s == StateReserved || s == StateLoading || s == StateLoaded || s == StateOpening
}

// Compartment is the durable state of one door.
type Compartment struct {
	Number int   `json:"number"`
	State  State `json:"state"`
	// Order holds the compartment when State.Held().
	Order string `json:"order,omitempty"`
	// Generation is the fencing token of the current (or last) reservation.
	Generation uint64 `json:"generation,omitempty"`
	// Reason explains out_of_service or jammed.
	Reason string    `json:"reason,omitempty"`
	Since  time.Time `json:"since"`
}

// OrderState is where a reservation is in its life.
type OrderState string

// Reservation states. Reserved, loaded, picking, returning, invalidated and cancelled hold
// their compartments; picked_up and removed are tombstones kept so that a late desired
// state cannot bring a finished order back (a code is single use forever).
const (
	OrderReserved    OrderState = "reserved"    // waiting for the driver (some slots may be loaded)
	OrderLoaded      OrderState = "loaded"      // every slot loaded; the code works
	OrderPicking     OrderState = "picking"     // a pickup session is in progress
	OrderReturning   OrderState = "returning"   // a driver is removing the expired order
	OrderInvalidated OrderState = "invalidated" // 10 wrong factors: the code is dead until reissued
	OrderCancelled   OrderState = "cancelled"   // the cloud cancelled a loaded order: awaiting return
	OrderPickedUp    OrderState = "picked_up"
	OrderRemoved     OrderState = "removed"
)

// Holds reports whether an order in state s holds its compartments.
func (s OrderState) Holds() bool { return s != OrderPickedUp && s != OrderRemoved && s != "" }

// CodeLive reports whether the order's pickup code is in the digest index in state s.
func (s OrderState) CodeLive() bool {
	return s == OrderReserved || s == OrderLoaded || s == OrderPicking
}

// Slot is one compartment of an order.
type Slot struct {
	Compartment int           `json:"compartment"`
	Generation  uint64        `json:"generation"`
	Size        protocol.Size `json:"size"`
	Loaded      bool          `json:"loaded,omitempty"`
}

// Reservation is an order at this bank: the cloud's reservation plus what the edge learnt
// (loading, wrong attempts, the cold-chain record). Secrets are digests only.
type Reservation struct {
	Order         string        `json:"order"`
	State         OrderState    `json:"state"`
	Slots         []Slot        `json:"slots"`
	CodeDigest    string        `json:"code_digest"`
	FactorDigest  string        `json:"factor_digest"`
	ExpiresAt     time.Time     `json:"expires_at"`
	Zone          protocol.Zone `json:"zone"`
	BudgetSeconds int           `json:"budget_seconds"`
	Accessible    bool          `json:"accessible,omitempty"`
	// MaxExpiresAt is the latest the edge may honour the order while it cannot reach
	// the cloud (Deadline); zero from a cloud that does not send it.
	MaxExpiresAt time.Time `json:"max_expires_at,omitzero"`
	// WrongAttempts counts right codes entered with a wrong second factor.
	WrongAttempts int `json:"wrong_attempts,omitempty"`
	// Moved maps a compartment the cloud assigned to the one the edge reassigned the order
	// to, so that a desired state sent before the cloud learnt of the move maps onto it.
	Moved map[int]int `json:"moved,omitempty"`
	// Session is the pickup or return session in progress.
	Session string `json:"session,omitempty"`
	// Cold chain: LoadedAt starts the record; OutSeconds integrates the time the zone's air
	// was above the order's limit; Compromised is set (and reported once) past the budget.
	// PeakC is the warmest valid reading since loading (nil: none yet); MissingSeconds
	// the time without a valid reading (see Temperatures). The record is reported with
	// picked_up or expired_removed (protocol.ColdChain).
	LoadedAt       time.Time `json:"loaded_at,omitempty"`
	OutSeconds     float64   `json:"out_seconds,omitempty"`
	Compromised    bool      `json:"compromised,omitempty"`
	PeakC          *float64  `json:"peak_c,omitempty"`
	MissingSeconds float64   `json:"missing_seconds,omitempty"`
	Finished       time.Time `json:"finished,omitempty"`
}

// Slot returns the slot of compartment c.
func (r *Reservation) Slot(c int) (*Slot, bool) {
	for i := range r.Slots {
		if r.Slots[i].Compartment == c {
			return &r.Slots[i], true
		}
	}
	return nil, false
}

// AllLoaded reports whether every slot is loaded.
func (r *Reservation) AllLoaded() bool {
	for _, s := range r.Slots {
		if !s.Loaded {
			return false
		}
	}
	return len(r.Slots) > 0
}

// Deadline is when the order's pickup time ends while the edge has been unable to reach
// the cloud for outage (Link.Outage): ExpiresAt, moved by an outage longer than
// protocol.MinOutage by its length, never past MaxExpiresAt, the food-safety cap. A
// reservation without MaxExpiresAt (from a cloud of protocol 1.0) is not moved, nor is a
// compromised order (the cloud does not extend one either). The cloud moves ExpiresAt by
// the same rule when the link returns, and its next desired state makes ExpiresAt the
// deadline again.
func (r *Reservation) Deadline(outage time.Duration) time.Time {
	if outage <= protocol.MinOutage || !r.MaxExpiresAt.After(r.ExpiresAt) || r.Compromised {
		return r.ExpiresAt
	}
	if next := r.ExpiresAt.Add(outage); next.Before(r.MaxExpiresAt) {
		return next
	}
	return r.MaxExpiresAt
}

// Expired reports whether the order's pickup time has ended at now, the edge having
// been unable to reach the cloud for outage (Deadline). The flows ask Locker.expired,
// which knows the outage, so that the kiosk, the manifest and returns agree.
func (r *Reservation) Expired(now time.Time, outage time.Duration) bool {
	return !now.Before(r.Deadline(outage))
}

// Link is the edge's durable record of its link to the cloud (Locker.LinkUp,
// LinkDown): how long the cloud has been out of reach, across restarts.
type Link struct {
	// Down is since when the edge has been unable to reach the cloud (lost the broker,
	// never connected since it started, or was not running); zero while linked.
	Down time.Time `json:"down,omitzero"`
	// Alive is the last moment the edge was known running and linked: written at
	// LinkUp and every AliveEvery after. A restart after a crash counts the outage from
	// it, since the edge down is the cloud out of reach too.
	Alive time.Time `json:"alive,omitzero"`
}

// Outage is how long the edge has been unable to reach the cloud at now (0 while
// linked).
func (k Link) Outage(now time.Time) time.Duration {
	if k.Down.IsZero() || now.Before(k.Down) {
		return 0
	}
	return now.Sub(k.Down)
}

// SessionKind says why doors are open.
type SessionKind string

// Session kinds.
const (
	SessionPickup  SessionKind = "pickup"
	SessionReturn  SessionKind = "return"
	SessionLoading SessionKind = "loading"
)

// Session is a durable record of doors opened for a person, kept until the doors close and
// the infrared agrees (or the session times out). It is written before any relay is pulsed
// so that a restart resumes it instead of counting a pickup twice.
type Session struct {
	ID           string                  `json:"id"`
	Kind         SessionKind             `json:"kind"`
	Order        string                  `json:"order"`
	Compartments []int                   `json:"compartments"`
	Credential   protocol.CredentialKind `json:"credential"`
	Actor        string                  `json:"actor,omitempty"`
	Started      time.Time               `json:"started"`
	// Jammed lists doors that did not open.
	Jammed []int `json:"jammed,omitempty"`
	// QR marks a pickup opened by a device-bound QR code (Locker.PickupQR): its audit
	// entries say pickup_qr and its door_opened and picked_up events carry reason "qr".
	QR bool `json:"qr,omitempty"`
}

// AuditEntry is one door opening in the append-only audit log.
type AuditEntry struct {
	Seq         uint64                  `json:"seq"`
	At          time.Time               `json:"at"`
	Compartment int                     `json:"compartment"`
	Reason      string                  `json:"reason"`
	Credential  protocol.CredentialKind `json:"credential"`
	Order       string                  `json:"order,omitempty"`
	Actor       string                  `json:"actor,omitempty"`
}

// Throttle is the keypad's persisted brake on guessing (Locker.Pickup, docs/codes.md).
// It is stored so that a reboot resets neither the wait nor the count; it is one per
// kiosk because the kiosk cannot tell people apart.
type Throttle struct {
	// Failures counts wrong codes since the keypad was last quiet for DelayQuiet; it sets
	// the next wait (Config.FreeFailures, DelayBase, DelayMax).
	Failures    int       `json:"failures"`
	LastFailure time.Time `json:"last_failure,omitempty"`
	// WaitUntil is when the keypad checks a code again; attempts before it are refused
	// unchecked and change nothing.
	WaitUntil time.Time `json:"wait_until,omitempty"`
	// BudgetFrom starts the current window of wrong codes (Config.BudgetWindow) and
	// BudgetUsed counts them; the one that spends the budget alerts ops.
	BudgetFrom time.Time `json:"budget_from,omitempty"`
	BudgetUsed int       `json:"budget_used"`
}

// Credential is a driver's loading credential synced from the cloud (digest only).
type Credential struct {
	ID        string    `json:"id"`
	Digest    string    `json:"digest"`
	Driver    string    `json:"driver"`
	ExpiresAt time.Time `json:"expires_at"`
}

// CommandRecord is a cloud command as the edge remembers it: enough to answer a
// redelivery with the same final ack and never carry it out twice.
type CommandRecord struct {
	ID       string                `json:"id"`
	Kind     protocol.CommandKind  `json:"kind"`
	State    protocol.CommandState `json:"state"`
	Error    protocol.ErrorCode    `json:"error,omitempty"`
	Message  string                `json:"message,omitempty"`
	Received time.Time             `json:"received"`
}

// Ack is the acknowledgement a record stands for.
func (c CommandRecord) Ack() protocol.CommandAck {
	return protocol.CommandAck{CommandID: c.ID, State: c.State, Error: c.Error, Message: c.Message}
}

// ZoneReading is a zone's last reading as the cold chain remembers it across restarts.
type ZoneReading struct {
	Zone    protocol.Zone `json:"zone"`
	At      time.Time     `json:"at"`
	Celsius float64       `json:"celsius"`
}
