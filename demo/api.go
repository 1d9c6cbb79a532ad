package demo

import (
	"context"
	"fmt"
	"net/url"
	"time"
)

// API is a client of larder-cloud's REST API (/v1) with one API key.
type API struct {
	URL string // the cloud's base URL, e.g. http://127.0.0.1:7400
	Key string // bearer API key
}

// As returns a client of the same cloud with another key.
func (a *API) As(key string) *API { return &API{URL: a.URL, Key: key} }

func (a *API) do(ctx context.Context, method, path string, body, out any) error {
	return doJSON(ctx, method, a.URL+path, a.Key, body, out)
}

// CreateKey creates an API key (admin) and returns the plain key.
func (a *API) CreateKey(ctx context.Context, role, subject string) (string, error) {
	var out struct {
		Key string `json:"key"`
	}
	err := a.do(ctx, "POST", "/v1/keys", map[string]string{"role": role, "subject": subject}, &out)
	return out.Key, err
}

// CreateSite registers a site (admin).
func (a *API) CreateSite(ctx context.Context, id, name, address string) error {
	return a.do(ctx, "POST", "/v1/sites", map[string]any{"id": id, "name": name, "address": address}, nil)
}

// Provisioning is what a site's edge needs, handed out once.
type Provisioning struct {
	Site         string `json:"site"`
	SiteKey      string `json:"site_key"`
	MQTTUsername string `json:"mqtt_username"`
	MQTTPassword string `json:"mqtt_password"`
	MQTTURL      string `json:"mqtt_url,omitempty"`
}

// Provision hands out the site's key and edge MQTT credentials (admin, once).
func (a *API) Provision(ctx context.Context, site string) (Provisioning, error) {
	var p Provisioning
	err := a.do(ctx, "POST", "/v1/sites/"+url.PathEscape(site)+"/provision", nil, &p)
	return p, err
}

// Site is the part of GET /v1/sites/{site} the demo and tests read.
type Site struct {
	ID              string         `json:"id"`
	Online          bool           `json:"online"`
	Provisioned     bool           `json:"provisioned"`
	DesiredVersion  uint64         `json:"desired_version"`
	EdgeDesired     uint64         `json:"edge_desired_version"`
	Compartments    map[string]int `json:"compartments"`
	OutboxDepth     int            `json:"outbox_depth"`
	CompartmentList []struct {
		Number int    `json:"number"`
		Zone   string `json:"zone"`
		State  string `json:"state"`
		Order  string `json:"order,omitempty"`
	} `json:"compartment_list"`
	Alarms []map[string]any `json:"alarms"`
}

// Site reads one site (ops, admin).
func (a *API) Site(ctx context.Context, id string) (Site, error) {
	var s Site
	err := a.do(ctx, "GET", "/v1/sites/"+url.PathEscape(id), nil, &s)
	return s, err
}

// Parcel is one parcel of an order.
type Parcel struct {
	Size string `json:"size"` // S, M, L
	Zone string `json:"zone"` // frozen, chilled, cool, ambient
}

// NewOrder is the body of POST /v1/orders.
type NewOrder struct {
	ExternalID string `json:"external_id"`
	Site       string `json:"site"`
	Recipient  struct {
		Phone string `json:"phone"`
		Name  string `json:"name,omitempty"`
		Flat  string `json:"flat,omitempty"`
	} `json:"recipient"`
	Accessible bool     `json:"accessible,omitempty"`
	Parcels    []Parcel `json:"parcels"`
	Window     struct {
		Start string `json:"start"`
		End   string `json:"end"`
	} `json:"window"`
	// CodeDelivery: "platform" returns the code in the receipt; "" or "notifier": the
	// cloud sends it when the order is loaded.
	CodeDelivery string `json:"code_delivery,omitempty"`
}

// OrderSpec builds a NewOrder for a window from a minute ago to window from now.
func OrderSpec(site, externalID, phone string, window time.Duration, delivery string, parcels ...Parcel) NewOrder {
	return OrderSpecAt(site, externalID, phone, time.Now().Add(-time.Minute), window, delivery, parcels...)
}

// OrderSpecAt builds a NewOrder for the window [start, start+window]: the same
// arguments build the same request, which an idempotent retry needs.
func OrderSpecAt(site, externalID, phone string, start time.Time, window time.Duration, delivery string, parcels ...Parcel) NewOrder {
	var o NewOrder
	o.ExternalID, o.Site, o.CodeDelivery, o.Parcels = externalID, site, delivery, parcels
	o.Recipient.Phone = phone
	start = start.UTC().Truncate(time.Second)
	o.Window.Start = start.Format(time.RFC3339)
	o.Window.End = start.Add(window).Format(time.RFC3339)
	return o
}

// Slot is one compartment of an order.
type Slot struct {
	Compartment int    `json:"compartment"`
	Zone        string `json:"zone"`
	Loaded      bool   `json:"loaded"`
}

