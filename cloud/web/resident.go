package web

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/protocol"
)

// The resident page.
//
// The notification links to ResidentLink(base, order, code) = {base}/r/{order}#c={code}.
// The code rides in the fragment, which a browser never sends to a server, so it reaches
// neither access logs nor proxies; the page reads it, keeps it in sessionStorage, strips it
// from the address bar and sends it in the X-Pickup-Code header to the JSON endpoints
// below. They check protocol.CodeDigest(siteKey, code) against the order's stored digest
// in constant time. The service has no resident role: once the code matches, the handler
// reads and extends the order as residentPrincipal.
//
// Wrong codes are limited per order and per client address (ResidentPolicy): past the
// limit every request, right code or not, is refused with 429 until the window ends, so
// the page is no faster an oracle than the kiosk. The counts are the Service's (Limits),
// kept in its store, so replicas behind a load balancer share them: an attacker gets the
// limit once, not once per replica. An unknown order and a wrong code get the same
// answer, so order ids cannot be probed.

// CodeHeader carries the pickup code to the resident endpoints.
const CodeHeader = "X-Pickup-Code"

// ResidentLink is the link the notifier sends to the resident: base is the cloud's public
// URL (e.g. "https://larder.example.org"), without a trailing slash.
func ResidentLink(base, order, code string) string {
	return strings.TrimRight(base, "/") + "/r/" + order + "#c=" + code
}

var residentPrincipal = cloud.Principal{Role: cloud.RoleOps, Subject: "resident-page"}

// ResidentOrder is what the resident page shows: no personal data, no digests.
type ResidentOrder struct {
	Order     string           `json:"order"`
	State     cloud.OrderState `json:"state"`
	CodeValid bool             `json:"code_valid"`
	Site      ResidentSite     `json:"site"`
	Doors     []Door           `json:"doors"`
	ExpiresAt time.Time        `json:"expires_at"`
	LoadedAt  time.Time        `json:"loaded_at,omitzero"`
	Extend    ExtendOffer      `json:"extend"`
	// QR is there while the order waits in the locker with a valid code: what the page
	// needs for its device-bound QR code. Each answer carries a fresh one.
	QR *ResidentQR `json:"qr,omitempty"`
	// ColdChain is set once the order was picked up or returned.
	ColdChain *ResidentColdChain `json:"cold_chain,omitempty"`
}

// ResidentQR completes the QR payload of the resident page: the page shows
// "larder:v1:{site}:{code}:{expires}:{tag}" (cloud.QRPayload, then expires and tag), for
// which the kiosk opens the order without the phone digits until it expires. The code is
// the page's own; the answer does not repeat it.
type ResidentQR struct {
	Expires int64  `json:"expires"` // Unix seconds, as in the payload
	Tag     string `json:"tag"`     // protocol.QRTag over site, code and Expires
}

// ResidentColdChain is the order's cold chain in the resident's words: whole minutes
// (rounded up, so that a short rise is never shown as none) and one sentence in each of
// the page's languages.
type ResidentColdChain struct {
	Known          bool     `json:"known"`
	LimitC         float64  `json:"limit_c,omitempty"`
	AboveMinutes   int      `json:"above_minutes,omitempty"`
	PeakC          *float64 `json:"peak_c,omitempty"`
	MissingMinutes int      `json:"missing_minutes,omitempty"`
	ZH             string   `json:"zh"`
	EN             string   `json:"en"`
}

