package http

import (
	"context"
	_ "embed"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/larder-lockers/larder/cloud"
)

// OpenAPI is the API's OpenAPI 3.1 document, served at /v1/openapi.json. A test walks the
// router and checks that the document lists exactly the routes it serves.
//
//go:embed openapi.json
var OpenAPI []byte

// Options configure New.
type Options struct {
	// Service is the domain; *cloud.Service satisfies it. Required.
	Service Service
	// Logger; nil discards.
	Logger *slog.Logger
	// Registry gets the API and fleet metrics; nil: no metrics. The API does not serve
	// them (GET /metrics is 404 here): the exposition is fleet data, so the daemon serves
	// its registry on a listen address of its own (cloudd's metrics_addr).
	Registry prometheus.Registerer
	// Health reports whether the service is ready (store open, broker connected); nil
	// means always healthy.
	Health func(ctx context.Context) error
	// MQTTURL is the broker address edges should use, returned by provisioning.
	MQTTURL string
	// MaxBody bounds request bodies; zero means 64 KiB.
	MaxBody int64
}

// Server is the REST API: an http.Handler.
type Server struct {
	// One field per group of handlers, each the narrow interface those handlers call
	// (service.go); all are the same Options.Service.
	auth     Authenticator
	keys     Keys
	sites    Sites
	siteAdm  SiteAdmin
	commands Commands
	drivers  Drivers
	alarms   Alarms
	audits   AuditTrail
	reports  Reports
	webhooks Webhooks
	orders   Orders
	changes  OrderChanges

	log     *slog.Logger
	health  func(ctx context.Context) error
	mqttURL string
	maxBody int64
	router  chi.Router
	latency *prometheus.HistogramVec
}

// New builds the API's router.
func New(opt Options) *Server {
	svc := opt.Service
	s := &Server{auth: svc, keys: svc, sites: svc, siteAdm: svc, commands: svc, drivers: svc, alarms: svc,
		audits: svc, reports: svc, webhooks: svc, orders: svc, changes: svc,
		log: opt.Logger, health: opt.Health, mqttURL: opt.MQTTURL, maxBody: opt.MaxBody}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.maxBody <= 0 {
		s.maxBody = 64 << 10
	}
	if opt.Registry != nil {
		s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "larder_http_request_duration_seconds",
			Help:    "API latency by route pattern (never ids), method and status class.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"method", "route", "code"})
		opt.Registry.MustRegister(s.latency, newFleetCollector(svc))
	}
	r := chi.NewRouter()
	r.Use(s.observe)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, &cloud.Error{Code: cloud.ENotFound, Message: "no such route"})
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: errorJSON{Code: "method_not_allowed", Message: "method not allowed on this route"}})
	})
	r.Get("/healthz", s.healthz)
	r.Get("/v1/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(OpenAPI)
	})
	// The route tree is the API's outline. Flat paths (no sub-routers) keep route
	// patterns equal to the OpenAPI paths.
	r.Group(func(r chi.Router) {
		r.Use(s.authenticate)

		r.Post("/v1/keys", s.createKey)
		r.Get("/v1/keys", s.listKeys)
		r.Delete("/v1/keys/{key}", s.revokeKey)

		r.Post("/v1/sites", s.createSite)
		r.Get("/v1/sites", s.listSites)
		r.Get("/v1/sites/{site}", s.getSite)
		r.Patch("/v1/sites/{site}", s.updateSite)
		r.Post("/v1/sites/{site}/provision", s.provision)
		r.Get("/v1/sites/{site}/manifest", s.manifest)
		r.Post("/v1/sites/{site}/loading-credentials", s.loadingCredential)
		r.Post("/v1/sites/{site}/compartments/{number}/open", s.openCompartment)
		r.Post("/v1/sites/{site}/compartments/{number}/out-of-service", s.setService(false))
		r.Post("/v1/sites/{site}/compartments/{number}/in-service", s.setService(true))
		r.Post("/v1/sites/{site}/alarms/{alarm}/resolve", s.resolveAlarm)
		r.Get("/v1/commands/{command}", s.getCommand)
		r.Get("/v1/audit", s.audit)
		r.Get("/v1/reports/{report}", s.report)

		r.Put("/v1/platforms/{platform}/webhook", s.setWebhook)

		r.Post("/v1/orders", s.createOrder)
		r.Get("/v1/orders", s.listOrders)
		r.Get("/v1/orders/{order}", s.getOrder)
		r.Post("/v1/orders/{order}/cancel", s.cancelOrder)
		r.Post("/v1/orders/{order}/extend", s.extendOrder)
		r.Post("/v1/orders/{order}/reissue-code", s.reissueCode)
		r.Post("/v1/orders/{order}/redeliver", s.redeliverOrder)
		r.Post("/v1/orders/{order}/open", s.openForLoading)
	})
	s.router = r
	return s
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

// Router exposes the route tree, for the OpenAPI test (chi.Walk).
func (s *Server) Router() chi.Routes { return s.router }

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// observe records latency by route pattern (low cardinality: never ids) and turns a
// panic into a 500 in the API's error shape.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error("handler panic", "route", routePattern(r), "panic", p)
				if sw.status == 0 {
					s.writeError(sw, r, &cloud.Error{Code: cloud.EInternal, Message: "internal error"})
				}
			}
			if s.latency != nil {
				route := routePattern(r)
				if route == "" {
					route = "unmatched"
				}
				s.latency.WithLabelValues(r.Method, route, strconv.Itoa(sw.status/100)+"xx").Observe(time.Since(start).Seconds())
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

func routePattern(r *http.Request) string {
	if rc := chi.RouteContext(r.Context()); rc != nil {
		return rc.RoutePattern()
	}
	return ""
}

type principalKey struct{}

// authenticate checks the bearer API key and puts the principal in the context.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		// The scheme is case-insensitive (RFC 9110).
		scheme, key, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(key) == "" {
			s.writeError(w, r, &cloud.Error{Code: cloud.EUnauthorized, Message: "an API key is required: Authorization: Bearer <key>"})
			return
		}
		p, err := s.auth.Authenticate(r.Context(), strings.TrimSpace(key))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

func principal(r *http.Request) cloud.Principal {
	p, _ := r.Context().Value(principalKey{}).(cloud.Principal)
	return p
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if s.health != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.health(ctx); err != nil {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(err.Error() + "\n"))
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

// body decodes the JSON request body into v, enforcing the size limit and the media type.
func (s *Server) body(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return cloud.Invalid("Content-Type", "want application/json")
	}
	return decode(http.MaxBytesReader(nil, r.Body, s.maxBody), s.maxBody, v)
}

func (s *Server) bodyBytes(r *http.Request) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return nil, cloud.Invalid("Content-Type", "want application/json")
	}
	var raw rawBody
	if err := decode(http.MaxBytesReader(nil, r.Body, s.maxBody), s.maxBody, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// rawBody keeps the bytes of a syntactically valid JSON value for a second, strict
// decode.
type rawBody []byte

func (b *rawBody) UnmarshalJSON(data []byte) error {
	*b = append((*b)[:0], data...)
	return nil
}

func pathInt(r *http.Request, name string) (int, error) {
	n, err := strconv.Atoi(chi.URLParam(r, name))
	if err != nil || n < 1 || n > 99999 {
		return 0, cloud.Invalid(name, "want a positive integer")
	}
	return n, nil
}
