package web

import (
	"context"
	"embed"
	"encoding/json"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/larder-lockers/larder/cloud"
	lhttp "github.com/larder-lockers/larder/cloud/http"
	"github.com/larder-lockers/larder/cloud/notify"
)

// Authenticator turns an API key into a principal.
type Authenticator interface {
	Authenticate(ctx context.Context, key string) (cloud.Principal, error)
}

// Fleet is the ops view of the sites, pushed by the stream.
type Fleet interface {
	ListSites(ctx context.Context, p cloud.Principal) ([]cloud.SiteSummary, error)
	Fleet(ctx context.Context, p cloud.Principal, f cloud.FleetFilter) (cloud.FleetMatch, error)
	GetSite(ctx context.Context, p cloud.Principal, id string) (cloud.SiteDetail, error)
}

// Orders is what the resident page reads and changes, once the pickup code has been
// checked against the order's digest with the site key.
type Orders interface {
	GetOrder(ctx context.Context, p cloud.Principal, id string) (cloud.Order, error)
	ExtendOrder(ctx context.Context, p cloud.Principal, id string, d time.Duration) (cloud.Order, error)
	SiteKey(ctx context.Context, site string) ([]byte, error)
}

// Service is everything the pages need from the cloud; *cloud.Service satisfies it.
type Service interface {
	Authenticator
	Fleet
	Orders
	Limits
	Policy() cloud.Policy
}

// Limits counts the resident page's wrong codes in fixed windows. *cloud.Service keeps
// the counts in its store, so that every replica behind a load balancer sees the same
// ones, and the store's clock of the windows is the Service's.
type Limits interface {
	FailureWait(ctx context.Context, limits ...cloud.FailureLimit) (time.Duration, error)
	CountFailure(ctx context.Context, window time.Duration, keys ...string) error
}

// Reassigner moves one compartment of an order to another free one after a driver reported
// a problem with it (jammed, occupied, dirty, too small), taking the bad one out of service
// unless it is only too small. *cloud.Service implements it; with a Service that does not,
// the driver's problem button answers 501 and the page points to the kiosk.
type Reassigner interface {
	ReassignSlot(ctx context.Context, p cloud.Principal, order string, compartment int, reason string) (cloud.Order, error)
}

// Options configure New. Zero fields take the defaults given.
type Options struct {
	// Logger; nil discards. Keys, codes and cookies are never logged.
	Logger *slog.Logger
	// Now is the clock of sessions; nil means time.Now. (The wrong-code windows run on
	// the Service's clock.)
	Now func() time.Time
	// Backlog is the notification outbox, shown on the ops dashboard; nil hides it.
	Backlog notify.Backlog
	// Reassigner handles the driver's "report a problem"; nil means the Service if it
	// implements Reassigner, else the button answers 501.
	Reassigner Reassigner
	// PollEvery is how often the stream re-reads the fleet while someone watches; zero
	// means 2 s. Only changes are sent.
	PollEvery time.Duration
	// Heartbeat is how often an idle stream sends a comment line, so that proxies keep it
	// open; zero means 15 s.
	Heartbeat time.Duration
	// SessionTTL is the lifetime of the ops session cookie; zero means 12 h.
	SessionTTL time.Duration
	// SecureCookies marks cookies Secure even on plain HTTP requests (a cloud behind a TLS
	// terminating proxy). Requests over TLS always get Secure cookies.
	SecureCookies bool
	// ClientIP returns the address the resident rate limit counts by; nil means the host
	// of RemoteAddr. Behind a proxy, return its trusted forwarded address here.
	ClientIP func(r *http.Request) string
	// Resident page rules; see ResidentPolicy.
	Resident ResidentPolicy
	// Registry gets the pages' metrics (larder_web_*); nil means none.
	Registry prometheus.Registerer
}

// ResidentPolicy bounds what the resident page allows.
type ResidentPolicy struct {
	// MaxFailuresPerOrder wrong codes within Window lock an order's page for the rest of
	// the window; zero means 5 in 15 minutes.
	MaxFailuresPerOrder int
	// MaxFailuresPerIP wrong codes within Window lock one client address; zero means 30.
	MaxFailuresPerIP int
	// Window is the failure-counting window; zero means 15 minutes.
	Window time.Duration
	// ExtendStep is how much one tap on "extend" adds; zero means 12 h.
	ExtendStep time.Duration
	// MaxExtended caps the total extension of an order (outage extensions included) that
	// a resident may reach on their own; zero means 24 h. The service's food-safety cap
	// applies in any case.
	MaxExtended time.Duration
}

