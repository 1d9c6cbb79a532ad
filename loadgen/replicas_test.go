package loadgen

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestHAConfigValidate(t *testing.T) {
	base := DefaultConfig()
	base.CloudBin, base.Mosquitto = "bin/larder-cloud", "/usr/sbin/mosquitto"
	ok := DefaultHAConfig()
	ok.Store = "postgres://postgres@127.0.0.1:5432/larder"
	tests := []struct {
		name string
		edit func(*Config, *HAConfig)
		want string // "" valid
	}{
		{"valid", func(*Config, *HAConfig) {}, ""},
		{"one replica", func(_ *Config, h *HAConfig) { h.Replicas = 1 }, "replicas must be"},
		{"not postgres", func(_ *Config, h *HAConfig) { h.Store = "bolt:///tmp/x" }, "postgres://"},
		{"remote store", func(_ *Config, h *HAConfig) { h.Store = "postgres://db.example.com/larder" }, "not a loopback"},
		{"remote store allowed", func(c *Config, h *HAConfig) { c.AllowRemote = true; h.Store = "postgres://db.example.com/larder" }, ""},
		{"no mosquitto", func(c *Config, _ *HAConfig) { c.Mosquitto = "" }, "external broker"},
		{"no cloud binary", func(c *Config, _ *HAConfig) { c.CloudBin = "" }, "-start-cloud"},
		{"zero target", func(_ *Config, h *HAConfig) { h.MaxTakeover = 0 }, "positive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, h := base, ok
			tc.edit(&c, &h)
			err := h.Validate(c)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// backend is a replica stand-in that counts its requests and answers with its name.
func backend(t *testing.T, name string, hits *atomic.Int64) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Backend", name)
		w.WriteHeader(http.StatusCreated)
		w.Write(append([]byte(name+":"), body...))
	}))
	t.Cleanup(s.Close)
	return s
}

func TestBalancerRoundRobinAndFailover(t *testing.T) {
	var a, b atomic.Int64
	sa, sb := backend(t, "a", &a), backend(t, "b", &b)
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close() // a replica that died: connection refused
	lb, err := newBalancer([]*replica{{cloudProc: &cloudProc{api: sa.URL}}, {cloudProc: &cloudProc{api: gone.URL}},
		{cloudProc: &cloudProc{api: sb.URL}}}, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer lb.close()
	cli := &http.Client{Timeout: 5 * time.Second}
	post := func() (string, int) {
		t.Helper()
		res, err := cli.Post(lb.url+"/v1/orders", "application/json", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return string(body), res.StatusCode
	}
	for range 10 {
		body, code := post()
		if code != http.StatusCreated || (body != "a:x" && body != "b:x") {
			t.Fatalf("answer %d %q", code, body)
		}
	}
	if a.Load() == 0 || b.Load() == 0 || a.Load()+b.Load() != 10 {
		t.Fatalf("requests a=%d b=%d, want 10 spread over both live replicas", a.Load(), b.Load())
	}
	lb.markDead(0)
	before := a.Load()
	for range 4 {
		if body, _ := post(); body != "b:x" {
			t.Fatalf("a dead replica answered: %q", body)
		}
	}
	if a.Load() != before {
		t.Fatal("a replica marked dead still got requests")
	}
	lb.markDead(2)
	if _, code := post(); code != http.StatusBadGateway {
		t.Fatalf("no live replica: status %d, want 502", code)
	}
}
