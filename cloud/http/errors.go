package http

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/larder-lockers/larder/cloud"
)

// statuses is the one table from domain error codes to HTTP statuses: the /v1 API and
// the pages (cloud/web, through StatusOf) answer from it. TestEveryCodeHasAStatus fails
// when a code of package cloud is missing here.
var statuses = map[cloud.Code]int{
	cloud.EInvalid:       http.StatusBadRequest,
	cloud.ENotFound:      http.StatusNotFound,
	cloud.EConflict:      http.StatusConflict,
	cloud.ENoCapacity:    http.StatusConflict,
	cloud.EUnauthorized:  http.StatusUnauthorized,
	cloud.EForbidden:     http.StatusForbidden,
	cloud.EIdempotency:   http.StatusUnprocessableEntity,
	cloud.EFoodSafety:    http.StatusUnprocessableEntity,
	cloud.EUnavailable:   http.StatusServiceUnavailable,
	cloud.EInternal:      http.StatusInternalServerError,
	cloud.ETooLarge:      http.StatusRequestEntityTooLarge,
	cloud.EAlreadyIssued: http.StatusConflict,
}

// StatusOf is the HTTP status of a domain error code; a code the table lacks is a 500.
func StatusOf(c cloud.Code) int {
	if s, ok := statuses[c]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// errorBody is the one error shape of the API.
type errorBody struct {
	Error errorJSON `json:"error"`
}

type errorJSON struct {
	Code    cloud.Code `json:"code"`
	Message string     `json:"message"`
	Field   string     `json:"field,omitempty"`
	// NearbySites accompanies no_capacity: sites near the refused one that can hold the
	// order.
	NearbySites []cloud.NearbySite `json:"nearby_sites,omitempty"`
}

// writeError writes err in the API's error shape. Internal errors are logged here, once,
// and their cause never reaches the client.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := cloud.AsError(err)
	status := StatusOf(e.Code)
	body := errorBody{Error: errorJSON{Code: e.Code, Message: e.Message, Field: e.Field}}
	if status >= 500 {
		s.log.Error("request failed", "method", r.Method, "route", routePattern(r), "err", err)
		if e.Code == cloud.EInternal {
			body.Error.Message = "internal error"
		}
	}
	if near, ok := e.Detail.([]cloud.NearbySite); ok {
		body.Error.NearbySites = near
		if near == nil {
			body.Error.NearbySites = []cloud.NearbySite{}
		}
	}
	if e.Code == cloud.EUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="larder"`)
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.Encode(v) // a failed write means the client left; nothing to do
}

// decode reads one JSON value from r's body into v: at most max bytes, unknown fields
// rejected (naming the field), a single value only. Every failure is a 4xx *cloud.Error.
func decode(r io.Reader, max int64, v any) error {
	lr := &io.LimitedReader{R: r, N: max + 1}
	data, err := io.ReadAll(lr)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &cloud.Error{Code: cloud.ETooLarge, Message: fmt.Sprintf("the body is larger than %d bytes", max)}
		}
		return &cloud.Error{Code: cloud.EInvalid, Field: "body", Message: "could not read the body"}
	}
	if int64(len(data)) > max {
		return &cloud.Error{Code: cloud.ETooLarge, Message: fmt.Sprintf("the body is larger than %d bytes", max)}
	}
	return decodeBytes(data, v)
}

func decodeBytes(data []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return cloud.Invalid("body", "want a single JSON object")
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); err != io.EOF {
		return cloud.Invalid("body", "want a single JSON object")
	}
	return nil
}

// jsonError turns encoding/json's errors into field errors.
func jsonError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return cloud.Invalid("body", "empty body: want a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return cloud.Invalid("body", "truncated JSON")
	case errors.As(err, &se):
		return cloud.Invalid("body", "malformed JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "body"
		}
		return cloud.Invalid(field, "want %s, got JSON %s", jsonType(te.Type.Kind().String()), te.Value)
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return cloud.Invalid(strings.Trim(f, `"`), "unknown field")
	}
	return cloud.Invalid("body", "%s", strings.TrimPrefix(msg, "json: "))
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	}
	return "a number"
}
