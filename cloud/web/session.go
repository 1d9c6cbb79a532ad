package web

import (
	"net/http"
	"strings"

	"github.com/larder-lockers/larder/cloud"
)

// Ops sessions.
//
// The dashboard calls the /v1 API with the operator's key in an Authorization header, but
// an EventSource cannot set headers, and a key in the stream's URL would land in access
// logs and browser history. So the page signs in once with POST /ops/session (key in the
// Authorization header), and the answer sets the key in a cookie that only the stream
// sees: HttpOnly (page scripts cannot read it), SameSite=Strict (no other site's page can
// open the stream with it), Path=/ops/stream (sent nowhere else), Secure over TLS, and
// gone after SessionTTL or DELETE /ops/session.
//
// The cookie holds the key itself rather than a session id so that sessions need no
// shared state between cloud replicas, and so that a revoked key stops the stream: the
// key is authenticated again on every connect and re-checked while the stream is open.

const sessionCookie = "larder_ops"

const streamPath = "/ops/stream"

func (h *Handler) secure(r *http.Request) bool { return h.opt.SecureCookies || r.TLS != nil }

// login checks an ops (or admin) key and sets the stream cookie. 204 on success.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	p, ok := h.authHeader(w, r)
	if !ok {
		return
	}
	if !hasRole(p, []cloud.Role{cloud.RoleOps, cloud.RoleAdmin}) {
		codeError(w, cloud.EForbidden, "the dashboard needs an ops or admin key")
		return
	}
	key := strings.TrimSpace(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: key, Path: streamPath, HttpOnly: true,
		Secure: h.secure(r), SameSite: http.SameSiteStrictMode, MaxAge: int(h.opt.SessionTTL.Seconds())})
	w.Header().Set("Cache-Control", "no-store")
	h.log.Info("ops session opened", "key_id", p.KeyID, "subject", p.Subject)
	w.WriteHeader(http.StatusNoContent)
}

// logout clears the stream cookie. It needs no key: it only forgets.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: streamPath, HttpOnly: true,
		Secure: h.secure(r), SameSite: http.SameSiteStrictMode, MaxAge: -1})
	w.WriteHeader(http.StatusNoContent)
}

// streamPrincipal authenticates the stream's cookie (or, for non-browser clients, an
// Authorization header) as an ops or admin key.
func (h *Handler) streamPrincipal(r *http.Request) (cloud.Principal, string, error) {
	key := ""
	if c, err := r.Cookie(sessionCookie); err == nil {
		key = c.Value
	}
	if k, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		key = strings.TrimSpace(k)
	}
	if key == "" {
		return cloud.Principal{}, "", cloud.Errorf(cloud.EUnauthorized, "sign in first: POST /ops/session")
	}
	p, err := h.svc.Authenticate(r.Context(), key)
	if err != nil {
		return cloud.Principal{}, "", err
	}
	if !hasRole(p, []cloud.Role{cloud.RoleOps, cloud.RoleAdmin}) {
		return cloud.Principal{}, "", cloud.Errorf(cloud.EForbidden, "the stream needs an ops or admin key")
	}
	return p, key, nil
}