// Order is the part of an order the demo and tests read.
type Order struct {
	ID         string    `json:"id"`
	ExternalID string    `json:"external_id"`
	Site       string    `json:"site"`
	State      string    `json:"state"`
	Zone       string    `json:"zone"`
	Slots      []Slot    `json:"slots"`
	CodeValid  bool      `json:"code_valid"`
	ExpiresAt  time.Time `json:"expires_at"`
	LoadedAt   time.Time `json:"loaded_at,omitzero"`
	ClosedAt   time.Time `json:"closed_at,omitzero"`
	Reason     string    `json:"reason,omitempty"`
	// ColdChain is set once the order was picked up or returned.
	ColdChain *ColdChain `json:"cold_chain,omitempty"`
}

// ColdChain is an order's cold-chain record as the edge measured it (known false: the
// edge reported none).
type ColdChain struct {
	Known          bool      `json:"known"`
	From           time.Time `json:"from"`
	To             time.Time `json:"to"`
	LimitC         float64   `json:"limit_c"`
	AboveSeconds   float64   `json:"above_seconds"`
	PeakC          *float64  `json:"peak_c"`
	MissingSeconds float64   `json:"missing_seconds"`
}

// Compartments returns the order's compartment numbers.
func (o Order) Compartments() []int {
	var out []int
	for _, s := range o.Slots {
		out = append(out, s.Compartment)
	}
	return out
}

// Receipt is the answer to an order create.
type Receipt struct {
	Order  Order `json:"order"`
	Pickup *struct {
		Code string `json:"code"`
		QR   string `json:"qr"`
	} `json:"pickup,omitempty"`
}

// CreateOrder places an order (platform) with an idempotency key.
func (a *API) CreateOrder(ctx context.Context, idem string, o NewOrder) (Receipt, error) {
	var r Receipt
	err := doJSONHeaders(ctx, "POST", a.URL+"/v1/orders", a.Key, map[string]string{"Idempotency-Key": idem}, o, &r)
	return r, err
}

// Order reads one order.
func (a *API) Order(ctx context.Context, id string) (Order, error) {
	var o Order
	err := a.do(ctx, "GET", "/v1/orders/"+url.PathEscape(id), nil, &o)
	return o, err
}

// Orders lists orders of a site (all states when state is "").
func (a *API) Orders(ctx context.Context, site, state string) ([]Order, error) {
	q := url.Values{"site": {site}}
	if state != "" {
		q.Set("state", state)
	}
	var out struct {
		Orders []Order `json:"orders"`
	}
	err := a.do(ctx, "GET", "/v1/orders?"+q.Encode(), nil, &out)
	return out.Orders, err
}

// WaitOrderState polls an order until it is in state.
func (a *API) WaitOrderState(ctx context.Context, id, state string, timeout time.Duration) (Order, error) {
	var o Order
	err := Eventually(ctx, timeout, "order "+id+" "+state, func() error {
		var err error
		if o, err = a.Order(ctx, id); err != nil {
			return err
		}
		if o.State != state {
			return fmt.Errorf("state %s", o.State)
		}
		return nil
	})
	return o, err
}

// LoadingCredential issues a driver's kiosk credential for a site (driver).
func (a *API) LoadingCredential(ctx context.Context, site string) (string, error) {
	var out struct {
		Credential string `json:"credential"`
	}
	err := a.do(ctx, "POST", "/v1/sites/"+url.PathEscape(site)+"/loading-credentials", nil, &out)
	return out.Credential, err
}

// Command is a command record.
type Command struct {
	ID    string `json:"id"`
	State string `json:"state"`
	Error string `json:"error,omitempty"`
}

// OpenCompartment asks the edge to open a door remotely (ops).
func (a *API) OpenCompartment(ctx context.Context, site string, n int, reason string) (Command, error) {
	var c Command
	err := a.do(ctx, "POST", fmt.Sprintf("/v1/sites/%s/compartments/%d/open", url.PathEscape(site), n),
		map[string]string{"reason": reason}, &c)
	return c, err
}

// Command reads a command.
func (a *API) Command(ctx context.Context, id string) (Command, error) {
	var c Command
	err := a.do(ctx, "GET", "/v1/commands/"+url.PathEscape(id), nil, &c)
	return c, err
}

// ReissueCode draws a new pickup code for a live order.
func (a *API) ReissueCode(ctx context.Context, order string) (Receipt, error) {
	var r Receipt
	err := a.do(ctx, "POST", "/v1/orders/"+url.PathEscape(order)+"/reissue-code", nil, &r)
	return r, err
}

// SetWebhook registers a platform's webhook endpoint (admin, or the platform itself) and
// returns the signing secret, shown once.
func (a *API) SetWebhook(ctx context.Context, platform, endpoint string) (string, error) {
	var out struct {
		Secret string `json:"secret"`
	}
	err := a.do(ctx, "PUT", "/v1/platforms/"+url.PathEscape(platform)+"/webhook", map[string]string{"url": endpoint}, &out)
	return out.Secret, err
}

// Backlog is the cloud's notification outbox as ops see it.
type Backlog struct {
	Pending   int `json:"pending"`
	Delivered int `json:"delivered"`
	Dead      int `json:"dead"`
}

// Backlog reads the notification outbox's counts (ops, admin).
func (a *API) Backlog(ctx context.Context) (Backlog, error) {
	var v struct {
		Stats Backlog `json:"stats"`
	}
	err := a.do(ctx, "GET", "/ops/api/backlog", nil, &v)
	return v.Stats, err
}
