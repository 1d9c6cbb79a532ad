package protocol

import "time"

// CommandKind names what a [Command] asks the edge to do.
type CommandKind string

// Command kinds of protocol v1.
const (
	// CmdOpen opens a compartment: for ops (Reason required) or for a driver's loading
	// (Order and Generation required).
	CmdOpen CommandKind = "open"
	// CmdOutOfService and CmdInService take a compartment out of and back into service.
	CmdOutOfService CommandKind = "set_out_of_service"
	CmdInService    CommandKind = "set_in_service"
	// CmdResync asks the edge to publish a new birth, which the cloud answers with a full
	// desired snapshot.
	CmdResync CommandKind = "resync"
)

// Purpose says on whose behalf a compartment opens.
type Purpose string

// Purposes of an open command.
const (
	PurposeOps     Purpose = "ops"
	PurposeLoading Purpose = "loading"
)

// Command is a job the cloud asks of an edge, on [ChanCommands]. Its ID is what the edge
// deduplicates on; the cloud sends it as the envelope id too (since 1.1; a 1.0 cloud's
// envelope ids differ), so a republished command is a redelivery of one message. The
// edge answers with
// [CommandAck]s: QUEUED → IN_PROGRESS → SUCCEEDED / FAILED / TIMED_OUT, or REJECTED. A
// command is carried out at most once per id, however often it is delivered; one that
// arrives after ExpiresAt is REJECTED with [ErrExpired].
type Command struct {
	ID          string      `json:"id"`
	Kind        CommandKind `json:"kind"`
	Compartment int         `json:"compartment,omitempty"`
	Purpose     Purpose     `json:"purpose,omitempty"`
	// Reason is mandatory for an ops open and for out of service; it goes to the audit log.
	Reason     string    `json:"reason,omitempty"`
	Order      string    `json:"order,omitempty"`
	Generation uint64    `json:"generation,omitempty"`
	ExpiresAt  time.Time `json:"expires_at"`
	// Actor identifies who asked (an operator or driver id), for the audit log.
	Actor string `json:"actor,omitempty"`
}

func (Command) MessageType() Type { return TypeCommand }

func (c Command) Validate() error {
	switch {
	case c.ID == "":
		return fieldErr("id", "required")
	case len(c.ID) > 64:
		// The cloud sends it as the envelope id too, which is at most 64.
		return fieldErr("id", "longer than 64 characters")
	case c.Kind == "":
		return fieldErr("kind", "required")
	case c.ExpiresAt.IsZero():
		return fieldErr("expires_at", "required")
	}
	switch c.Kind {
	case CmdOpen:
		if c.Compartment < 1 {
			return fieldErr("compartment", "required for open")
		}
		switch c.Purpose {
		case PurposeOps:
			if c.Reason == "" {
				return fieldErr("reason", "required for an ops open")
			}
		case PurposeLoading:
			if c.Order == "" {
				return fieldErr("order", "required for a loading open")
			}
			if c.Generation == 0 {
				return fieldErr("generation", "required for a loading open")
			}
		default:
			return fieldErr("purpose", "want ops or loading, got %q", c.Purpose)
		}
	case CmdOutOfService:
		if c.Compartment < 1 {
			return fieldErr("compartment", "required")
		}
		if c.Reason == "" {
			return fieldErr("reason", "required for out of service")
		}
	case CmdInService:
		if c.Compartment < 1 {
			return fieldErr("compartment", "required")
		}
	case CmdResync:
	default:
		return fieldErr("kind", "unknown command kind %q", c.Kind)
	}
	return nil
}

// CommandState is where a command is in its life.
type CommandState string

// Command states. QUEUED and IN_PROGRESS are transient; the others are final.
const (
	StateQueued     CommandState = "QUEUED"
	StateInProgress CommandState = "IN_PROGRESS"
	StateSucceeded  CommandState = "SUCCEEDED"
	StateFailed     CommandState = "FAILED"
	StateTimedOut   CommandState = "TIMED_OUT"
	StateRejected   CommandState = "REJECTED"
)

// Final reports whether s ends the command.
func (s CommandState) Final() bool {
	switch s {
	case StateSucceeded, StateFailed, StateTimedOut, StateRejected:
		return true
	}
	return false
}

func (s CommandState) valid() bool { return s == StateQueued || s == StateInProgress || s.Final() }

// CommandAck is the edge's report of a command's progress on [ChanCommandAck].
type CommandAck struct {
	CommandID string       `json:"command_id"`
	State     CommandState `json:"state"`
	// Error is set for FAILED, TIMED_OUT and REJECTED.
	Error   ErrorCode `json:"error,omitempty"`
	Message string    `json:"message,omitempty"`
}

func (CommandAck) MessageType() Type { return TypeCommandAck }

func (a CommandAck) Validate() error {
	switch {
	case a.CommandID == "":
		return fieldErr("command_id", "required")
	case !a.State.valid():
		return fieldErr("state", "unknown state %q", a.State)
	case a.Error == "" && (a.State == StateFailed || a.State == StateRejected || a.State == StateTimedOut):
		return fieldErr("error", "required for %s", a.State)
	}
	return nil
}
