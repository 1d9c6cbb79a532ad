package http

import (
	"time"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/protocol"
)

// Wire shapes: the API's JSON, kept apart from the domain's records (which hold digests
// and keys that never leave the cloud).

type parcelJSON struct {
	Size protocol.Size `json:"size"`
	Zone protocol.Zone `json:"zone"`
}

type windowIn struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

type recipientIn struct {
	Phone string `json:"phone"`
	Name  string `json:"name"`
	Flat  string `json:"flat"`
}

// orderIn is the body of POST /v1/orders. Times are strings so that a bad one is
// reported with its field name.
type orderIn struct {
	ExternalID   string       `json:"external_id"`
	Site         string       `json:"site"`
	Recipient    recipientIn  `json:"recipient"`
	Accessible   bool         `json:"accessible"`
	Parcels      []parcelJSON `json:"parcels"`
	Window       windowIn     `json:"window"`
	CodeDelivery string       `json:"code_delivery"`
}

func parseTime(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, cloud.Invalid(field, "required")
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, cloud.Invalid(field, "want an RFC 3339 time such as 2026-03-02T17:00:00Z")
	}
	return t, nil
}

// decodeOrder decodes and converts an order-create body; it is the fuzzed decoder.
func decodeOrder(data []byte) (cloud.OrderRequest, error) {
	var in orderIn
	if err := decodeBytes(data, &in); err != nil {
		return cloud.OrderRequest{}, err
	}
	start, err := parseTime("window.start", in.Window.Start)
	if err != nil {
		return cloud.OrderRequest{}, err
	}
	end, err := parseTime("window.end", in.Window.End)
	if err != nil {
		return cloud.OrderRequest{}, err
	}
	req := cloud.OrderRequest{ExternalID: in.ExternalID, Site: in.Site,
		Recipient:  cloud.Recipient{Phone: in.Recipient.Phone, Name: in.Recipient.Name, Flat: in.Recipient.Flat},
		Accessible: in.Accessible, Window: cloud.Window{Start: start, End: end}, CodeDelivery: cloud.CodeDelivery(in.CodeDelivery)}
	for _, p := range in.Parcels {
		req.Parcels = append(req.Parcels, cloud.Parcel{Size: p.Size, Zone: p.Zone})
	}
	return req, nil
}

// redeliverIn is the body of POST /v1/orders/{order}/redeliver.
type redeliverIn struct {
	ExternalID string        `json:"external_id"`
	Window     windowIn      `json:"window"`
	Refund     *cloud.Refund `json:"refund"`
}

// decodeRedeliver decodes and converts a redeliver body; it is fuzzed like decodeOrder.
func decodeRedeliver(data []byte) (cloud.RedeliverRequest, error) {
	var in redeliverIn
	if err := decodeBytes(data, &in); err != nil {
		return cloud.RedeliverRequest{}, err
	}
	start, err := parseTime("window.start", in.Window.Start)
	if err != nil {
		return cloud.RedeliverRequest{}, err
	}
	end, err := parseTime("window.end", in.Window.End)
	if err != nil {
		return cloud.RedeliverRequest{}, err
	}
	return cloud.RedeliverRequest{ExternalID: in.ExternalID, Window: cloud.Window{Start: start, End: end}, Refund: in.Refund}, nil
}

type slotJSON struct {
	Compartment int           `json:"compartment"`
	Size        protocol.Size `json:"size"`
	Zone        protocol.Zone `json:"zone"`
	Generation  uint64        `json:"generation"`
	Parcels     []int         `json:"parcels"`
	Loaded      bool          `json:"loaded"`
}

type recipientOut struct {
	// Phone is masked: only the last 4 digits (the second factor) are shown.
	Phone string `json:"phone"`
	Name  string `json:"name,omitempty"`
	Flat  string `json:"flat,omitempty"`
}

type orderOut struct {
	ID           string           `json:"id"`
	ExternalID   string           `json:"external_id"`
	Platform     string           `json:"platform"`
	Site         string           `json:"site"`
	State        cloud.OrderState `json:"state"`
	Zone         protocol.Zone    `json:"zone"`
	Recipient    recipientOut     `json:"recipient"`
	Accessible   bool             `json:"accessible"`
	Parcels      []parcelJSON     `json:"parcels"`
	Window       cloud.Window     `json:"window"`
	Slots        []slotJSON       `json:"slots"`
	CodeDelivery string           `json:"code_delivery"`
	CodeValid    bool             `json:"code_valid"`
	ExpiresAt    time.Time        `json:"expires_at"`
	LoadedAt     *time.Time       `json:"loaded_at,omitempty"`
	ClosedAt     *time.Time       `json:"closed_at,omitempty"`
	Reason       string           `json:"reason,omitempty"`
	// Compromised: the edge declared the food out of temperature past its budget (it
	// stays true after the order ends).
	Compromised bool `json:"compromised"`
	// ColdChain is set once the order was picked up or returned.
	ColdChain  *cloud.ColdChain `json:"cold_chain,omitempty"`
	Replaces   string           `json:"replaces,omitempty"`
	ReplacedBy string           `json:"replaced_by,omitempty"`
	Refund     *cloud.Refund    `json:"refund,omitempty"`
	Created    time.Time        `json:"created"`
	Updated    time.Time        `json:"updated"`
}

