package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/larder-lockers/larder/cloud"
)

// Notifier implements the domain's port (cloud.Notifier and cloud.TxNotifier) over the
// durable outbox: each [cloud.Notification] becomes a webhook to its platform and, for
// notices meant for the resident of an order whose code the cloud delivers, an SMS. The
// domain decides when (including its own 50 %/90 % reminders, from its sweep); Notifier
// only makes the notice durable and idempotent: the keys are the domain's notification
// id plus the channel ("evt_…/webhook", "evt_…/sms"), which are also the CloudEvent ids.
//
// With a [TxOutbox] (the [BoltQueue] in the cloud's bbolt file, the [PGQueue] in its
// PostgreSQL database) the domain calls NotifyTx, and the notices are written in the
// domain's transaction: they commit with the change they report, or not at all. Set the
// fields before the service runs.
type Notifier struct {
	Outbox Outbox
	// PublicURL is the cloud's base URL as residents reach it (cloudd's public_url).
	// When set, every notice that carries a pickup code also carries the resident
	// page's link, [ResidentLink](PublicURL, order, code): the SMS after the code, the
	// webhook data as resident_url (only when the platform gets the code).
	PublicURL string
	// NoSMS drops the resident's SMS (no gateway configured), so that they do not wait
	// in the outbox until dead-lettered; webhooks still go.
	NoSMS bool
	// Wake, when set, is called once a transaction that enqueued has committed
	// ([Worker.Wake]): delivery starts without waiting for the worker's next poll.
	Wake func()
}

// residentKinds are the notices a resident gets by SMS.
var residentKinds = map[Kind]bool{
	KindCodeIssued: true, KindLoaded: true, KindReminder: true, KindExpired: true, KindCompromised: true,
	KindReassigned: true, KindCodeInvalidated: true, KindExtended: true, KindCancelled: true,
}

// ResidentLink is the resident page's link for order with its pickup code:
// base + "/r/" + order + "#c=" + code. It is cloud/web's ResidentLink, spelled out here
// because cloud/web imports this package (a test checks that both agree). The code is
// in the fragment, which browsers never send to a server, so it stays out of access logs.
func ResidentLink(base, order, code string) string {
	return strings.TrimRight(base, "/") + "/r/" + order + "#c=" + code
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
	// TimeZone is the IANA name of the site's zone; ExpiresLocal is ExpiresAt in it, as
	// RFC 3339 with the zone's offset ("2026-12-04T18:30:00+08:00"), for platforms
	// that tell the resident the deadline themselves.
	TimeZone     string `json:"time_zone,omitempty"`
	ExpiresLocal string `json:"expires_local,omitempty"`
	Reason       string `json:"reason,omitempty"`
	// Code (and QR, the code as a QR payload) are present only in the notices that
	// carry a code ("loaded", "code_issued") and only for platforms that asked for it.
	Code string `json:"code,omitempty"`
	QR   string `json:"qr,omitempty"`
	// ResidentURL is the resident page's link with the code in its fragment
	// ([ResidentLink]): present exactly when Code is and the cloud knows its public URL.
	ResidentURL string `json:"resident_url,omitempty"`
	// ColdChain is the order's cold-chain record, in "picked_up" and "returned":
	// {"known":false}, or known with from, to, limit_c, above_seconds, peak_c and
	// missing_seconds ([cloud.ColdChain]).
	ColdChain *cloud.ColdChain `json:"cold_chain,omitempty"`
	// Replaces is the order a redelivery replaces, in the replacement's notices.
	Replaces string `json:"replaces,omitempty"`
}

// smsData is what an SMS notification carries for the text template.
type smsData struct {
	EventData
	SiteName string `json:"site_name,omitempty"`
}

