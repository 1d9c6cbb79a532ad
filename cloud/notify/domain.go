package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/larder-lockers/larder/cloud"
)

// Kinds the domain emits besides the ones above ([cloud.Notification] types without
// their "order." prefix).
const (
	KindCreated         Kind = "created"
	KindCodeIssued      Kind = "code_issued"
	KindReminder        Kind = "reminder" // the domain's own reminder (it counts them)
	KindReturned        Kind = "returned"
	KindCancelled       Kind = "cancelled"
	KindReassigned      Kind = "reassigned"
	KindCodeInvalidated Kind = "code_invalidated"
	KindExtended        Kind = "extended"
)

// Notifier implements the domain's port (cloud.Notifier) over the durable outbox: each
// [cloud.Notification] becomes a webhook to its platform and, for notices meant for the
// resident of an order whose code the cloud delivers, an SMS. The domain decides when
// (including its own 50 %/90 % reminders, from its sweep); Notifier only makes the
// notice durable and idempotent: the keys are the domain's notification id plus the
// channel.
type Notifier struct {
	Outbox Outbox
}

// residentKinds are the notices a resident gets by SMS.
var residentKinds = map[Kind]bool{
	KindCodeIssued: true, KindLoaded: true, KindReminder: true, KindExpired: true, KindCompromised: true,
	KindReassigned: true, KindCodeInvalidated: true, KindExtended: true, KindCancelled: true,
}

// Notify implements cloud.Notifier.
func (nt *Notifier) Notify(ctx context.Context, n cloud.Notification) error {
	kind := Kind(strings.TrimPrefix(n.Type, "order."))
	base := EventData{Order: n.Order, Site: n.Site, ExternalID: n.ExternalID, State: string(n.State),
		Compartments: n.Compartments, LoadedAt: n.LoadedAt, ExpiresAt: n.ExpiresAt, Reason: n.Reason}
	if n.Platform != "" {
		d := base
		if n.CodeToPlatform {
			d.Code, d.QR = n.Code, n.QR
		}
		data, _ := json.Marshal(d)
		wn := Notification{ID: n.ID + "/" + string(ChannelWebhook), Kind: kind, Channel: ChannelWebhook,
			Target: n.Platform, Order: n.Order, Site: n.Site, Data: data, Created: n.Time}
		if _, err := nt.Outbox.Enqueue(ctx, wn); err != nil {
			return fmt.Errorf("notify: %s: %w", wn.ID, err)
		}
	}
	if n.Recipient != nil && n.Recipient.Phone != "" && !n.CodeToPlatform && residentKinds[kind] {
		d := smsData{EventData: base, SiteName: n.SiteName}
		d.Code = n.Code
		data, _ := json.Marshal(d)
		sn := Notification{ID: n.ID + "/" + string(ChannelSMS), Kind: kind, Channel: ChannelSMS,
			Target: n.Recipient.Phone, Order: n.Order, Site: n.Site, Data: data, Created: n.Time}
		if _, err := nt.Outbox.Enqueue(ctx, sn); err != nil {
			return fmt.Errorf("notify: %s: %w", sn.ID, err)
		}
	}
	return nil
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