// residentColdChain words the record of an order of zone z: "kept cold throughout"
// only when nothing was above the limit and no reading was missing.
func residentColdChain(cc *cloud.ColdChain, z protocol.Zone) *ResidentColdChain {
	if cc == nil {
		return nil
	}
	if !cc.Known {
		return &ResidentColdChain{ZH: "柜子没有报告这份订单的温度记录。", EN: "The locker did not report a temperature record for this order."}
	}
	minutes := func(s float64) int { return int(math.Ceil(s / 60)) }
	v := &ResidentColdChain{Known: true, LimitC: cc.LimitC, AboveMinutes: minutes(cc.AboveSeconds), PeakC: cc.PeakC,
		MissingMinutes: minutes(cc.MissingSeconds)}
	limit := celsius(cc.LimitC)
	switch {
	case v.AboveMinutes > 0:
		v.ZH = fmt.Sprintf("有 %d 分钟高于 %s", v.AboveMinutes, limit)
		v.EN = fmt.Sprintf("%d %s above %s", v.AboveMinutes, plural(v.AboveMinutes, "minute"), limit)
		if cc.PeakC != nil {
			v.ZH += fmt.Sprintf("（最高 %s）", celsius(*cc.PeakC))
			v.EN += fmt.Sprintf(" (warmest %s)", celsius(*cc.PeakC))
		}
		v.ZH += "。"
		v.EN += "."
	case v.MissingMinutes > 0:
		v.ZH = fmt.Sprintf("测量时温度从未高于 %s。", limit)
		v.EN = fmt.Sprintf("Never above %s when measured.", limit)
	case z == protocol.ZoneFrozen:
		v.ZH = fmt.Sprintf("全程冷冻，温度从未高于 %s。", limit)
		v.EN = fmt.Sprintf("Kept frozen throughout: never above %s.", limit)
	case z == protocol.ZoneChilled:
		v.ZH = fmt.Sprintf("全程冷藏，温度从未高于 %s。", limit)
		v.EN = fmt.Sprintf("Kept cold throughout: never above %s.", limit)
	default:
		v.ZH = fmt.Sprintf("温度从未高于 %s。", limit)
		v.EN = fmt.Sprintf("Never above %s.", limit)
	}
	if v.MissingMinutes > 0 {
		v.ZH += fmt.Sprintf("有 %d 分钟没有温度读数。", v.MissingMinutes)
		v.EN += fmt.Sprintf(" No temperature reading for %d %s.", v.MissingMinutes, plural(v.MissingMinutes, "minute"))
	}
	return v
}