// messages turns a domain notice into the outbox's notifications, one per channel.
func (nt *Notifier) messages(n cloud.Notification) []Notification {
	kind := Kind(strings.TrimPrefix(n.Type, "order."))
	base := EventData{Order: n.Order, Site: n.Site, ExternalID: n.ExternalID, State: string(n.State),
		Compartments: n.Compartments, LoadedAt: n.LoadedAt, ExpiresAt: n.ExpiresAt, Reason: n.Reason,
		ColdChain: n.ColdChain, Replaces: n.Replaces, TimeZone: n.TimeZone}
	if loc, err := time.LoadLocation(n.TimeZone); n.TimeZone != "" && err == nil && !n.ExpiresAt.IsZero() {
		base.ExpiresLocal = n.ExpiresAt.In(loc).Format(time.RFC3339)
	}
	link := ""
	if n.Code != "" && nt.PublicURL != "" {
		link = ResidentLink(nt.PublicURL, n.Order, n.Code)
	}
	var out []Notification
	if n.Platform != "" {
		d := base
		if n.CodeToPlatform {
			d.Code, d.QR = n.Code, n.QR
			d.ResidentURL = link
		}
		data, _ := json.Marshal(d)
		out = append(out, Notification{ID: n.ID + "/" + string(ChannelWebhook), Kind: kind, Channel: ChannelWebhook,
			Target: n.Platform, Order: n.Order, Site: n.Site, Data: data, Created: n.Time})
	}
	if !nt.NoSMS && n.Recipient != nil && n.Recipient.Phone != "" && !n.CodeToPlatform && residentKinds[kind] {
		d := smsData{EventData: base, SiteName: n.SiteName}
		d.Code, d.ResidentURL = n.Code, link
		data, _ := json.Marshal(d)
		out = append(out, Notification{ID: n.ID + "/" + string(ChannelSMS), Kind: kind, Channel: ChannelSMS,
			Target: n.Recipient.Phone, Order: n.Order, Site: n.Site, Data: data, Created: n.Time})
	}
	return out
}

// Notify implements cloud.Notifier: it enqueues the notice's notifications, each in its
// own transaction. The domain calls it only for notifiers that are not transactional;
// this one is (NotifyTx), so Notify serves tools and tests.
func (nt *Notifier) Notify(ctx context.Context, n cloud.Notification) error {
	for _, m := range nt.messages(n) {
		if _, err := nt.Outbox.Enqueue(ctx, m); err != nil {
			return fmt.Errorf("notify: %s: %w", m.ID, err)
		}
	}
	return nil
}

// NotifyTx implements cloud.TxNotifier: with a [TxOutbox] it enqueues the notice's
// notifications in tx, which must be a transaction the outbox can join: of the cloud's
// bbolt file for a [BoltQueue] (cloud/bolt), of its PostgreSQL database for a
// [PGQueue] (cloud/pg). Any other transaction is an error, which fails the domain's
// change rather than let it commit without its notice. An Outbox that cannot
// join a transaction ([MemQueue], which is not durable anyway) gets them after the
// commit.
func (nt *Notifier) NotifyTx(tx cloud.Tx, n cloud.Notification) error {
	msgs := nt.messages(n)
	if len(msgs) == 0 {
		return nil
	}
	to, ok := nt.Outbox.(TxOutbox)
	if !ok {
		tx.OnCommit(func() {
			for _, m := range msgs {
				nt.Outbox.Enqueue(context.Background(), m) // MemQueue: quick, fails only on an invalid notice
			}
			nt.wake()
		})
		return nil
	}
	for {
		// The domain may wrap the store's transaction (its fleet index does).
		u, ok := tx.(interface{ Unwrap() cloud.Tx })
		if !ok {
			break
		}
		tx = u.Unwrap()
	}
	for _, m := range msgs {
		if _, err := to.EnqueueTx(tx, m); err != nil {
			return err
		}
	}
	if nt.Wake != nil {
		tx.OnCommit(nt.Wake)
	}
	return nil
}

func (nt *Notifier) wake() {
	if nt.Wake != nil {
		nt.Wake()
	}
}

// ServiceEndpoints resolves webhook endpoints from the domain's platform records
// (cloud.Service.Webhook).
type ServiceEndpoints struct {
	Service interface {
		Webhook(ctx context.Context, platform string) (url string, secret []byte, err error)
	}
}

// Endpoint implements [Endpoints].
func (e ServiceEndpoints) Endpoint(ctx context.Context, platform string) (Endpoint, error) {
	u, secret, err := e.Service.Webhook(ctx, platform)
	switch {
	case cloud.ErrorCode(err) == cloud.ENotFound:
		return Endpoint{}, ErrNoEndpoint
	case err != nil:
		return Endpoint{}, err
	}
	return Endpoint{URL: u, Secret: secret}, nil
}
