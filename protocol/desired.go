package protocol

import (
	"fmt"
	"time"
)

// Desired is the cloud's desired state for a site on [ChanDesired], versioned like a
// device shadow. Version increases by one with every change.
//
// A full snapshot (Full true) replaces everything: the edge applies it when its version is
// newer than the edge's. A delta (Full false) applies on top of Version-1 only: the edge
// ignores a delta it already has (Version ≤ its own) and, on a gap (Version > its own + 1),
// applies nothing and sends a [DesiredGet].
type Desired struct {
	Version uint64 `json:"version"`
	Full    bool   `json:"full"`
	// Reservations are upserted by order id (in a snapshot: the complete set).
	Reservations []Reservation `json:"reservations,omitempty"`
	// Cancel lists order ids whose reservations end (never in a snapshot).
	Cancel []string `json:"cancel,omitempty"`
	// Credentials are driver loading credentials, upserted by id (snapshot: complete set).
	Credentials []LoadingCredential `json:"credentials,omitempty"`
	// Revoke lists credential ids that stop working (never in a snapshot).
	Revoke []string `json:"revoke,omitempty"`
}

// Reservation is an order's claim on one or more compartments.
type Reservation struct {
	Order string `json:"order"`
	// Slots are the order's compartments, each with the generation it was assigned at.
	Slots []Slot `json:"slots"`
	// CodeDigest is [CodeDigest] of the pickup code; SecondFactorDigest is
	// [SecondFactorDigest] of the last 4 digits of the recipient's phone number.
	CodeDigest         string `json:"code_digest"`
	SecondFactorDigest string `json:"second_factor_digest"`
	// ExpiresAt is when the code stops working and the order awaits return.
	ExpiresAt time.Time `json:"expires_at"`
	// MaxExpiresAt is the latest ExpiresAt may ever move to: the food-safety cap of the
	// order's zones (chilled and frozen food 24 h after loading). While the edge has been
	// unable to reach the cloud for more than MinOutage, it honours the order past
	// ExpiresAt by the outage's length, never past MaxExpiresAt; the cloud extends by the
	// same rule when the link returns, and its next ExpiresAt is authoritative again.
	// Zero (a cloud of protocol 1.0), or not after ExpiresAt: the edge does not extend the
	// order on its own.
	MaxExpiresAt time.Time `json:"max_expires_at,omitzero"`
	Zone         Zone      `json:"zone"`
	// BudgetSeconds is the order's time-out-of-temperature budget (0: none, e.g. ambient).
	BudgetSeconds int `json:"budget_seconds"`
	// Accessible orders go only into compartments below 120 cm.
	Accessible bool `json:"accessible,omitempty"`
}

// MinOutage is the shortest outage that moves pickup deadlines, on both sides: a
// reconnect within a minute (a broker or cloud restart, a flaky uplink) is not worth a
// new deadline and a notice to every resident of the site.
const MinOutage = time.Minute

// Slot is one compartment of a reservation. Generation is the compartment's fencing
// token: bumped by the cloud on every reuse, so an old reservation can never open a
// compartment that has since been given to another order.
type Slot struct {
	Compartment int    `json:"compartment"`
	Generation  uint64 `json:"generation"`
	Size        Size   `json:"size"`
}

// LoadingCredential lets a driver open driver mode at a site's kiosk until it expires.
type LoadingCredential struct {
	ID        string    `json:"id"`
	Digest    string    `json:"digest"` // CredentialDigest of the credential
	Driver    string    `json:"driver"` // the driver's id, for the audit log
	ExpiresAt time.Time `json:"expires_at"`
}

func (Desired) MessageType() Type { return TypeDesired }

func (d Desired) Validate() error {
	if d.Version == 0 {
		return fieldErr("version", "required")
	}
	if d.Full && len(d.Cancel) > 0 {
		return fieldErr("cancel", "a full snapshot cannot cancel")
	}
	if d.Full && len(d.Revoke) > 0 {
		return fieldErr("revoke", "a full snapshot cannot revoke")
	}
	held := map[int]string{}
	for i, r := range d.Reservations {
		if err := r.validate(fmt.Sprintf("reservations[%d]", i)); err != nil {
			return err
		}
		for j, s := range r.Slots {
			if other, ok := held[s.Compartment]; ok && other != r.Order {
				return fieldErr(fmt.Sprintf("reservations[%d].slots[%d].compartment", i, j),
					"compartment %d is also reserved by order %s", s.Compartment, other)
			}
			held[s.Compartment] = r.Order
		}
	}
	for i, c := range d.Credentials {
		f := fmt.Sprintf("credentials[%d]", i)
		switch {
		case c.ID == "":
			return fieldErr(f+".id", "required")
		case !validDigest(c.Digest):
			return fieldErr(f+".digest", "want 64 hex characters")
		case c.ExpiresAt.IsZero():
			return fieldErr(f+".expires_at", "required")
		}
	}
	return nil
}

func (r Reservation) validate(f string) error {
	switch {
	case r.Order == "":
		return fieldErr(f+".order", "required")
	case len(r.Slots) == 0:
		return fieldErr(f+".slots", "required: at least one compartment")
	case !validDigest(r.CodeDigest):
		return fieldErr(f+".code_digest", "want 64 hex characters")
	case !validDigest(r.SecondFactorDigest):
		return fieldErr(f+".second_factor_digest", "want 64 hex characters")
	case r.ExpiresAt.IsZero():
		return fieldErr(f+".expires_at", "required")
	case !r.Zone.Valid():
		return fieldErr(f+".zone", "unknown zone %q", r.Zone)
	case r.BudgetSeconds < 0:
		return fieldErr(f+".budget_seconds", "must not be negative")
	}
	for j, s := range r.Slots {
		if s.Compartment < 1 {
			return fieldErr(fmt.Sprintf("%s.slots[%d].compartment", f, j), "must be at least 1")
		}
		if s.Generation == 0 {
			return fieldErr(fmt.Sprintf("%s.slots[%d].generation", f, j), "required")
		}
	}
	return nil
}

// DesiredGet is the edge's request on [ChanDesiredGet] for a full desired snapshot: sent
// on a version gap and whenever the edge suspects it missed something.
type DesiredGet struct {
	// Have is the desired version the edge has applied.
	Have   uint64 `json:"have"`
	Reason string `json:"reason,omitempty"`
}

func (DesiredGet) MessageType() Type { return TypeDesiredGet }
func (DesiredGet) Validate() error   { return nil }