// Handler serves the pages, their assets and their non-/v1 endpoints. See doc.go for the
// routes and Mount for the prefixes it owns.
type Handler struct {
	svc     Service
	re      Reassigner
	backlog notify.Backlog
	log     *slog.Logger
	now     func() time.Time
	opt     Options
	mux     *http.ServeMux
	hub     *hub
	met     *metrics
}

//go:embed assets
var assetFS embed.FS

// Prefixes are the URL path prefixes the handler owns; the rest of the cloud (the /v1
// API, /healthz, /metrics) is someone else's.
var Prefixes = []string{"/ops/", "/driver/", "/r/", "/assets/"}

// New builds the handler. Call Close on shutdown: it ends the open event streams, which
// http.Server.Shutdown would otherwise wait for.
func New(svc Service, opt Options) *Handler {
	h := &Handler{svc: svc, re: opt.Reassigner, backlog: opt.Backlog, log: opt.Logger, now: opt.Now, opt: opt}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.re == nil {
		h.re, _ = svc.(Reassigner)
	}
	if h.opt.PollEvery <= 0 {
		h.opt.PollEvery = 2 * time.Second
	}
	if h.opt.Heartbeat <= 0 {
		h.opt.Heartbeat = 15 * time.Second
	}
	if h.opt.SessionTTL <= 0 {
		h.opt.SessionTTL = 12 * time.Hour
	}
	rp := &h.opt.Resident
	if rp.MaxFailuresPerOrder <= 0 {
		rp.MaxFailuresPerOrder = 5
	}
	if rp.MaxFailuresPerIP <= 0 {
		rp.MaxFailuresPerIP = 30
	}
	if rp.Window <= 0 {
		rp.Window = 15 * time.Minute
	}
	if rp.ExtendStep <= 0 {
		rp.ExtendStep = 12 * time.Hour
	}
	if rp.MaxExtended <= 0 {
		rp.MaxExtended = 24 * time.Hour
	}
	h.met = newMetrics(opt.Registry)
	h.hub = newHub(h)

	m := http.NewServeMux()
	m.HandleFunc("GET /ops/{$}", h.page("ops.html"))
	m.HandleFunc("POST /ops/session", h.login)
	m.HandleFunc("DELETE /ops/session", h.logout)
	m.HandleFunc("GET /ops/stream", h.stream)
	m.HandleFunc("GET /ops/api/fleet", h.bearer(h.getFleet, cloud.RoleOps, cloud.RoleAdmin))
	m.HandleFunc("GET /ops/api/fleet/map", h.bearer(h.getFleetMap, cloud.RoleOps, cloud.RoleAdmin))
	m.HandleFunc("GET /ops/api/backlog", h.bearer(h.getBacklog, cloud.RoleOps, cloud.RoleAdmin))
	m.HandleFunc("POST /ops/api/backlog/requeue", h.bearer(h.requeue, cloud.RoleOps, cloud.RoleAdmin))

	m.HandleFunc("GET /driver/{$}", h.page("driver.html"))
	m.HandleFunc("POST /driver/api/orders/{order}/problem", h.bearer(h.problem, cloud.RoleDriver, cloud.RoleOps, cloud.RoleAdmin))

	m.HandleFunc("GET /r/{order}", h.page("resident.html"))
	m.HandleFunc("GET /r/api/orders/{order}", h.residentOrder)
	m.HandleFunc("POST /r/api/orders/{order}/extend", h.residentExtend)

	sub, _ := fs.Sub(assetFS, "assets")
	files := http.FileServerFS(sub)
	m.Handle("GET /assets/", http.StripPrefix("/assets/", noDirs(files)))
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		codeError(w, cloud.ENotFound, "no such page")
	})
	h.mux = m
	return h
}

