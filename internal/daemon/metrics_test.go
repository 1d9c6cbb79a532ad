package daemon_test

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/larder-lockers/larder/internal/daemon"
)

// TestMetricsServer: the listener serves the handler at /metrics and nothing else, and
// an empty address turns it off.
func TestMetricsServer(t *testing.T) {
	s, err := daemon.ListenMetrics("127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "larder_x 1\n")
	}))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	for path, want := range map[string]int{"/metrics": 200, "/": 404, "/healthz": 404, "/metrics/x": 404, "/debug/pprof/": 404} {
		res, err := http.Get(s.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != want || want == 200 && string(body) != "larder_x 1\n" {
			t.Errorf("GET %s: %d %q, want %d", path, res.StatusCode, body, want)
		}
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve after Shutdown: %v", err)
	}

	off, err := daemon.ListenMetrics("", http.NotFoundHandler())
	if off != nil || err != nil || off.URL() != "" || off.Serve() != nil || off.Shutdown(context.Background()) != nil {
		t.Errorf("empty address: %v %v, want metrics off", off, err)
	}
}

// TestMetricsProfiles: ServeProfiles adds the runtime profiles next to /metrics.
func TestMetricsProfiles(t *testing.T) {
	s, err := daemon.ListenMetrics("127.0.0.1:0", http.NotFoundHandler())
	if err != nil {
		t.Fatal(err)
	}
	s.ServeProfiles()
	go s.Serve()
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/mutex", "/debug/pprof/block", "/debug/pprof/goroutine"} {
		res, err := http.Get(s.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || len(body) == 0 {
			t.Errorf("GET %s: %d, %d bytes; want a profile", path, res.StatusCode, len(body))
		}
	}
}
