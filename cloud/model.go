package cloud

import (
	"log/slog"
	"time"

	"github.com/larder-lockers/larder/protocol"
)

// Role is what an API key may do.
type Role string

// Roles. A platform is a grocery integrator and owns the orders it creates; a driver
// loads; ops run the fleet; admin provisions sites and keys.
const (
	RolePlatform Role = "platform"
	RoleDriver   Role = "driver"
	RoleOps      Role = "ops"
	RoleAdmin    Role = "admin"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	switch r {
	case RolePlatform, RoleDriver, RoleOps, RoleAdmin:
		return true
	}
	return false
}

// Principal is an authenticated caller.
type Principal struct {
	KeyID string `json:"key_id"`
	Role  Role   `json:"role"`
	// Subject names the caller within its role: the platform id that owns orders, the
	// driver id or the operator's name (for the audit log).
	Subject string `json:"subject"`
}

// System is the principal of the cloud itself (edge events, sweeps).
var System = Principal{Role: RoleAdmin, Subject: "system"}

// Location is a site's position, for the nearest-site search.
type Location struct {
	Lat float64 `json:"lat"`
	Lon float64 `json:"lon"`
}

// Site is one locker bank. Key is the site key shared with the edge (HMAC key of every
// digest); it rests in the store in clear (encryption at rest is out of scope for v1:
// protect the data directory) and leaves the cloud once, by provisioning.
type Site struct {
	ID       string    `json:"id"`
	Name     string    `json:"name,omitempty"`
	Address  string    `json:"address,omitempty"`
	Location *Location `json:"location,omitempty"`
	// TimeZone is the IANA name of the site's zone (e.g. Asia/Shanghai), in which
	// residents and drivers are told times; empty: the cloud's default
	// (Options.TimeZone).
	TimeZone string `json:"time_zone,omitempty"`
	// District and Tags group sites for the fleet console's filters (a city district,
	// "pilot", "elderly-home"); both optional.
	District string    `json:"district,omitempty"`
	Tags     []string  `json:"tags,omitempty"`
	Created  time.Time `json:"created"`

	Key         []byte `json:"key"`
	Provisioned bool   `json:"provisioned"`
	// MQTTDigest is the SHA-256 (hex) of the edge's MQTT password; the username is the
	// site id.
	MQTTDigest string `json:"mqtt_digest,omitempty"`

	Software     string    `json:"software,omitempty"`
	Online       bool      `json:"online"`
	LastSeen     time.Time `json:"last_seen,omitzero"`
	OfflineSince time.Time `json:"offline_since,omitzero"`
	// Outages are the latest outages that moved the site's deadlines (at most
	// keepOutages, oldest first), from the cloud's own evidence or the edge's
	// (settleOutage): an outage both sides saw moves them once.
	Outages []Span `json:"outages,omitempty"`

	// DesiredVersion is the version of the site's desired state; every reservation or
	// credential change bumps it by one. EdgeDesiredVersion is what the edge last
	// reported applying (birth).
	DesiredVersion     uint64 `json:"desired_version"`
	EdgeDesiredVersion uint64 `json:"edge_desired_version"`
	// EventSeq is the sequence of the last edge event applied: events apply strictly in
	// sequence, so the cumulative acknowledgement is exactly this.
	EventSeq uint64 `json:"event_seq"`
}

// LogValue keeps the key out of logs.
func (s Site) LogValue() slog.Value { return slog.StringValue(s.ID) }

// Compartment is one door of a site as the cloud knows it: the edge's inventory plus
// the business state. Invariant: Order is the only live reservation of the compartment.
type Compartment struct {
	Site string `json:"site"`
	protocol.Compartment
	// Present is false for a compartment missing from the edge's last birth.
	Present   bool   `json:"present"`
	InService bool   `json:"in_service"`
	OOSReason string `json:"oos_reason,omitempty"`
	// Generation is the fencing token, bumped on every assignment (every reuse).
	Generation uint64 `json:"generation"`
	// Order is the live reservation, "" when free.
	Order    string `json:"order,omitempty"`
	Occupied bool   `json:"occupied,omitempty"` // the edge reported it loaded
}

// CompState is a compartment's state for ops and metrics.
type CompState string

// Compartment states.
const (
	CompFree         CompState = "free"
	CompReserved     CompState = "reserved"
	CompOccupied     CompState = "occupied"
	CompOutOfService CompState = "out_of_service"
	CompMissing      CompState = "missing"
)

// CompStates lists every compartment state.
func CompStates() []CompState {
	return []CompState{CompFree, CompReserved, CompOccupied, CompOutOfService, CompMissing}
}

