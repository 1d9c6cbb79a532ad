package protocol

import "fmt"

// FieldError says which field of a message is wrong and why. Field is a dotted JSON path
// such as "body.reservations[2].code_digest".
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return "protocol: " + e.Field + ": " + e.Reason }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// ErrorCode says why a command failed or was rejected, or why an event was rejected. The list is append-only: a code,
// once published, keeps its meaning forever; receivers treat an unknown code as
// [ErrInternal].
type ErrorCode string

// Error codes of protocol v1, in the order they were added.
const (
	// ErrInvalidCommand: the command was malformed or made no sense for its kind.
	ErrInvalidCommand ErrorCode = "invalid_command"
	// ErrExpired: the command arrived after its expiry and was not carried out.
	ErrExpired ErrorCode = "expired"
	// ErrUnknownCompartment: the edge has no compartment of that number.
	ErrUnknownCompartment ErrorCode = "unknown_compartment"
	// ErrOutOfService: the compartment is out of service.
	ErrOutOfService ErrorCode = "out_of_service"
	// ErrJammed: the latch was pulsed but the door never showed open.
	ErrJammed ErrorCode = "jammed"
	// ErrBoardOffline: the lock board serving the compartment does not answer.
	ErrBoardOffline ErrorCode = "board_offline"
	// ErrBusy: another opening of the same compartment is in progress.
	ErrBusy ErrorCode = "busy"
	// ErrStaleGeneration: the command names a compartment generation that has since been
	// reused (the fencing token is old).
	ErrStaleGeneration ErrorCode = "stale_generation"
	// ErrInternal: anything else; the message says more.
	ErrInternal ErrorCode = "internal"
	// ErrInvalidEvent: an event the cloud could not decode (a required field missing or
	// of the wrong type); it is acknowledged as rejected (see [EventAck.Rejected]).
	// Added in 1.1.
	ErrInvalidEvent ErrorCode = "invalid_event"
)

// ErrorCodes lists every error code, oldest first.
func ErrorCodes() []ErrorCode {
	return []ErrorCode{ErrInvalidCommand, ErrExpired, ErrUnknownCompartment, ErrOutOfService,
		ErrJammed, ErrBoardOffline, ErrBusy, ErrStaleGeneration, ErrInternal, ErrInvalidEvent}
}
