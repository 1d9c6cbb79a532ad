package cloud

import (
	"errors"
	"fmt"
)

// Code is the kind of a domain error. Codes cross the wire (they are the "code" of the
// REST API's error body), so the list is append-only: a code keeps its meaning forever.
type Code string

// Error codes, in the order they were added. The HTTP adapter maps each to one status in
// one table (cloud/http/errors.go).
const (
	EInvalid       Code = "invalid"              // a field is missing or malformed
	ENotFound      Code = "not_found"            // no such site, order, key or command
	EConflict      Code = "conflict"             // the request contradicts the current state
	ENoCapacity    Code = "no_capacity"          // the site cannot hold the order in its window
	EUnauthorized  Code = "unauthorized"         // no or unknown credential
	EForbidden     Code = "forbidden"            // the credential's role or owner may not do this
	EIdempotency   Code = "idempotency_mismatch" // an idempotency key reused for another request
	EFoodSafety    Code = "food_safety"          // an extension beyond the zone's safety budget
	EUnavailable   Code = "unavailable"          // a dependency (broker, store) is not reachable
	EInternal      Code = "internal"             // a bug or an unexpected storage failure
	ETooLarge      Code = "too_large"            // a request body over the limit
	EAlreadyIssued Code = "already_issued"       // a one-time secret was already handed out
)

// Error is a domain error: a code, a message for the user and, for invalid input, the
// field at fault (a JSON path such as "parcels[1].size"). Op names the operation that
// failed, for logs. Err is the underlying cause of an internal error; it is never shown
// to API clients.
type Error struct {
	Code    Code
	Message string
	Field   string
	Op      string
	Err     error
	// Detail carries structured extras for the client, e.g. the nearest sites that can
	// hold an order refused for capacity ([]NearbySite).
	Detail any
}

func (e *Error) Error() string {
	s := string(e.Code)
	if e.Op != "" {
		s = e.Op + ": " + s
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Field != "" {
		s += " (field " + e.Field + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// ErrorCode returns the code of err's first *Error, EInternal for any other non-nil error
// and "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// AsError returns err's first *Error, or an internal one wrapping err.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: EInternal, Message: "internal error", Err: err}
}

// Errorf builds an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid is an EInvalid error naming field.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: EInvalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// internal wraps a storage or encoding failure with the operation.
func internal(op string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return &Error{Code: EInternal, Op: op, Message: "internal error", Err: err}
}
