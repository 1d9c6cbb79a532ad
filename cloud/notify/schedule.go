package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Order is what the notifications of one order need to know. The domain builds it
// from its order record when something happens to the order.
type Order struct {
	ID   string
	Site string
	// Platform is the id of the grocery platform that placed the order; its webhook
	// endpoint receives every notice. Empty: no webhooks.
	Platform string
	// Phone is the recipient's phone number for SMS notices; empty: no SMS.
	Phone string
	Lang  string // "zh", "en", "" = both
	// Compartments are the door numbers, for the resident's message.
	Compartments []int
	// SiteName is the human name of the locker bank ("Building 3 courtyard").
	SiteName string
	// LoadedAt and ExpiresAt bound the pickup window (set from "loaded" on).
	LoadedAt  time.Time
	ExpiresAt time.Time
	// Code is the pickup code, set only when calling [Scheduler.Loaded]; it goes into
	// the SMS and, when CodeToPlatform is true, into the webhook data. Never stored
	// elsewhere, never logged.
	Code           string
	CodeToPlatform bool
}

// Scheduler turns order happenings into notifications in the [Outbox]. Each method
// enqueues one notification per configured channel with an idempotency key per order,
// kind and channel, so calling it twice (a retried transaction, a redelivered event)
// notifies once.
//
// The domain calls: Assigned when compartments are reserved; Loaded when the edge's
// "loaded" event commits (this also schedules the 50 % and 90 % reminders ahead of
// time, due at LoadedAt + 50 % / 90 % of the window); Expired from its expiry
// processing; Compromised when the edge reports an order out of temperature; PickedUp
// when picked up. Because reminders are enqueued in advance, the [Worker] asks the
// [Guard] before sending one: the order may have been picked up meanwhile (cancel) or
// its deadline extended after an outage (reschedule).
type Scheduler struct {
	Outbox Outbox
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

func (s *Scheduler) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Assigned notifies the platform that o has compartments.
func (s *Scheduler) Assigned(ctx context.Context, o Order) error {
	return s.enqueue(ctx, o, KindAssigned, time.Time{}, false)
}

// Loaded notifies the platform and the resident that o is ready, and schedules the
// reminders. o.LoadedAt and o.ExpiresAt must be set.
func (s *Scheduler) Loaded(ctx context.Context, o Order) error {
	if o.LoadedAt.IsZero() || !o.ExpiresAt.After(o.LoadedAt) {
		return fmt.Errorf("notify: loaded %s: need LoadedAt before ExpiresAt", o.ID)
	}
	if err := s.enqueue(ctx, o, KindLoaded, time.Time{}, true); err != nil {
		return err
	}
	for _, r := range []struct {
		k    Kind
		frac float64
	}{{KindReminder50, 0.5}, {KindReminder90, 0.9}} {
		if err := s.enqueue(ctx, o, r.k, ReminderAt(o.LoadedAt, o.ExpiresAt, r.frac), false); err != nil {
			return err
		}
	}
	return nil
}

// Expired notifies that o's window ended and it awaits return.
func (s *Scheduler) Expired(ctx context.Context, o Order) error {
	return s.enqueue(ctx, o, KindExpired, time.Time{}, false)
}

// Compromised notifies that o spent too long out of temperature.
func (s *Scheduler) Compromised(ctx context.Context, o Order) error {
	return s.enqueue(ctx, o, KindCompromised, time.Time{}, false)
}

// PickedUp notifies the platform that o was collected (webhook only).
func (s *Scheduler) PickedUp(ctx context.Context, o Order) error {
	o.Phone = ""
	return s.enqueue(ctx, o, KindPickedUp, time.Time{}, false)
}

// ReminderAt is the time when frac of the window from loaded to expires has passed,
// truncated to the second.
func ReminderAt(loaded, expires time.Time, frac float64) time.Time {
	return loaded.Add(time.Duration(float64(expires.Sub(loaded)) * frac)).Truncate(time.Second)
}

// EventData is the CloudEvent data of an order notice.
type EventData struct {
	Order string `json:"order"`
	// ExternalID is the platform's own id of the order.
	ExternalID   string    `json:"external_id,omitempty"`
	Site         string    `json:"site"`
	State        string    `json:"state,omitempty"`
	Compartments []int     `json:"compartments,omitempty"`
	LoadedAt     time.Time `json:"loaded_at,omitzero"`
	ExpiresAt    time.Time `json:"expires_at,omitzero"`
	Reason       string    `json:"reason,omitempty"`
	// Code (and QR, the code as a QR payload) are present only in the notices that
	// carry a code ("loaded", "code_issued") and only for platforms that asked for it.
	Code string `json:"code,omitempty"`
	QR   string `json:"qr,omitempty"`
	// ResidentURL is the resident page's link with the code in its fragment
	// ([ResidentLink]): present exactly when Code is and the cloud knows its public URL.
	ResidentURL string `json:"resident_url,omitempty"`
}

// smsData is what an SMS notification carries for the text template.
type smsData struct {
	EventData
	SiteName string `json:"site_name,omitempty"`
}

func (s *Scheduler) enqueue(ctx context.Context, o Order, k Kind, due time.Time, withCode bool) error {
	now := s.now()
	if due.IsZero() {
		due = now
	}
	base := EventData{Order: o.ID, Site: o.Site, Compartments: o.Compartments, LoadedAt: o.LoadedAt, ExpiresAt: o.ExpiresAt}
	if o.Platform != "" {
		d := base
		if withCode && o.CodeToPlatform {
			d.Code = o.Code
		}
		data, _ := json.Marshal(d)
		n := Notification{ID: Key(o.ID, k, ChannelWebhook), Kind: k, Channel: ChannelWebhook, Target: o.Platform,
			Order: o.ID, Site: o.Site, Data: data, Created: now, Due: due}
		if _, err := s.Outbox.Enqueue(ctx, n); err != nil {
			return fmt.Errorf("notify: enqueue %s: %w", n.ID, err)
		}
	}
	if o.Phone != "" && k != KindAssigned {
		d := smsData{EventData: base, SiteName: o.SiteName}
		if withCode {
			d.Code = o.Code
		}
		data, _ := json.Marshal(d)
		n := Notification{ID: Key(o.ID, k, ChannelSMS), Kind: k, Channel: ChannelSMS, Target: o.Phone,
			Order: o.ID, Site: o.Site, Data: data, Lang: o.Lang, Created: now, Due: due}
		if _, err := s.Outbox.Enqueue(ctx, n); err != nil {
			return fmt.Errorf("notify: enqueue %s: %w", n.ID, err)
		}
	}
	return nil
}

// Guard is asked by the [Worker] before sending a reminder (the only kinds enqueued
// ahead of time). The domain implements it over its orders.
type Guard interface {
	// Reminder reports whether the reminder n for order n.Order still applies.
	// Return (true, zero, nil) to send now; (false, zero, nil) to cancel it (the order
	// was picked up, returned or cancelled); (false, later, nil) to reschedule it to
	// later (the deadline was extended, e.g. by an edge outage; compute it with
	// [ReminderAt] over the new window). An error retries the check later.
	Reminder(ctx context.Context, n Notification) (send bool, later time.Time, err error)
}
