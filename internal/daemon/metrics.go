package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"time"
)

// MetricsServer serves /metrics on a listen address of its own, apart from the public
// one (the cloud's API, the edge's kiosk): the exposition names sites, compartments and
// queue depths, which is fleet data for whoever can reach it, so it belongs on an
// address that only the scraper reaches (by default loopback). It serves nothing else
// (every other path is 404) unless ServeProfiles added the runtime profiles.
type MetricsServer struct {
	ln  net.Listener
	mux *http.ServeMux
	srv *http.Server
}

// ListenMetrics binds addr and prepares to serve h (usually promhttp.HandlerFor the
// daemon's registry) at /metrics. An empty addr turns metrics off: it returns nil and
// no error, and the nil server's methods do nothing.
func ListenMetrics(addr string, h http.Handler) (*MetricsServer, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	return &MetricsServer{ln: ln, mux: mux, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 8 << 10}}, nil
}

// ServeProfiles adds Go's runtime profiles (net/http/pprof) under /debug/pprof/ on the
// metrics address, for finding where a loaded daemon spends its time and memory
// (`go tool pprof http://127.0.0.1:8490/debug/pprof/profile`). It also turns on the
// block and mutex profiles, which cost a little on every contended lock: for
// measurement runs, not by default. Call it before Serve; nothing when metrics are off.
func (s *MetricsServer) ServeProfiles() {
	if s == nil {
		return
	}
	runtime.SetBlockProfileRate(int(10 * time.Microsecond)) // a blocking event per 10 µs blocked
	runtime.SetMutexProfileFraction(100)
	s.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	s.mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	s.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	s.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	s.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	s.srv.WriteTimeout = 0 // a CPU profile or trace streams for its whole duration
}

// URL is the base URL of the listener ("http://127.0.0.1:8490", the real port when addr
// asked for port 0); "" when metrics are off.
func (s *MetricsServer) URL() string {
	if s == nil {
		return ""
	}
	return "http://" + s.ln.Addr().String()
}

// Serve serves until Shutdown or Close, then returns nil; nil at once when metrics are
// off.
func (s *MetricsServer) Serve() error {
	if s == nil {
		return nil
	}
	if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}

// Shutdown stops the listener and waits for scrapes in flight until ctx ends. It also
// closes a listener that was never served. Nil when metrics are off.
func (s *MetricsServer) Shutdown(ctx context.Context) error {
	if s == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	s.ln.Close() // Shutdown closes only listeners Serve was given
	return err
}

// MetricsAddr reads a metrics address given by the environment or a flag: "off" is the
// empty address (metrics off), which neither source can carry (Load skips empty values).
func MetricsAddr(v string) string {
	if v == "off" {
		return ""
	}
	return v
}
