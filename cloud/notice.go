package cloud

import (
	"context"
	"log/slog"
	"time"
)

// Notices: what the outside world (residents by SMS, platforms by webhook) is told about
// orders. Each lifecycle effect that tells something calls note inside the transaction
// of the change it reports.

// Notifier takes notifications for residents (SMS) and platforms (webhooks). Notify must
// not block for long: implementations queue and deliver with retries.
//
// A Notifier that also implements [TxNotifier] takes every notification inside the
// transaction of the change it reports, and Notify is then not called; any other
// Notifier gets its notifications after the commit, from memory, and loses them in a
// crash (tests, tools).
type Notifier interface {
	Notify(ctx context.Context, n Notification) error
}

// TxNotifier is a Notifier that writes notifications into a durable outbox in the
// domain's own transaction: a notice commits with the state change it reports, or not
// at all, so that a process killed at any moment neither loses the notice of a change
// it acknowledged (the arrival notice holds the resident's only copy of the code) nor
// sends one for a change that never committed. NotifyTx may run more than once for one
// change (the store may retry a transaction) but never commits twice; it must be quick
// (it runs in the store's single writer) and must not keep tx past its return.
type TxNotifier interface {
	Notifier
	NotifyTx(tx Tx, n Notification) error
}

// Notification is a fact about an order for the outside world. Code and QR are set only
// on the arrival notice (order.loaded) and on reissued codes (order.code_issued) of
// orders whose code the cloud delivers; once the notice is made, the code's sealed copy
// on the order (code.go) is erased in the same transaction, so the notice is the only
// place the plain code exists. LogValue redacts them.
type Notification struct {
	// Type is the CloudEvents type suffix, e.g. "order.loaded".
	Type       string     `json:"type"`
	ID         string     `json:"id"`
	Time       time.Time  `json:"time"`
	Site       string     `json:"site"`
	Order      string     `json:"order"`
	Platform   string     `json:"platform"`
	ExternalID string     `json:"external_id"`
	State      OrderState `json:"state"`
	// Recipient is set on notifications meant for the resident (SMS).
	Recipient *Recipient `json:"recipient,omitempty"`
	Code      string     `json:"code,omitempty"`
	QR        string     `json:"qr,omitempty"`
	// Compartments are the door numbers, for the arrival notice.
	Compartments []int     `json:"compartments,omitempty"`
	LoadedAt     time.Time `json:"loaded_at,omitzero"`
	ExpiresAt    time.Time `json:"expires_at,omitzero"`
	// SiteName is the human name of the locker bank, for the resident's message.
	SiteName string `json:"site_name,omitempty"`
	// TimeZone is the IANA name of the site's zone, in which the texts tell times.
	TimeZone string `json:"time_zone,omitempty"`
	// CodeToPlatform is true when the platform delivers codes itself.
	CodeToPlatform bool   `json:"code_to_platform,omitempty"`
	Reason         string `json:"reason,omitempty"`
	// ColdChain is the order's cold-chain record, on order.picked_up and order.returned
	// ({"known":false} when the edge did not report one).
	ColdChain *ColdChain `json:"cold_chain,omitempty"`
	// Replaces is the order a redelivery replaces, on the replacement's notices.
	Replaces string `json:"replaces,omitempty"`
}

// LogValue keeps the code and the recipient out of logs.
func (n Notification) LogValue() slog.Value {
	return slog.GroupValue(slog.String("type", n.Type), slog.String("order", n.Order), slog.String("site", n.Site))
}

// Notification types.
const (
	NoteCreated         = "order.created"
	NoteCodeIssued      = "order.code_issued"
	NoteLoaded          = "order.loaded"
	NoteReminder        = "order.reminder"
	NotePickedUp        = "order.picked_up"
	NoteExpired         = "order.expired"
	NoteReturned        = "order.returned"
	NoteCancelled       = "order.cancelled"
	NoteCompromised     = "order.compromised"
	NoteReassigned      = "order.reassigned"
	NoteCodeInvalidated = "order.code_invalidated"
	NoteExtended        = "order.extended"
)

// note makes the notification typ about o, in tx: a [TxNotifier] writes it into its
// durable outbox in this very transaction (an error then fails the transaction: a change
// must not commit without its notice); any other Notifier gets it after the commit.
// Ids sort by time (sortableID), so that an outbox keyed by them grows at its end. st is
// o's site as the caller loaded it (for its name), so that a notice reads no record.
func (s *Service) note(tx Tx, st *Site, typ string, o *Order, mod func(*Notification)) error {
	now := s.now()
	n := Notification{Type: typ, ID: sortableID("evt_", now), Time: now.UTC(), Site: o.Site, Order: o.ID,
		Platform: o.Platform, ExternalID: o.ExternalID, State: o.State, LoadedAt: o.LoadedAt, ExpiresAt: o.ExpiresAt,
		CodeToPlatform: o.Delivery == DeliverByPlatform, ColdChain: o.ColdChain, Replaces: o.Replaces,
		TimeZone: s.siteZone(st)}
	for _, sl := range o.Slots {
		n.Compartments = append(n.Compartments, sl.Compartment)
	}
	if typ != NotePickedUp && typ != NoteCreated {
		// Notices the resident gets carry the phone number (platform-only ones do not)
		// and the locker bank's name, for the text.
		r := o.Recipient
		n.Recipient = &r
		n.SiteName = st.Name
	}
	if mod != nil {
		mod(&n)
	}
	if tn, ok := s.ports.notifier.(TxNotifier); ok {
		if err := tn.NotifyTx(tx, n); err != nil {
			return internal("notify "+typ, err)
		}
		return nil
	}
	tx.OnCommit(func() { s.queue(outItem{site: o.Site, note: &n}) })
	return nil
}

// codeNote makes the code notification to the resident.
func (s *Service) codeNote(tx Tx, st *Site, o *Order, code string) error {
	r := o.Recipient
	return s.note(tx, st, NoteCodeIssued, o, func(n *Notification) {
		n.Recipient = &r
		n.Code = code
		n.QR = QRPayload(o.Site, code)
		n.ExpiresAt = o.ExpiresAt
	})
}
