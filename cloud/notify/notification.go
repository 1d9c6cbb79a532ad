package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/larder-lockers/larder/cloud"
)

// Kind is what a notification tells: the domain's notice type without its "order."
// prefix ([cloud.NoteLoaded] is "order.loaded"). Kinds are part of the CloudEvents type
// ("com.larder.order." + kind) that platforms subscribe to: an append-only list.
type Kind string

// Notification kinds.
const (
	KindCreated         Kind = "created"          // the order has compartments reserved
	KindCodeIssued      Kind = "code_issued"      // a new pickup code replaced the old one
	KindLoaded          Kind = "loaded"           // the driver loaded the order; pickup can start
	KindReminder        Kind = "reminder"         // the domain's reminder (it counts them on the order)
	KindPickedUp        Kind = "picked_up"        // the resident took the order
	KindExpired         Kind = "expired"          // the window ended; the order awaits return
	KindReturned        Kind = "returned"         // the driver took the expired order back
	KindCancelled       Kind = "cancelled"        // the booking was cancelled
	KindCompromised     Kind = "compromised"      // time out of temperature exceeded its budget
	KindReassigned      Kind = "reassigned"       // the order moved to other compartments
	KindCodeInvalidated Kind = "code_invalidated" // the code was disabled (e.g. too many wrong tries)
	KindExtended        Kind = "extended"         // the pickup deadline moved later
)

// Channel says how a notification travels.
type Channel string

// Channels.
const (
	ChannelWebhook Channel = "webhook" // CloudEvent POSTed to the platform's endpoint
	ChannelSMS     Channel = "sms"     // text message through the SMS gateway
)

// State is where a notification is in the outbox.
type State string

// States. Pending ones are retried until delivered or dead-lettered.
const (
	StatePending   State = "pending"
	StateDelivered State = "delivered"
	StateDead      State = "dead"
	// StateCancelled: nothing to deliver, e.g. a webhook for a platform that set none
	// ([ErrNoEndpoint]).
	StateCancelled State = "cancelled"
)

// Notification is one message in the outbox.
type Notification struct {
	// ID is the idempotency key: the domain's notice id plus the channel, e.g.
	// "evt_123/webhook" (see [Notifier]). Enqueueing an existing ID is a no-op, so a
	// retried transaction notifies once. It is also the CloudEvent id, so receivers
	// can deduplicate retries.
	ID      string  `json:"id"`
	Kind    Kind    `json:"kind"`
	Channel Channel `json:"channel"`
	// Target is whom to tell: for webhooks the platform id (resolved to an endpoint
	// and secret by the webhook sender), for SMS the phone number. Never logged.
	Target string `json:"target"`
	// Order and Site are the subject, for the CloudEvent and for ops; never secrets.
	Order string `json:"order,omitempty"`
	Site  string `json:"site,omitempty"`
	// Data is the CloudEvent data (JSON object). It may carry the pickup code when the
	// platform asked for it; queues keep it only until delivery or dead-lettering
	// (see [Queue]) and it is never logged.
	Data json.RawMessage `json:"data,omitempty"`
	// Lang is the SMS language preference ("zh", "en", "" = both).
	Lang string `json:"lang,omitempty"`
	// Created is when the notification was enqueued; Due is when it should first be
	// sent (zero: at Created; [Notifier] leaves it zero, the domain decides when).
	Created time.Time `json:"created"`
	Due     time.Time `json:"due"`

	// Delivery bookkeeping, maintained by the queue.
	State     State     `json:"state"`
	Attempts  int       `json:"attempts"`
	NextTry   time.Time `json:"next_try"`
	LastError string    `json:"last_error,omitempty"`
	Done      time.Time `json:"done,omitzero"`
	// Claim identifies the claim under which a claiming queue ([PGQueue]) handed this
	// copy out of Due; the worker settles with it ([Result.Claim]). Zero from queues
	// that do not claim; never stored.
	Claim int64 `json:"-"`
}

// LogValue keeps targets (phone numbers) and data (codes) out of logs.
func (n Notification) LogValue() slog.Value {
	return slog.GroupValue(slog.String("notification", n.ID), slog.String("kind", string(n.Kind)),
		slog.String("channel", string(n.Channel)), slog.String("order", n.Order), slog.Int("attempts", n.Attempts))
}

// Queue is the durable outbox. Implementations: [MemQueue] (tests, single process),
// [BoltQueue] (the cloud's bbolt file) and [PGQueue] (PostgreSQL, shared by replicas).
// All methods are safe for concurrent use.
type Queue interface {
	Outbox
	Deliveries
	Backlog
}

// Outbox is what the domain uses to send notifications.
type Outbox interface {
	// Enqueue adds n as pending with NextTry = n.Due (zero Due: n.Created; zero Created:
	// now). It returns false without changing anything when n.ID already exists in any
	// state: enqueueing is idempotent, so a notice enqueued twice is sent once.
	Enqueue(ctx context.Context, n Notification) (bool, error)
}