// State summarises c.
func (c Compartment) State() CompState {
	switch {
	case !c.Present:
		return CompMissing
	case c.Order != "" && c.Occupied:
		return CompOccupied
	case c.Order != "":
		return CompReserved
	case !c.InService:
		return CompOutOfService
	}
	return CompFree
}

func (c Compartment) free() bool { return c.Present && c.InService && c.Order == "" }

// OrderState is where an order is in its life (the transitions are the table in
// lifecycle.go):
//
//	assigned → loaded → picked_up;  loaded | assigned (partly loaded) → expired → returned
//	assigned → cancelled;  assigned | loaded | expired → compromised → picked_up | returned
type OrderState string

// Order states.
const (
	StateAssigned    OrderState = "assigned"
	StateLoaded      OrderState = "loaded"
	StatePickedUp    OrderState = "picked_up"
	StateExpired     OrderState = "expired"
	StateReturned    OrderState = "returned"
	StateCancelled   OrderState = "cancelled"
	StateCompromised OrderState = "compromised"
)

// OrderStates lists every order state.
func OrderStates() []OrderState {
	return []OrderState{StateAssigned, StateLoaded, StatePickedUp, StateExpired, StateReturned, StateCancelled, StateCompromised}
}

// Live reports whether an order in state s holds compartments and a code.
func (s OrderState) Live() bool {
	switch s {
	case StateAssigned, StateLoaded, StateExpired, StateCompromised:
		return true
	}
	return false
}

// Valid reports whether s is a known state.
func (s OrderState) Valid() bool {
	for _, x := range OrderStates() {
		if s == x {
			return true
		}
	}
	return false
}

// Recipient is the resident an order is for. The phone number is kept for notifications
// and for the second factor (its last 4 digits); it never appears in logs.
type Recipient struct {
	Phone string `json:"phone"`
	Name  string `json:"name,omitempty"`
	Flat  string `json:"flat,omitempty"`
}

// LogValue redacts the phone number and name.
func (r Recipient) LogValue() slog.Value {
	return slog.GroupValue(slog.String("phone", "redacted"), slog.String("flat", r.Flat))
}

// Parcel is one item of an order.
type Parcel struct {
	Size protocol.Size `json:"size"`
	Zone protocol.Zone `json:"zone"`
}

// Window is the delivery window.
type Window struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Slot is one compartment of an order.
type Slot struct {
	Compartment int           `json:"compartment"`
	Generation  uint64        `json:"generation"`
	Size        protocol.Size `json:"size"`
	Zone        protocol.Zone `json:"zone"`
	// Parcels are indexes into Order.Parcels.
	Parcels []int `json:"parcels"`
	Loaded  bool  `json:"loaded,omitempty"`
}

// CodeDelivery says who hands the pickup code to the resident.
type CodeDelivery string

// Code deliveries.
const (
	// DeliverByNotifier: the cloud sends the code by SMS (the notifier).
	DeliverByNotifier CodeDelivery = "notifier"
	// DeliverByPlatform: the platform gets the code once in the API response and delivers
	// it itself (in its own app).
	DeliverByPlatform CodeDelivery = "platform"
)

