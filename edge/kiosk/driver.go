package kiosk

import (
	"context"
	"net/http"
	"strings"

	"github.com/larder-lockers/larder/edge"
)

type ctxKey struct{}

// driverAuth admits requests with a live kiosk token and puts the driver id in the
// context.
func (s *server) driverAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || tok == "" {
			writeErr(w, s.log, &edge.Error{Code: edge.CodeBadCredential, Op: "driver", Message: "Please scan your driver code.", MessageZH: "请扫描配送员码。"})
			return
		}
		driver, err := s.cfg.Driver.Driver(tok)
		if err != nil {
			writeErr(w, s.log, err)
			return
		}
		ctx := context.WithValue(r.Context(), ctxKey{}, [2]string{driver, tok})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func driverOf(r *http.Request) (driver, token string) {
	v, _ := r.Context().Value(ctxKey{}).([2]string)
	return v[0], v[1]
}

func (s *server) driverLogin(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Credential string `json:"credential"`
	}
	if err := decode(w, r, &req); err != nil {
		writeErr(w, s.log, err)
		return
	}
	tok, driver, err := s.cfg.Driver.DriverLogin(req.Credential)
	if err != nil {
		writeErr(w, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"token": tok, "driver": driver})
}

func (s *server) driverLogout(w http.ResponseWriter, r *http.Request) {
	_, tok := driverOf(r)
	if err := s.cfg.Driver.DriverLogout(tok); err != nil {
		writeErr(w, s.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) manifest(w http.ResponseWriter, r *http.Request) {
	orders, err := s.cfg.Driver.Manifest()
	if err != nil {
		writeErr(w, s.log, err)
		return
	}
	if orders == nil {
		orders = []edge.ManifestOrder{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"orders": orders})
}

type doorRequest struct {
	Order       string `json:"order"`
	Compartment int    `json:"compartment"`
	Reason      string `json:"reason"`
}

func (s *server) doorRequest(w http.ResponseWriter, r *http.Request, needCompartment bool) (doorRequest, bool) {
	var req doorRequest
	if err := decode(w, r, &req); err != nil {
		writeErr(w, s.log, err)
		return req, false
	}
	if req.Order == "" || len(req.Order) > 128 || needCompartment && req.Compartment < 1 {
		writeErr(w, s.log, errBadBody)
		return req, false
	}
	return req, true
}

func (s *server) driverOpen(w http.ResponseWriter, r *http.Request) {
	req, ok := s.doorRequest(w, r, true)
	if !ok {
		return
	}
	driver, _ := driverOf(r)
	door, err := s.cfg.Driver.DriverOpen(r.Context(), driver, req.Order, req.Compartment)
	if err != nil {
		writeErr(w, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"door": door})
}

func (s *server) driverProblem(w http.ResponseWriter, r *http.Request) {
	req, ok := s.doorRequest(w, r, true)
	if !ok {
		return
	}
	driver, _ := driverOf(r)
	door, err := s.cfg.Driver.DriverProblem(r.Context(), driver, req.Order, req.Compartment, req.Reason)
	if err != nil {
		writeErr(w, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"door": door})
}

func (s *server) driverReturn(w http.ResponseWriter, r *http.Request) {
	req, ok := s.doorRequest(w, r, false)
	if !ok {
		return
	}
	driver, _ := driverOf(r)
	doors, err := s.cfg.Driver.DriverReturn(r.Context(), driver, req.Order)
	if err != nil {
		writeErr(w, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"doors": doors})
}