func presentOrder(o cloud.Order) orderOut {
	out := orderOut{ID: o.ID, ExternalID: o.ExternalID, Platform: o.Platform, Site: o.Site, State: o.State, Zone: o.Zone,
		Recipient:  recipientOut{Phone: "****" + cloud.LastFour(o.Recipient.Phone), Name: o.Recipient.Name, Flat: o.Recipient.Flat},
		Accessible: o.Accessible, Window: o.Window, CodeDelivery: string(o.Delivery),
		CodeValid: o.State.Live() && !o.CodeInvalid, ExpiresAt: o.ExpiresAt, Reason: o.Reason, Created: o.Created, Updated: o.Updated,
		Compromised: o.Compromised, ColdChain: o.ColdChain, Replaces: o.Replaces, ReplacedBy: o.ReplacedBy, Refund: o.Refund,
		Parcels: []parcelJSON{}, Slots: []slotJSON{}}
	for _, p := range o.Parcels {
		out.Parcels = append(out.Parcels, parcelJSON(p))
	}
	for _, s := range o.Slots {
		out.Slots = append(out.Slots, slotJSON{Compartment: s.Compartment, Size: s.Size, Zone: s.Zone, Generation: s.Generation, Parcels: s.Parcels, Loaded: s.Loaded})
	}
	if !o.LoadedAt.IsZero() {
		t := o.LoadedAt
		out.LoadedAt = &t
	}
	if !o.ClosedAt.IsZero() {
		t := o.ClosedAt
		out.ClosedAt = &t
	}
	return out
}

// pickupOut is the code handed to a platform that delivers codes itself, once.
type pickupOut struct {
	Code string `json:"code"`
	QR   string `json:"qr"`
}

type receiptOut struct {
	Order  orderOut   `json:"order"`
	Pickup *pickupOut `json:"pickup,omitempty"`
}

func presentReceipt(rc cloud.OrderReceipt) receiptOut {
	out := receiptOut{Order: presentOrder(rc.Order)}
	if rc.Code != "" {
		out.Pickup = &pickupOut{Code: rc.Code, QR: rc.QR}
	}
	return out
}

type siteOut struct {
	ID          string          `json:"id"`
	Name        string          `json:"name,omitempty"`
	Address     string          `json:"address,omitempty"`
	Location    *cloud.Location `json:"location,omitempty"`
	TimeZone    string          `json:"time_zone,omitempty"`
	District    string          `json:"district,omitempty"`
	Tags        []string        `json:"tags,omitempty"`
	Provisioned bool            `json:"provisioned"`
	Created     time.Time       `json:"created"`
}

func presentSite(s cloud.Site) siteOut {
	return siteOut{ID: s.ID, Name: s.Name, Address: s.Address, Location: s.Location, District: s.District, Tags: s.Tags, TimeZone: s.TimeZone,
		Provisioned: s.Provisioned, Created: s.Created}
}

type commandOut struct {
	ID          string                `json:"id"`
	Site        string                `json:"site"`
	Kind        protocol.CommandKind  `json:"kind"`
	Compartment int                   `json:"compartment,omitempty"`
	Purpose     protocol.Purpose      `json:"purpose,omitempty"`
	Reason      string                `json:"reason,omitempty"`
	Order       string                `json:"order,omitempty"`
	State       protocol.CommandState `json:"state"`
	Error       protocol.ErrorCode    `json:"error,omitempty"`
	Message     string                `json:"message,omitempty"`
	ExpiresAt   time.Time             `json:"expires_at"`
	Created     time.Time             `json:"created"`
	Updated     time.Time             `json:"updated"`
}

func presentCommand(c cloud.CommandRecord) commandOut {
	return commandOut{ID: c.Command.ID, Site: c.Site, Kind: c.Command.Kind, Compartment: c.Command.Compartment,
		Purpose: c.Command.Purpose, Reason: c.Command.Reason, Order: c.Command.Order, State: c.State, Error: c.Error,
		Message: c.Message, ExpiresAt: c.Command.ExpiresAt, Created: c.Created, Updated: c.Updated}
}

type keyOut struct {
	ID      string     `json:"id"`
	Role    cloud.Role `json:"role"`
	Subject string     `json:"subject"`
	Created time.Time  `json:"created"`
	// Key is the plain API key, only in the response that creates it.
	Key string `json:"key,omitempty"`
}
