package http

import (
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/larder-lockers/larder/cloud"
)

// Keys.

func (s *Server) createKey(w http.ResponseWriter, r *http.Request) {
	var in cloud.KeyInput
	if err := s.body(r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	k, plain, err := s.keys.CreateKey(r.Context(), principal(r), in)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, keyOut{ID: k.ID, Role: k.Role, Subject: k.Subject, Created: k.Created, Key: plain})
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) {
	keys, err := s.keys.ListKeys(r.Context(), principal(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := []keyOut{}
	for _, k := range keys {
		out = append(out, keyOut{ID: k.ID, Role: k.Role, Subject: k.Subject, Created: k.Created})
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": out})
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request) {
	if err := s.keys.RevokeKey(r.Context(), principal(r), chi.URLParam(r, "key")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Sites.

type siteIn struct {
	ID       string          `json:"id"`
	Name     *string         `json:"name"`
	Address  *string         `json:"address"`
	Location *cloud.Location `json:"location"`
	TimeZone *string         `json:"time_zone"`
	District *string         `json:"district"`
	Tags     *[]string       `json:"tags"`
}

func (s *Server) createSite(w http.ResponseWriter, r *http.Request) {
	var in siteIn
	if err := s.body(r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	st, err := s.siteAdm.CreateSite(r.Context(), principal(r), cloud.SiteInput(in))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, presentSite(st))
}

func (s *Server) updateSite(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name     *string         `json:"name"`
		Address  *string         `json:"address"`
		Location *cloud.Location `json:"location"`
		TimeZone *string         `json:"time_zone"`
		District *string         `json:"district"`
		Tags     *[]string       `json:"tags"`
	}
	if err := s.body(r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	st, err := s.siteAdm.UpdateSite(r.Context(), principal(r), chi.URLParam(r, "site"),
		cloud.SiteInput{Name: in.Name, Address: in.Address, Location: in.Location, District: in.District, Tags: in.Tags, TimeZone: in.TimeZone})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, presentSite(st))
}

func (s *Server) listSites(w http.ResponseWriter, r *http.Request) {
	sites, err := s.sites.ListSites(r.Context(), principal(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if sites == nil {
		sites = []cloud.SiteSummary{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"sites": sites})
}

func (s *Server) getSite(w http.ResponseWriter, r *http.Request) {
	d, err := s.sites.GetSite(r.Context(), principal(r), chi.URLParam(r, "site"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) provision(w http.ResponseWriter, r *http.Request) {
	p, err := s.siteAdm.Provision(r.Context(), principal(r), chi.URLParam(r, "site"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, struct {
		cloud.Provisioning
		MQTTURL string `json:"mqtt_url,omitempty"`
	}{p, s.mqttURL})
}

func (s *Server) manifest(w http.ResponseWriter, r *http.Request) {
	m, err := s.drivers.Manifest(r.Context(), principal(r), chi.URLParam(r, "site"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]map[string]any, 0, len(m))
	for _, e := range m {
		slots := []slotJSON{}
		for _, sl := range e.Slots {
			slots = append(slots, slotJSON{Compartment: sl.Compartment, Size: sl.Size, Zone: sl.Zone, Generation: sl.Generation, Parcels: sl.Parcels, Loaded: sl.Loaded})
		}
		parcels := []parcelJSON{}
		for _, p := range e.Parcels {
			parcels = append(parcels, parcelJSON(p))
		}
		out = append(out, map[string]any{"order": e.Order, "external_id": e.ExternalID, "state": e.State, "zone": e.Zone,
			"accessible": e.Accessible, "parcels": parcels, "slots": slots, "window": e.Window, "expires_at": e.ExpiresAt,
			"time_zone": e.TimeZone})
	}
	writeJSON(w, http.StatusOK, map[string]any{"site": chi.URLParam(r, "site"), "orders": out})
}

func (s *Server) loadingCredential(w http.ResponseWriter, r *http.Request) {
	c, err := s.drivers.IssueLoadingCredential(r.Context(), principal(r), chi.URLParam(r, "site"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, c)
}

type reasonIn struct {
	Reason string `json:"reason"`
}

func (s *Server) openCompartment(w http.ResponseWriter, r *http.Request) {
	n, err := pathInt(r, "number")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in reasonIn
	if err := s.body(r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	rec, err := s.commands.OpenCompartment(r.Context(), principal(r), chi.URLParam(r, "site"), n, in.Reason)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, presentCommand(rec))
}

func (s *Server) setService(in bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n, err := pathInt(r, "number")
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		var body reasonIn
		if err := s.body(r, &body); err != nil {
			s.writeError(w, r, err)
			return
		}
		rec, err := s.commands.SetInService(r.Context(), principal(r), chi.URLParam(r, "site"), n, in, body.Reason)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusAccepted, presentCommand(rec))
	}
}

func (s *Server) resolveAlarm(w http.ResponseWriter, r *http.Request) {
	if err := s.alarms.ResolveAlarm(r.Context(), principal(r), chi.URLParam(r, "site"), chi.URLParam(r, "alarm")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) getCommand(w http.ResponseWriter, r *http.Request) {
	rec, err := s.commands.GetCommand(r.Context(), principal(r), chi.URLParam(r, "command"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, presentCommand(rec))
}

func queryTime(r *http.Request, name string) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	return parseTime(name, v)
}

func queryLimit(r *http.Request) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, cloud.Invalid("limit", "want a positive integer")
	}
	return n, nil
}

// Platforms.

func (s *Server) setWebhook(w http.ResponseWriter, r *http.Request) {
	var in struct {
		URL string `json:"url"`
	}
	if err := s.body(r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	ws, err := s.webhooks.SetWebhook(r.Context(), principal(r), chi.URLParam(r, "platform"), in.URL)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, ws)
}

// Orders.

func (s *Server) createOrder(w http.ResponseWriter, r *http.Request) {
	raw, err := s.bodyBytes(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	req, err := decodeOrder(raw)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rc, err := s.orders.CreateOrder(r.Context(), principal(r), r.Header.Get("Idempotency-Key"), req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeReceipt(w, rc)
}

// writeReceipt answers a request that made an order: 201 with its Location, or 200 when
// the idempotency key replayed it; never cached when it carries a code.
func writeReceipt(w http.ResponseWriter, rc cloud.OrderReceipt) {
	w.Header().Set("Location", "/v1/orders/"+rc.Order.ID)
	status := http.StatusCreated
	if rc.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
		status = http.StatusOK
	}
	if rc.Code != "" {
		w.Header().Set("Cache-Control", "no-store")
	}
	writeJSON(w, status, presentReceipt(rc))
}

func (s *Server) listOrders(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := queryLimit(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	orders, err := s.orders.ListOrders(r.Context(), principal(r), cloud.OrderFilter{Site: q.Get("site"),
		State: cloud.OrderState(q.Get("state")), Limit: limit, After: q.Get("after")})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]orderOut, 0, len(orders))
	for _, o := range orders {
		out = append(out, presentOrder(o))
	}
	writeJSON(w, http.StatusOK, map[string]any{"orders": out})
}

func (s *Server) getOrder(w http.ResponseWriter, r *http.Request) {
	o, err := s.orders.GetOrder(r.Context(), principal(r), chi.URLParam(r, "order"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, presentOrder(o))
}

func (s *Server) cancelOrder(w http.ResponseWriter, r *http.Request) {
	var in reasonIn
	if err := s.body(r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	o, err := s.changes.CancelOrder(r.Context(), principal(r), chi.URLParam(r, "order"), in.Reason)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, presentOrder(o))
}

func (s *Server) extendOrder(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Seconds int64 `json:"seconds"`
	}
	if err := s.body(r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	if in.Seconds <= 0 || in.Seconds > 7*24*3600 {
		s.writeError(w, r, cloud.Invalid("seconds", "want between 60 and 604800 seconds"))
		return
	}
	o, err := s.changes.ExtendOrder(r.Context(), principal(r), chi.URLParam(r, "order"), time.Duration(in.Seconds)*time.Second)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, presentOrder(o))
}

func (s *Server) reissueCode(w http.ResponseWriter, r *http.Request) {
	rc, err := s.changes.ReissueCode(r.Context(), principal(r), chi.URLParam(r, "order"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if rc.Code != "" {
		w.Header().Set("Cache-Control", "no-store")
	}
	writeJSON(w, http.StatusOK, presentReceipt(rc))
}

func (s *Server) redeliverOrder(w http.ResponseWriter, r *http.Request) {
	raw, err := s.bodyBytes(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	req, err := decodeRedeliver(raw)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rc, err := s.changes.RedeliverOrder(r.Context(), principal(r), chi.URLParam(r, "order"), r.Header.Get("Idempotency-Key"), req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeReceipt(w, rc)
}

func (s *Server) openForLoading(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Compartment int `json:"compartment"`
	}
	if err := s.body(r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	if in.Compartment < 1 {
		s.writeError(w, r, cloud.Invalid("compartment", "required"))
		return
	}
	rec, err := s.drivers.OpenForLoading(r.Context(), principal(r), chi.URLParam(r, "order"), in.Compartment)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, presentCommand(rec))
}