// celsius writes a temperature to a tenth of a degree: "8 °C", "−15 °C", "9.3 °C".
func celsius(c float64) string {
	return strings.Replace(strconv.FormatFloat(math.Round(c*10)/10, 'f', -1, 64), "-", "−", 1) + " °C"
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// ResidentSite names the locker bank.
type ResidentSite struct {
	ID      string `json:"id"`
	Name    string `json:"name,omitempty"`
	Address string `json:"address,omitempty"`
	// TimeZone is the IANA name of the site's zone, in which the page tells times.
	TimeZone string `json:"time_zone"`
}

// Door is one compartment of the order and where to find it.
type Door struct {
	Number   int           `json:"number"`
	Zone     protocol.Zone `json:"zone"`
	Size     protocol.Size `json:"size"`
	HeightCM int           `json:"height_cm,omitempty"`
	// Row is "low" (below 70 cm), "middle" or "high" (140 cm and up), for "bottom row".
	Row    string `json:"row,omitempty"`
	Loaded bool   `json:"loaded"`
}

// ExtendOffer says whether the resident may extend now, by how much and until when, or
// why not: "not_loaded", "closed", "limit" (ResidentPolicy.MaxExtended reached) or
// "food_safety" (the zone's cap after loading).
type ExtendOffer struct {
	Allowed bool      `json:"allowed"`
	Seconds int64     `json:"seconds,omitempty"`
	Until   time.Time `json:"until,omitzero"`
	Reason  string    `json:"reason,omitempty"`
}

func row(h int) string {
	switch {
	case h <= 0:
		return ""
	case h < 70:
		return "low"
	case h < 140:
		return "middle"
	}
	return "high"
}

func validOrderID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

func validCode(c string) bool {
	if len(c) != cloud.CodeDigits {
		return false
	}
	for _, r := range c {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// checkCode returns the order and its site's key if the request's code opens it;
// otherwise it has answered.
func (h *Handler) checkCode(w http.ResponseWriter, r *http.Request) (cloud.Order, []byte, bool) {
	id := r.PathValue("order")
	rp := h.opt.Resident
	orderKey, ipKey := "", "ip/"+h.clientIP(r)
	if validOrderID(id) {
		orderKey = "order/" + id
	}
	limits, failed := []cloud.FailureLimit{{Key: ipKey, Max: rp.MaxFailuresPerIP}}, []string{ipKey}
	if orderKey != "" {
		limits = append(limits, cloud.FailureLimit{Key: orderKey, Max: rp.MaxFailuresPerOrder})
		failed = append(failed, orderKey)
	}
	wait, err := h.svc.FailureWait(r.Context(), limits...)
	if err != nil {
		h.domainError(w, r, err)
		return cloud.Order{}, nil, false
	}
	if wait > 0 {
		inc(h.met.locked)
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		writeError(w, http.StatusTooManyRequests, "locked", "too many wrong codes: try again later")
		return cloud.Order{}, nil, false
	}
	code := r.Header.Get(CodeHeader)
	var (
		o   cloud.Order
		key []byte
	)
	ok := false
	if orderKey != "" && validCode(code) {
		var err error
		o, err = h.svc.GetOrder(r.Context(), residentPrincipal, id)
		switch {
		case err == nil:
			var kerr error
			key, kerr = h.svc.SiteKey(r.Context(), o.Site)
			if kerr != nil {
				h.domainError(w, r, kerr)
				return cloud.Order{}, nil, false
			}
			ok = protocol.DigestEqual(protocol.CodeDigest(key, code), o.CodeDigest)
		case cloud.ErrorCode(err) != cloud.ENotFound:
			h.domainError(w, r, err)
			return cloud.Order{}, nil, false
		}
	}
	if !ok {
		inc(h.met.codeFails)
		if err := h.svc.CountFailure(r.Context(), rp.Window, failed...); err != nil {
			h.domainError(w, r, err)
			return cloud.Order{}, nil, false
		}
		h.log.Info("resident page: wrong code", "path", routeOf(r))
		writeError(w, http.StatusForbidden, "wrong_code", "this link or code is not valid")
		return cloud.Order{}, nil, false
	}
	return o, key, true
}

func (h *Handler) residentOrder(w http.ResponseWriter, r *http.Request) {
	o, key, ok := h.checkCode(w, r)
	if !ok {
		return
	}
	v, err := h.residentView(r, o, key)
	if err != nil {
		h.domainError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (h *Handler) residentExtend(w http.ResponseWriter, r *http.Request) {
	o, key, ok := h.checkCode(w, r)
	if !ok {
		return
	}
	off := h.offer(o)
	if !off.Allowed {
		status := http.StatusConflict
		if off.Reason == "food_safety" {
			status = http.StatusUnprocessableEntity
		}
		writeError(w, status, off.Reason, "this order cannot be extended now")
		return
	}
	o, err := h.svc.ExtendOrder(r.Context(), residentPrincipal, o.ID, time.Duration(off.Seconds)*time.Second)
	if err != nil {
		h.domainError(w, r, err)
		return
	}
	inc(h.met.extensions)
	h.log.Info("resident extended order", "order", o.ID, "site", o.Site, "seconds", off.Seconds)
	v, err := h.residentView(r, o, key)
	if err != nil {
		h.domainError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// residentView is what the page shows of o; key is its site's key, for the QR code.
func (h *Handler) residentView(r *http.Request, o cloud.Order, key []byte) (ResidentOrder, error) {
	d, err := h.svc.GetSite(r.Context(), residentPrincipal, o.Site)
	if err != nil {
		return ResidentOrder{}, err
	}
	heights := map[int]int{}
	for _, c := range d.CompartmentList {
		heights[c.Number] = c.HeightCM
	}
	v := ResidentOrder{Order: o.ID, State: o.State, CodeValid: o.State.Live() && !o.CodeInvalid,
		Site:      ResidentSite{ID: d.ID, Name: d.Name, Address: d.Address, TimeZone: d.TimeZone},
		ExpiresAt: o.ExpiresAt, LoadedAt: o.LoadedAt, Extend: h.offer(o), Doors: []Door{},
		ColdChain: residentColdChain(o.ColdChain, o.Zone)}
	for _, sl := range o.Slots {
		v.Doors = append(v.Doors, Door{Number: sl.Compartment, Zone: sl.Zone, Size: sl.Size,
			HeightCM: heights[sl.Compartment], Row: row(heights[sl.Compartment]), Loaded: sl.Loaded})
	}
	if v.CodeValid && o.State == cloud.StateLoaded {
		// The request's code is the order's (checkCode), so it is the one to tag.
		exp := h.now().Add(protocol.QRTagLifetime)
		v.QR = &ResidentQR{Expires: exp.Unix(), Tag: protocol.QRTag(key, o.Site, r.Header.Get(CodeHeader), exp)}
	}
	return v, nil
}

// offer applies the resident rules; the service's food-safety check applies again when
// the extension is made.
func (h *Handler) offer(o cloud.Order) ExtendOffer {
	rp := h.opt.Resident
	switch {
	case o.State == cloud.StateAssigned:
		return ExtendOffer{Reason: "not_loaded"}
	case o.State != cloud.StateLoaded:
		return ExtendOffer{Reason: "closed"}
	case o.Extended+rp.ExtendStep > rp.MaxExtended:
		return ExtendOffer{Reason: "limit"}
	}
	pol := h.svc.Policy()
	var maxHold time.Duration
	for i, p := range o.Parcels {
		if m := pol.MaxHold[p.Zone]; i == 0 || m < maxHold {
			maxHold = m
		}
	}
	until := o.ExpiresAt.Add(rp.ExtendStep)
	if until.After(o.LoadedAt.Add(maxHold)) {
		return ExtendOffer{Reason: "food_safety"}
	}
	return ExtendOffer{Allowed: true, Seconds: int64(rp.ExtendStep / time.Second), Until: until}
}