// Mount registers the handler on mux under Prefixes. cloudd serves the /v1 API at "/" on
// the same mux; the longer patterns win.
func (h *Handler) Mount(mux *http.ServeMux) {
	for _, p := range Prefixes {
		mux.Handle(p, h)
	}
}

// Close ends every open event stream. It is idempotent.
func (h *Handler) Close() { h.hub.close() }

// ServeHTTP serves the pages with security headers on every response.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	// Everything is same-origin: no inline script, no external asset, no framing.
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	// The resident URL carries the code in its fragment, which browsers never send; the
	// order id in the path is kept from other sites all the same.
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	h.mux.ServeHTTP(w, r)
}

// page serves one of the HTML pages. The pages are the same for everyone (data comes
// from the API), so they may be cached briefly.
func (h *Handler) page(name string) http.HandlerFunc {
	body, err := assetFS.ReadFile("assets/" + name)
	if err != nil {
		panic("web: missing embedded page " + name) // a build without its assets
	}
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(body)
	}
}

// noDirs refuses directory listings of the assets.
func noDirs(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") {
			codeError(w, cloud.ENotFound, "no such asset")
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		next.ServeHTTP(w, r)
	})
}

type principalKey struct{}

// bearer authenticates an API key from the Authorization header (as the /v1 API does)
// and checks its role.
func (h *Handler) bearer(next http.HandlerFunc, roles ...cloud.Role) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := h.authHeader(w, r)
		if !ok {
			return
		}
		if !hasRole(p, roles) {
			codeError(w, cloud.EForbidden, "the "+string(p.Role)+" role may not do this")
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	}
}

func (h *Handler) authHeader(w http.ResponseWriter, r *http.Request) (cloud.Principal, bool) {
	key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || strings.TrimSpace(key) == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="larder"`)
		codeError(w, cloud.EUnauthorized, "an API key is required: Authorization: Bearer <key>")
		return cloud.Principal{}, false
	}
	p, err := h.svc.Authenticate(r.Context(), strings.TrimSpace(key))
	if err != nil {
		h.domainError(w, r, err)
		return cloud.Principal{}, false
	}
	return p, true
}

func hasRole(p cloud.Principal, roles []cloud.Role) bool {
	for _, r := range roles {
		if p.Role == r {
			return true
		}
	}
	return false
}

func principal(r *http.Request) cloud.Principal {
	p, _ := r.Context().Value(principalKey{}).(cloud.Principal)
	return p
}

// domainError writes a domain error in the API's error shape; internal errors are logged
// here, once, and their cause is not shown.
func (h *Handler) domainError(w http.ResponseWriter, r *http.Request, err error) {
	e := cloud.AsError(err)
	// The /v1 API's table: the pages and the API answer a code with the same status.
	status := lhttp.StatusOf(e.Code)
	msg := e.Message
	if status >= 500 {
		h.log.Error("web request failed", "method", r.Method, "path", routeOf(r), "err", err)
		if e.Code == cloud.EInternal {
			msg = "internal error"
		}
	}
	if e.Code == cloud.EUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="larder"`)
	}
	writeJSON(w, status, errorBody{Error: errorJSON{Code: string(e.Code), Message: msg, Field: e.Field}})
}

// routeOf is the request's route pattern: never ids or codes.
func routeOf(r *http.Request) string {
	if r.Pattern != "" {
		return r.Pattern
	}
	return "unmatched"
}

type errorBody struct {
	Error errorJSON `json:"error"`
}

type errorJSON struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// codeError writes a domain code the handler decided on itself, with the table's status.
func codeError(w http.ResponseWriter, c cloud.Code, msg string) {
	writeError(w, lhttp.StatusOf(c), string(c), msg)
}

// writeError writes an error with the status given: for the pages' own codes
// (wrong_code, locked, not_implemented, and why an extension is not offered).
func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, errorBody{Error: errorJSON{Code: code, Message: msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v) // a failed write means the client left
}

// decodeBody reads a small JSON body strictly.
func decodeBody(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return cloud.Invalid("Content-Type", "want application/json")
	}
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 8<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return cloud.Invalid("body", "want a small JSON object")
	}
	return nil
}

func (h *Handler) clientIP(r *http.Request) string {
	if h.opt.ClientIP != nil {
		return h.opt.ClientIP(r)
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
