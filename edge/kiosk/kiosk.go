package kiosk

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/larder-lockers/larder/edge"
	"github.com/larder-lockers/larder/protocol"
)

//go:embed web
var webFS embed.FS

// MaxBody is the largest request body accepted, in bytes.
const MaxBody = 4 << 10

// Resident is what the resident's pages need from the domain.
type Resident interface {
	Info() (site string, lockedSeconds int) // lockedSeconds: the keypad's wait, 0 for none
	// SiteProfile is the site's name and time zone, as the cloud last described them.
	SiteProfile() (protocol.SiteProfile, error)
	Pickup(ctx context.Context, code, factor string, acceptCompromised bool) (edge.PickupResult, error)
	// PickupQR opens the order of a scanned device-bound QR payload, without the phone
	// digits and even while the keypad waits.
	PickupQR(ctx context.Context, payload string, acceptCompromised bool) (edge.PickupResult, error)
	SessionStatus(id string) ([]edge.Door, bool, error)
	// Help raises a help alert; raised is false when one was raised moments ago and
	// staff already know.
	Help(ctx context.Context, where string) (raised bool, err error)
}

// Driver is what driver mode needs from the domain.
type Driver interface {
	DriverLogin(credential string) (token, driver string, err error)
	Driver(token string) (string, error)
	DriverLogout(token string) error
	Manifest() ([]edge.ManifestOrder, error)
	DriverOpen(ctx context.Context, driver, order string, compartment int) (edge.Door, error)
	DriverProblem(ctx context.Context, driver, order string, compartment int, reason string) (edge.Door, error)
	DriverReturn(ctx context.Context, driver, order string) ([]edge.Door, error)
}

// Config configures the handler. Resident and Driver are required.
type Config struct {
	Resident Resident
	Driver   Driver
	// Health reports nil while the edge can serve people; its error text is the 503 body.
	Health func() error
	Log    *slog.Logger
}

type server struct {
	cfg Config
	log *slog.Logger
}

// New returns the kiosk's HTTP handler.
func New(cfg Config) http.Handler {
	s := &server{cfg: cfg, log: cfg.Log}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	r := chi.NewRouter()
	r.Use(headers)
	r.Get("/healthz", s.healthz)
	r.Route("/api", func(r chi.Router) {
		r.Use(noStore)
		r.Get("/info", s.info)
		r.Post("/pickup", s.pickup)
		r.Get("/sessions/{session}", s.session)
		r.Post("/help", s.help)
		r.Route("/driver", func(r chi.Router) {
			r.Post("/login", s.driverLogin)
			r.Group(func(r chi.Router) {
				r.Use(s.driverAuth)
				r.Get("/manifest", s.manifest)
				r.Post("/open", s.driverOpen)
				r.Post("/problem", s.driverProblem)
				r.Post("/return", s.driverReturn)
				r.Post("/logout", s.driverLogout)
			})
		})
		r.NotFound(func(w http.ResponseWriter, r *http.Request) {
			writeErr(w, s.log, &edge.Error{Code: edge.CodeNotFound, Op: "kiosk", Message: "No such page.", MessageZH: "没有这个页面。"})
		})
	})
	sub, err := fs.Sub(webFS, "web")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory
	}
	files := http.FileServerFS(sub)
	r.Get("/*", func(w http.ResponseWriter, r *http.Request) {
		// The page's node tests are embedded with it but are not part of the page.
		if strings.HasPrefix(r.URL.Path, "/test/") || strings.HasPrefix(r.URL.Path, "/.") {
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})
	return r
}

// headers keep the page self-contained: no external assets, no framing.
func headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

func noStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// codeTooLarge is the kiosk's own error code, for a body over MaxBody: only the HTTP
// boundary knows that requests have a size, so the domain has no such code.
const codeTooLarge edge.Code = "too_large"

// statusOf is the one table from domain error codes to HTTP statuses.
var statusOf = map[edge.Code]int{
	edge.CodeBadRequest:      http.StatusBadRequest,
	codeTooLarge:             http.StatusRequestEntityTooLarge,
	edge.CodeWrongCode:       http.StatusUnauthorized,
	edge.CodeQRRefused:       http.StatusUnauthorized,
	edge.CodeBadCredential:   http.StatusUnauthorized,
	edge.CodeLocked:          http.StatusLocked,
	edge.CodeExpired:         http.StatusGone,
	edge.CodeCompromised:     http.StatusConflict,
	edge.CodeAlreadyPickedUp: http.StatusConflict,
	edge.CodeNotReady:        http.StatusConflict,
	edge.CodeNoCompartment:   http.StatusConflict,
	edge.CodeConflict:        http.StatusConflict,
	edge.CodeNotFound:        http.StatusNotFound,
	edge.CodeHardware:        http.StatusServiceUnavailable,
	edge.CodeInternal:        http.StatusInternalServerError,
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeErr answers with the contract's error body; internal errors are logged here, once.
func writeErr(w http.ResponseWriter, log *slog.Logger, err error) {
	var e *edge.Error
	if !errors.As(err, &e) {
		e = &edge.Error{Code: edge.CodeInternal, Message: "Something went wrong. Please try again or press Help.",
			MessageZH: "系统出错，请重试或按求助键。", Err: err}
	}
	status, ok := statusOf[e.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	if status >= 500 {
		log.Error("kiosk request failed", "code", string(e.Code), "op", e.Op, "err", e.Err)
	}
	body := map[string]any{}
	for k, v := range e.Extra {
		body[k] = v
	}
	body["error"], body["message"], body["message_zh"] = string(e.Code), e.Message, e.MessageZH
	writeJSON(w, status, body)
}

var (
	errBadBody  = &edge.Error{Code: edge.CodeBadRequest, Op: "kiosk", Message: "The request was not understood.", MessageZH: "无法识别该请求。"}
	errTooLarge = &edge.Error{Code: codeTooLarge, Op: "kiosk", Message: "The request is too large.", MessageZH: "请求内容过长。"}
)

// decode reads a JSON body of at most MaxBody bytes into v. An empty body decodes as {}.
// The whole body is read before decoding, so a body over the limit is too_large even
// when it starts with a complete JSON value.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return errTooLarge
		}
		return errBadBody
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return errBadBody
	}
	if dec.More() {
		return errBadBody
	}
	return nil
}

func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if s.cfg.Health != nil {
		if err := s.cfg.Health(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, err.Error()+"\n")
			return
		}
	}
	io.WriteString(w, "ok\n")
}