// Order is a platform's order at a site.
type Order struct {
	ID         string       `json:"id"`
	Platform   string       `json:"platform"`
	ExternalID string       `json:"external_id"`
	Site       string       `json:"site"`
	Recipient  Recipient    `json:"recipient"`
	Accessible bool         `json:"accessible,omitempty"`
	Parcels    []Parcel     `json:"parcels"`
	Window     Window       `json:"window"`
	Delivery   CodeDelivery `json:"code_delivery"`

	State OrderState `json:"state"`
	// Zone is the coldest zone among the parcels: it sets the reservation's
	// time-out-of-temperature budget.
	Zone  protocol.Zone `json:"zone"`
	Slots []Slot        `json:"slots"`

	CodeDigest   string `json:"code_digest"`
	FactorDigest string `json:"factor_digest"`
	// CodeInvalid is set when the edge invalidated the code after a lockout; a reissue
	// clears it.
	CodeInvalid bool `json:"code_invalid,omitempty"`
	CodeIssues  int  `json:"code_issues"`
	// HeldCode is the plain code the resident has not been told yet, sealed under the
	// code key and bound to the order and CodeDigest (code.go, holdCode); nil when none
	// waits. HeldVersion is the desired version the edge must apply before it is told (0:
	// it waits only for the loading); HeldAt is when it was sealed.
	HeldCode    []byte    `json:"held_code,omitempty"`
	HeldVersion uint64    `json:"held_version,omitempty"`
	HeldAt      time.Time `json:"held_at,omitzero"`

	// ExpiresAt is when the code stops working: before loading, the window's end plus the
	// hold time; once loaded, the loading time plus the hold time, plus extensions.
	ExpiresAt time.Time `json:"expires_at"`
	// Extended is the total of extensions granted (platform requests and outages).
	Extended   time.Duration `json:"extended"`
	LoadedAt   time.Time     `json:"loaded_at,omitzero"`
	ClosedAt   time.Time     `json:"closed_at,omitzero"`
	Reason     string        `json:"reason,omitempty"`
	OutOfTempS float64       `json:"out_of_temp_seconds,omitempty"`
	// Compromised is set when the edge declared the order out of temperature past its
	// budget; it stays set after the order is picked up or returned.
	Compromised bool `json:"compromised,omitempty"`
	// ColdChain is the edge's record, set when the order is picked up or returned (nil
	// before, and for orders that ended otherwise).
	ColdChain *ColdChain `json:"cold_chain,omitempty"`
	// Replaces and ReplacedBy link a redelivered order and its replacement
	// (RedeliverOrder); Refund is what the platform recorded with the redelivery.
	Replaces    string    `json:"replaces,omitempty"`
	ReplacedBy  string    `json:"replaced_by,omitempty"`
	Refund      *Refund   `json:"refund,omitempty"`
	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`
	Reminders   int       `json:"reminders,omitempty"`
	RequestHash string    `json:"request_hash,omitempty"`
}

// ColdChain is an order's cold-chain record as its edge measured it, from loading to
// the pickup or the return (protocol.ColdChain: seconds and degrees Celsius). Known is
// false, and the record absent, when the edge did not send one (protocol 1.0) or sent
// one that cannot be true: unknown, never "kept cold". Its JSON is the order's
// cold_chain in the API and the webhooks: {"known":false}, or known with the record's
// fields beside it, so that a report can add up seconds across orders.
type ColdChain struct {
	Known bool `json:"known"`
	*protocol.ColdChain
}

// Refund is a refund the platform made and recorded with a redelivery. Larder moves no
// money: it keeps what the platform says, for its reports and for ops.
type Refund struct {
	AmountCents int64  `json:"amount_cents"`
	Currency    string `json:"currency"`
	Reference   string `json:"reference,omitempty"`
	Note        string `json:"note,omitempty"`
}

// LogValue keeps the recipient out of logs.
func (o Order) LogValue() slog.Value {
	return slog.GroupValue(slog.String("order", o.ID), slog.String("site", o.Site), slog.String("state", string(o.State)))
}

// APIKey is a stored API key: only the SHA-256 of the key is kept.
type APIKey struct {
	ID      string    `json:"id"`
	Digest  string    `json:"digest"`
	Role    Role      `json:"role"`
	Subject string    `json:"subject"`
	Created time.Time `json:"created"`
}

// AuditEntry is one line of the append-only audit log: every door opening asked for or
// reported, every change of service state, every secret handed out.
type AuditEntry struct {
	ID          string                  `json:"id"`
	Time        time.Time               `json:"time"`
	Site        string                  `json:"site,omitempty"`
	Actor       string                  `json:"actor"`
	Role        Role                    `json:"role,omitempty"`
	Action      string                  `json:"action"`
	Compartment int                     `json:"compartment,omitempty"`
	Order       string                  `json:"order,omitempty"`
	Reason      string                  `json:"reason,omitempty"`
	Credential  protocol.CredentialKind `json:"credential,omitempty"`
	Command     string                  `json:"command,omitempty"`
}

// Alarm is an open problem at a site, raised by an edge event and closed by a later fact
// (door closed, board online, zone back in range, back in service) or by ops.
type Alarm struct {
	ID          string             `json:"id"`
	Site        string             `json:"site"`
	Kind        protocol.EventKind `json:"kind"`
	Compartment int                `json:"compartment,omitempty"`
	Board       *int               `json:"board,omitempty"`
	Zone        protocol.Zone      `json:"zone,omitempty"`
	Since       time.Time          `json:"since"`
	Updated     time.Time          `json:"updated"`
	Count       int                `json:"count"`
	Reason      string             `json:"reason,omitempty"`
}

// CommandRecord is a command sent to an edge and its progress (a job).
type CommandRecord struct {
	Site    string                `json:"site"`
	Command protocol.Command      `json:"command"`
	State   protocol.CommandState `json:"state"`
	Error   protocol.ErrorCode    `json:"error,omitempty"`
	Message string                `json:"message,omitempty"`
	Created time.Time             `json:"created"`
	Updated time.Time             `json:"updated"`
}

// Credential is a driver's loading credential as stored: only its digest.
type Credential struct {
	Site string `json:"site"`
	protocol.LoadingCredential
}
