package http_test

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/larder-lockers/larder/cloud"
	lhttp "github.com/larder-lockers/larder/cloud/http"
)

// TestOpenAPIMatchesRouter walks the router and checks that openapi.json documents
// exactly the routes it serves, method by method, and that every documented operation
// declares its error responses in the one error shape.
func TestOpenAPIMatchesRouter(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(lhttp.OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Errorf("openapi %q, want 3.1.x", doc.OpenAPI)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method, raw := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
			var op struct {
				Responses map[string]json.RawMessage `json:"responses"`
			}
			json.Unmarshal(raw, &op)
			if strings.HasPrefix(path, "/v1/") && path != "/v1/openapi.json" {
				for _, code := range []string{"400", "401", "403", "default"} {
					if _, ok := op.Responses[code]; !ok {
						t.Errorf("%s %s: no %s response", method, path, code)
					}
				}
			}
		}
	}
	api := lhttp.New(lhttp.Options{Service: cloud.New(cloud.Options{})})
	var served []string
	err := chi.Walk(api.Router(), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		served = append(served, method+" "+route)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(documented)
	sort.Strings(served)
	if diff := cmp.Diff(served, documented); diff != "" {
		t.Errorf("router (-) and openapi.json (+) disagree:\n%s", diff)
	}
}
