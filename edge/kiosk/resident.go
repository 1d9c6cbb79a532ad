package kiosk

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/larder-lockers/larder/edge"
)

// pickupRequest is the body of POST /api/pickup: a code and factor, or (QR) a scanned
// device-bound QR payload alone.
type pickupRequest struct {
	Code              string `json:"code"`
	Factor            string `json:"factor"`
	QR                string `json:"qr"`
	AcceptCompromised bool   `json:"accept_compromised"`
}

var errQRWithCode = &edge.Error{Code: edge.CodeBadRequest, Op: "kiosk", Message: "Send a QR code or a code with phone digits, not both.",
	MessageZH: "请只发送二维码，或只发送取件码和手机尾号。", Extra: map[string]any{"field": "qr"}}

// decodePickup decodes a pickup body. The domain checks the digits (8 and 4, else
// bad_request naming the field) or the QR payload, before anything counts as a guess; a
// body with both a QR payload and a code or factor is bad_request here. Fuzzed: the body
// comes from anyone standing at the screen.
func decodePickup(w http.ResponseWriter, r *http.Request) (pickupRequest, error) {
	var req pickupRequest
	if err := decode(w, r, &req); err != nil {
		return req, err
	}
	if req.QR != "" && (req.Code != "" || req.Factor != "") {
		return req, errQRWithCode
	}
	return req, nil
}

func (s *server) info(w http.ResponseWriter, r *http.Request) {
	site, locked := s.cfg.Resident.Info()
	body := map[string]any{"site": site, "locked_seconds": locked, "languages": []string{"zh", "en"}}
	// The name and zone are for show: without them (a store error, logged) the page
	// names the site by its id and keeps working.
	if p, err := s.cfg.Resident.SiteProfile(); err != nil {
		s.log.Error("kiosk info: site profile", "err", err)
	} else {
		if p.Name != "" {
			body["site_name"] = p.Name
		}
		if p.TimeZone != "" {
			body["time_zone"] = p.TimeZone
		}
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *server) pickup(w http.ResponseWriter, r *http.Request) {
	req, err := decodePickup(w, r)
	if err != nil {
		writeErr(w, s.log, err)
		return
	}
	var res edge.PickupResult
	if req.QR != "" {
		res, err = s.cfg.Resident.PickupQR(r.Context(), req.QR, req.AcceptCompromised)
	} else {
		res, err = s.cfg.Resident.Pickup(r.Context(), req.Code, req.Factor, req.AcceptCompromised)
	}
	if err != nil {
		writeErr(w, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *server) session(w http.ResponseWriter, r *http.Request) {
	doors, done, err := s.cfg.Resident.SessionStatus(chi.URLParam(r, "session"))
	if err != nil {
		writeErr(w, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"doors": doors, "done": done})
}

func (s *server) help(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Context string `json:"context"`
	}
	if err := decode(w, r, &req); err != nil {
		writeErr(w, s.log, err)
		return
	}
	switch req.Context {
	case "pickup", "driver", "other":
	default:
		req.Context = "other"
	}
	raised, err := s.cfg.Resident.Help(r.Context(), req.Context)
	if err != nil {
		writeErr(w, s.log, err)
		return
	}
	// Either way the person is told that staff know: a press moments after another
	// raises no second alert (the domain's rate limit), and says so in already_notified.
	writeJSON(w, http.StatusAccepted, map[string]any{
		"already_notified": !raised,
		"message":          "Staff have been told. Please wait by the locker.",
		"message_zh":       "已通知工作人员，请在柜子旁稍候。",
	})
}
