package web

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/cloud/notify"
)

// Ops endpoints outside /v1: the notification backlog (the outbox is not part of the
// public API) and the driver's problem report.

// BacklogView is the answer of GET /ops/api/backlog.
type BacklogView struct {
	Stats notify.Stats `json:"stats"`
	Dead  []DeadLetter `json:"dead"`
}

// DeadLetter is a notification that gave up, without its target (a phone number for SMS)
// and its data (it may hold a pickup code).
type DeadLetter struct {
	ID        string         `json:"id"`
	Kind      notify.Kind    `json:"kind"`
	Channel   notify.Channel `json:"channel"`
	Order     string         `json:"order,omitempty"`
	Site      string         `json:"site,omitempty"`
	Attempts  int            `json:"attempts"`
	LastError string         `json:"last_error,omitempty"`
	Created   string         `json:"created"`
	Done      string         `json:"done,omitempty"`
}

func (h *Handler) getBacklog(w http.ResponseWriter, r *http.Request) {
	if h.backlog == nil {
		codeError(w, cloud.ENotFound, "this cloud has no notification outbox")
		return
	}
	limit := 50
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			h.domainError(w, r, cloud.Invalid("limit", "want 1 to 500"))
			return
		}
		limit = n
	}
	st, err := h.backlog.Stats(r.Context())
	if err != nil {
		h.domainError(w, r, err)
		return
	}
	dead, err := h.backlog.DeadLetters(r.Context(), limit)
	if err != nil {
		h.domainError(w, r, err)
		return
	}
	out := BacklogView{Stats: st, Dead: []DeadLetter{}}
	for _, n := range dead {
		d := DeadLetter{ID: n.ID, Kind: n.Kind, Channel: n.Channel, Order: n.Order, Site: n.Site, Attempts: n.Attempts,
			LastError: n.LastError, Created: n.Created.UTC().Format("2006-01-02T15:04:05Z")}
		if !n.Done.IsZero() {
			d.Done = n.Done.UTC().Format("2006-01-02T15:04:05Z")
		}
		out.Dead = append(out.Dead, d)
	}
	writeJSON(w, http.StatusOK, out)
}

// requeue makes a dead letter pending again: POST /ops/api/backlog/requeue {"id": ...}
// (ids contain slashes, so they travel in the body).
func (h *Handler) requeue(w http.ResponseWriter, r *http.Request) {
	if h.backlog == nil {
		codeError(w, cloud.ENotFound, "this cloud has no notification outbox")
		return
	}
	var in struct {
		ID string `json:"id"`
	}
	if err := decodeBody(r, &in); err != nil {
		h.domainError(w, r, err)
		return
	}
	if in.ID == "" || len(in.ID) > 200 {
		h.domainError(w, r, cloud.Invalid("id", "required"))
		return
	}
	if err := h.backlog.Requeue(r.Context(), in.ID, h.now()); err != nil {
		if errors.Is(err, notify.ErrNotFound) {
			h.domainError(w, r, &cloud.Error{Code: cloud.ENotFound, Field: "id", Message: "no such dead letter"})
			return
		}
		h.domainError(w, r, err)
		return
	}
	p := principal(r)
	h.log.Info("notification requeued", "subject", p.Subject, "notification", in.ID)
	w.WriteHeader(http.StatusNoContent)
}

// problemIn is the body of POST /driver/api/orders/{order}/problem.
type problemIn struct {
	Compartment int    `json:"compartment"`
	Reason      string `json:"reason"`
}

// ProblemReasons are what a driver can report about a compartment.
var ProblemReasons = []string{"jammed", "occupied", "dirty", "too_small", "faulty"}

func (h *Handler) problem(w http.ResponseWriter, r *http.Request) {
	var in problemIn
	if err := decodeBody(r, &in); err != nil {
		h.domainError(w, r, err)
		return
	}
	if in.Compartment < 1 || in.Compartment > 99999 {
		h.domainError(w, r, cloud.Invalid("compartment", "want a door number"))
		return
	}
	known := false
	for _, k := range ProblemReasons {
		known = known || in.Reason == k
	}
	if !known {
		h.domainError(w, r, cloud.Invalid("reason", "want jammed, occupied, dirty, too_small or faulty"))
		return
	}
	if h.re == nil {
		writeError(w, http.StatusNotImplemented, "not_implemented",
			"this cloud cannot reassign from the phone yet: use the kiosk's problem button")
		return
	}
	o, err := h.re.ReassignSlot(r.Context(), principal(r), r.PathValue("order"), in.Compartment, in.Reason)
	if err != nil {
		h.domainError(w, r, err)
		return
	}
	slots := []map[string]any{}
	for _, s := range o.Slots {
		slots = append(slots, map[string]any{"compartment": s.Compartment, "size": s.Size, "zone": s.Zone,
			"generation": s.Generation, "loaded": s.Loaded})
	}
	writeJSON(w, http.StatusOK, map[string]any{"order": o.ID, "state": o.State, "slots": slots})
}