// TxOutbox is an [Outbox] that can also enqueue inside the store's transaction, which
// the caller commits: [BoltQueue] joins cloud/bolt's transactions (they have
// Bolt() *bbolt.Tx), [PGQueue] cloud/pg's (Pgx() pgx.Tx). [Notifier] uses it to write
// the domain's notices in the domain's transaction.
type TxOutbox interface {
	Outbox
	// EnqueueTx is Enqueue in tx, the store's own transaction (a cloud.Tx that wraps
	// none: [Notifier] unwraps the domain's): idempotent by id like Enqueue, durable
	// once tx commits, gone if it rolls back. A transaction the queue cannot join (of
	// another kind or another database) is an error.
	EnqueueTx(tx cloud.Tx, n Notification) (bool, error)
}

// Deliveries is what the delivery [Worker] uses.
type Deliveries interface {
	// Due returns up to limit pending notifications whose NextTry is at or before now,
	// oldest NextTry first.
	Due(ctx context.Context, now time.Time, limit int) ([]Notification, error)
	// Settle records the outcome of one attempt of notification id: r.State is
	// StateDelivered, StatePending (retry at r.NextTry), StateDead or StateCancelled;
	// Attempts grows by one. Notifications leaving the pending
	// state drop their Data (it may hold a pickup code). Settling an unknown or no
	// longer pending id is a no-op, and so is settling a claim that is no longer the
	// notification's current one (r.Claim, see [PGQueue]).
	Settle(ctx context.Context, id string, r Result) error
}

// Result is the outcome of one delivery attempt.
type Result struct {
	State   State
	At      time.Time
	NextTry time.Time // for StatePending
	Error   string    // for retries and dead letters; never contains secrets
	// Claim is the [Notification.Claim] the attempt was made under. A claiming queue
	// ignores the result when the notification has been claimed again since (the
	// claim expired and another worker took over: its outcome stands). Zero settles
	// whatever the claim (tools, tests); the [Worker] always passes the claim it got.
	Claim int64
}

// Backlog is what ops see.
type Backlog interface {
	// Stats counts notifications by state.
	Stats(ctx context.Context) (Stats, error)
	// DeadLetters lists up to limit dead-lettered notifications, newest first, without
	// their Data.
	DeadLetters(ctx context.Context, limit int) ([]Notification, error)
	// Requeue makes a dead letter pending again with NextTry = now and zero attempts
	// (an operator fixed the endpoint). Its Data is gone, so a requeued "loaded" with a
	// code is sent without the code. Unknown or non-dead ids: [ErrNotFound].
	Requeue(ctx context.Context, id string, now time.Time) error
}

// Stats counts notifications by state.
type Stats struct {
	Pending   int `json:"pending"`
	Delivered int `json:"delivered"`
	Dead      int `json:"dead"`
	Cancelled int `json:"cancelled"`
}

// ErrNotFound is returned for an unknown notification id.
var ErrNotFound = errors.New("notify: notification not found")

// validate checks what every queue needs of a new notification.
func (n Notification) validate() error {
	switch {
	case n.ID == "":
		return errors.New("notify: notification without id")
	case len(n.ID) > 200:
		return errors.New("notify: notification id longer than 200 bytes")
	case n.Channel != ChannelWebhook && n.Channel != ChannelSMS:
		return fmt.Errorf("notify: %s: unknown channel %q", n.ID, n.Channel)
	case n.Target == "":
		return fmt.Errorf("notify: %s: no target", n.ID)
	case n.Kind == "":
		return fmt.Errorf("notify: %s: no kind", n.ID)
	}
	return nil
}

// prepare fills the bookkeeping of a notification being enqueued.
func (n *Notification) prepare(now time.Time) {
	if n.Created.IsZero() {
		n.Created = now
	}
	if n.Due.IsZero() {
		n.Due = n.Created
	}
	n.State, n.Attempts, n.NextTry, n.LastError, n.Done = StatePending, 0, n.Due, "", time.Time{}
}

// settle applies r to a pending notification.
func (n *Notification) settle(r Result) {
	n.Attempts++
	n.LastError = r.Error
	switch r.State {
	case StatePending:
		n.NextTry = r.NextTry
		return
	case StateDelivered, StateDead, StateCancelled:
	default:
		return
	}
	n.State, n.Done, n.Data, n.NextTry = r.State, r.At, nil, time.Time{}
}

// requeue makes a dead letter pending again.
func (n *Notification) requeue(now time.Time) {
	n.State, n.Attempts, n.NextTry, n.Done = StatePending, 0, now, time.Time{}
}

func (s *Stats) add(st State, d int) {
	switch st {
	case StatePending:
		s.Pending += d
	case StateDelivered:
		s.Delivered += d
	case StateDead:
		s.Dead += d
	case StateCancelled:
		s.Cancelled += d
	}
}
