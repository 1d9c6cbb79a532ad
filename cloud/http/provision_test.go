package http_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	pahopackets "github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/cloud/broker"
	lhttp "github.com/larder-lockers/larder/cloud/http"
)

// edgeLogins checks edge passwords against the service, as larder-cloud wires its
// embedded broker.
type edgeLogins struct{ svc *cloud.Service }

func (e edgeLogins) CheckEdge(ctx context.Context, site, password string) (bool, error) {
	_, ok := e.svc.AuthenticateEdge(ctx, site, password)
	return ok, nil
}

// TestProvisioningCarriesTheClientID: the provisioning response names the client id, and
// the embedded broker accepts the provisioned login with exactly that id and refuses it
// with any other as "identifier rejected".
func TestProvisioningCarriesTheClientID(t *testing.T) {
	f := newFixture(t)
	f.site("yard-1", 51.5)
	r := f.do("POST", "/v1/sites/yard-1/provision", "admin", nil)
	f.want(r, 200, "")
	id, _ := r.body["mqtt_client_id"].(string)
	if id != "larder-edge-yard-1" {
		t.Fatalf("mqtt_client_id = %q, want %q: %s", id, "larder-edge-yard-1", r.raw)
	}
	user, _ := r.body["mqtt_username"].(string)
	pass, _ := r.body["mqtt_password"].(string)

	cfg := broker.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Credentials = edgeLogins{f.svc}
	cfg.ServiceUser, cfg.ServicePassword = "larder.cloud", "service-secret"
	b, err := broker.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	for _, tc := range []struct {
		id   string
		want error
	}{
		{id, nil},
		{id + "-2", pahopackets.ErrorRefusedIDRejected},
		{"yard-1", pahopackets.ErrorRefusedIDRejected},
	} {
		o := paho.NewClientOptions().AddBroker(b.URL()).SetClientID(tc.id).SetUsername(user).SetPassword(pass).
			SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(5 * time.Second)
		c := paho.NewClient(o)
		tok := c.Connect()
		if !tok.WaitTimeout(5 * time.Second) {
			t.Fatalf("client id %q: connect timed out", tc.id)
		}
		if err := tok.Error(); !errors.Is(err, tc.want) {
			t.Errorf("client id %q: connect err = %v, want %v", tc.id, err, tc.want)
		}
		c.Disconnect(50)
	}
}

// TestProvisioningExampleMatchesResponse: the example of the Provisioning schema in
// openapi.json has exactly the fields a real provisioning response has, and lists every
// required one.
func TestProvisioningExampleMatchesResponse(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas struct {
				Provisioning struct {
					Properties map[string]json.RawMessage `json:"properties"`
					Required   []string                   `json:"required"`
					Examples   []map[string]any           `json:"examples"`
				} `json:"Provisioning"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(lhttp.OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	schema := doc.Components.Schemas.Provisioning
	if len(schema.Examples) != 1 {
		t.Fatalf("Provisioning has %d examples, want 1", len(schema.Examples))
	}
	f := newFixture(t)
	f.site("y1", 51.5)
	r := f.do("POST", "/v1/sites/y1/provision", "admin", nil)
	f.want(r, 200, "")
	keys := func(m map[string]any) []string {
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		slices.Sort(ks)
		return ks
	}
	got, example := keys(r.body), keys(schema.Examples[0])
	if !slices.Equal(got, example) {
		t.Errorf("response fields %v, example fields %v", got, example)
	}
	for _, k := range got {
		if _, ok := schema.Properties[k]; !ok {
			t.Errorf("response field %s is not in the schema", k)
		}
	}
	for _, k := range schema.Required {
		if _, ok := r.body[k]; !ok {
			t.Errorf("required field %s is missing from the response", k)
		}
	}
}
