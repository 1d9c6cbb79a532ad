package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// api is the cloud's REST API as a platform, an operator or an admin sees it: what
// cloud/http/openapi.json documents, nothing more.
type api struct {
	base string
	http *http.Client
}

func newAPI(base string, conns int) *api {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = conns
	tr.MaxIdleConnsPerHost = conns
	return &api{base: base, http: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// httpError is an answer other than the one the operation wants.
type httpError struct {
	Op     string
	Status int
	Body   string
}

func (e *httpError) Error() string { return fmt.Sprintf("%s: HTTP %d: %s", e.Op, e.Status, e.Body) }

// do sends body as JSON with key and decodes the answer into out when its status is want.
func (a *api) do(ctx context.Context, key, method, path string, hdr map[string]string, body, out any, want ...int) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return err
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	for _, w := range want {
		if res.StatusCode == w {
			if out == nil {
				return nil
			}
			if err := json.Unmarshal(data, out); err != nil {
				return fmt.Errorf("%s %s: decode: %w", method, path, err)
			}
			return nil
		}
	}
	return &httpError{Op: method + " " + path, Status: res.StatusCode, Body: string(bytes.TrimSpace(data))}
}

// provisioning is POST /v1/sites/{site}/provision's answer.
type provisioning struct {
	Site         string `json:"site"`
	SiteKey      string `json:"site_key"`
	MQTTUsername string `json:"mqtt_username"`
	MQTTPassword string `json:"mqtt_password"`
	MQTTClientID string `json:"mqtt_client_id"`
	MQTTURL      string `json:"mqtt_url"`
}

func (a *api) createSite(ctx context.Context, admin, id string) error {
	return a.do(ctx, admin, "POST", "/v1/sites", nil, map[string]any{"id": id, "name": "load " + id}, nil, 201)
}

func (a *api) provision(ctx context.Context, admin, site string) (provisioning, error) {
	var p provisioning
	err := a.do(ctx, admin, "POST", "/v1/sites/"+site+"/provision", nil, nil, &p, 200)
	return p, err
}

func (a *api) createKey(ctx context.Context, admin, role, subject string) (string, error) {
	var k struct {
		Key string `json:"key"`
	}
	err := a.do(ctx, admin, "POST", "/v1/keys", nil, map[string]any{"role": role, "subject": subject}, &k, 201, 200)
	if err == nil && k.Key == "" {
		err = fmt.Errorf("POST /v1/keys: no key in the answer")
	}
	return k.Key, err
}

// orderSpec is an OrderCreate body.
type orderSpec struct {
	ExternalID   string         `json:"external_id"`
	Site         string         `json:"site"`
	Recipient    map[string]any `json:"recipient"`
	Parcels      []parcel       `json:"parcels"`
	Window       window         `json:"window"`
	CodeDelivery string         `json:"code_delivery"`
}

type parcel struct {
	Size string `json:"size"`
	Zone string `json:"zone"`
}

type window struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// order is the part of an Order the run checks.
type order struct {
	ID    string `json:"id"`
	Site  string `json:"site"`
	State string `json:"state"`
	Slots []struct {
		Compartment int    `json:"compartment"`
		Generation  uint64 `json:"generation"`
	} `json:"slots"`
}

type receipt struct {
	Order  order `json:"order"`
	Pickup *struct {
		Code string `json:"code"`
	} `json:"pickup"`
}

// createOrder is POST /v1/orders with an idempotency key: a retry after a lost answer
// (the balancer's, when a replica dies mid-answer) gets the same order (200) instead of
// a second one, but without its code, which a receipt carries once: the code is then
// reissued (POST .../reissue-code), as a platform would.
func (a *api) createOrder(ctx context.Context, platform, idem string, o orderSpec) (receipt, error) {
	var rc receipt
	err := a.do(ctx, platform, "POST", "/v1/orders", map[string]string{"Idempotency-Key": idem}, o, &rc, 201, 200)
	if err == nil && rc.Pickup == nil && o.CodeDelivery == "platform" && rc.Order.ID != "" {
		var again receipt
		if err = a.do(ctx, platform, "POST", "/v1/orders/"+rc.Order.ID+"/reissue-code", nil, nil, &again, 200); err == nil {
			rc.Pickup = again.Pickup
		}
	}
	return rc, err
}

func (a *api) order(ctx context.Context, key, id string) (order, error) {
	var o order
	err := a.do(ctx, key, "GET", "/v1/orders/"+id, nil, nil, &o, 200)
	return o, err
}

// command is the part of a Command the run checks.
type command struct {
	ID    string `json:"id"`
	State string `json:"state"`
	Error string `json:"error"`
}

func (a *api) openCompartment(ctx context.Context, ops, site string, n int) (command, error) {
	var c command
	err := a.do(ctx, ops, "POST", fmt.Sprintf("/v1/sites/%s/compartments/%d/open", site, n), nil,
		map[string]string{"reason": "load test"}, &c, 202)
	return c, err
}

func (a *api) command(ctx context.Context, ops, id string) (command, error) {
	var c command
	err := a.do(ctx, ops, "GET", "/v1/commands/"+id, nil, nil, &c, 200)
	return c, err
}

func (a *api) healthz(ctx context.Context) error {
	return a.do(ctx, "", "GET", "/healthz", nil, nil, nil, 200)
}
