package edge

import (
	"errors"
	"fmt"
)

// Code classifies a domain error. Each boundary (the kiosk's HTTP handlers, the command
// acks) maps codes once; the list is append-only because kiosk pages switch on it.
type Code string

// Error codes of the edge's domain.
const (
	CodeBadRequest      Code = "bad_request"
	CodeWrongCode       Code = "wrong_code"
	CodeLocked          Code = "locked"
	CodeExpired         Code = "expired"
	CodeCompromised     Code = "compromised"
	CodeAlreadyPickedUp Code = "already_picked_up"
	CodeNotReady        Code = "not_ready"
	CodeHardware        Code = "hardware"
	CodeBadCredential   Code = "bad_credential"
	CodeNotFound        Code = "not_found"
	CodeNoCompartment   Code = "no_compartment"
	CodeConflict        Code = "conflict"
	CodeInternal        Code = "internal"
	CodeQRRefused       Code = "qr_refused"
)

// Error is a domain error: a code, the operation, a message for the person in front of
// the locker (English and Chinese) and extra fields the kiosk passes on (attempts_left,
// retry_after_seconds, minutes_out). Err is the cause, for logs only.
type Error struct {
	Code      Code
	Op        string
	Message   string
	MessageZH string
	Extra     map[string]any
	Err       error
}

func (e *Error) Error() string {
	s := "edge: " + e.Op + ": " + string(e.Code)
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// ErrorCode returns the code of err, CodeInternal for errors that are not *Error.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

func errorf(code Code, op, en, zh string) *Error {
	return &Error{Code: code, Op: op, Message: en, MessageZH: zh}
}

func internal(op string, err error) error {
	return &Error{Code: CodeInternal, Op: op, Message: "Something went wrong. Please try again or press Help.",
		MessageZH: "系统出错，请重试或按求助键。", Err: err}
}

func (e *Error) with(k string, v any) *Error {
	if e.Extra == nil {
		e.Extra = map[string]any{}
	}
	e.Extra[k] = v
	return e
}

// ErrStale is returned by the store when a record changed under a caller's feet.
var ErrStale = errors.New("edge: stale record")

func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return fmt.Errorf("edge: %s: %w", op, err)
}
