package protocol_test

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	"github.com/larder-lockers/larder/protocol"
)

// The example site key of the golden files and of asyncapi.yaml, so that an implementer
// elsewhere can reproduce every digest in them. Real site keys are 32 random bytes or more.
var exampleSiteKey = []byte("larder-example-site-key-0123456789abcdef")

// The secrets behind the example digests.
const (
	exampleCode         = "48291537"
	exampleOrder        = "ord-1042"
	exampleSecondFactor = "4711"
	exampleCredential   = "drv-7c1e-55aa"
)

// example is one golden message: testdata/<name>.json is its encoding, pretty-printed.
type example struct {
	name string
	h    protocol.Header
	body protocol.Body
}

// exampleTime is the fixed clock of the examples: ts of the i-th message.
func exampleTime(minutes int) time.Time {
	return time.Date(2026, 5, 4, 17, 30, 0, 0, time.UTC).Add(time.Duration(minutes) * time.Minute)
}

// exampleID is a fixed id in the shape of protocol.NewID, derived from a name.
func exampleID(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:16])
}

func ptr[T any](v T) *T { return &v }

// examples returns one message of every type, event kind, command kind and command state.
// Renaming or deleting one leaves its old golden file in testdata, which
// TestEveryGoldenDecodes keeps decoding forever.
func examples() []example {
	codeDigest := protocol.CodeDigest(exampleSiteKey, exampleCode)
	factorDigest := protocol.SecondFactorDigest(exampleSiteKey, exampleOrder, exampleSecondFactor)
	credDigest := protocol.CredentialDigest(exampleSiteKey, exampleCredential)
	expires := time.Date(2026, 5, 6, 21, 0, 0, 0, time.UTC)

	var exs []example
	add := func(name string, seq uint64, body protocol.Body) {
		exs = append(exs, example{
			name: name,
			h:    protocol.Header{ID: exampleID(name), Seq: seq, Time: exampleTime(len(exs))},
			body: body,
		})
	}

	add("status", 0, protocol.Status{Online: true, Software: "larder-edge 1.0.0"})
	add("status-offline", 0, protocol.Status{Online: false})
	birth := protocol.Birth{
		Protocol: protocol.Revision,
		Software: "larder-edge 1.1.0",
		Boards: []protocol.Board{
			{Address: 0, Profile: "kerong-cu16", Locks: 16},
			{Address: 1, Profile: "bcc8a", Locks: 8},
		},
		Compartments: []protocol.Compartment{
			{Number: 1, Size: protocol.SizeS, Zone: protocol.ZoneChilled, HeightCM: 40, Board: 0, Lock: 1},
			{Number: 2, Size: protocol.SizeM, Zone: protocol.ZoneFrozen, HeightCM: 80, Board: 0, Lock: 2},
			{Number: 3, Size: protocol.SizeL, Zone: protocol.ZoneAmbient, HeightCM: 130, Board: 1, Lock: 1},
			{Number: 4, Size: protocol.SizeM, Zone: protocol.ZoneCool, HeightCM: 95, Board: 1, Lock: 2},
		},
		DesiredVersion:  42,
		OutboxHighWater: 1207,
	}
	add("birth", 0, birth)

	seq := uint64(1208)
	event := func(e protocol.Event) {
		add("event-"+string(e.Kind), seq, e)
		seq++
	}
	event(protocol.Event{Kind: protocol.EventDoorOpened, Credential: protocol.CredPickup, Compartment: 1, Generation: 9, Order: exampleOrder})
	event(protocol.Event{Kind: protocol.EventDoorClosed, Credential: protocol.CredNone, Compartment: 1, Generation: 9})
	event(protocol.Event{Kind: protocol.EventLoaded, Credential: protocol.CredDriver, Compartment: 2, Generation: 4, Order: "ord-1043"})
	event(protocol.Event{Kind: protocol.EventPickedUp, Credential: protocol.CredPickup, Order: exampleOrder})
	event(protocol.Event{Kind: protocol.EventReassigned, Credential: protocol.CredDriver, Compartment: 4, To: 2, Generation: 5, Order: "ord-1044", Reason: "jammed"})
	event(protocol.Event{Kind: protocol.EventUncommandedOpen, Credential: protocol.CredNone, Compartment: 3})
	event(protocol.Event{Kind: protocol.EventDoorLeftOpen, Credential: protocol.CredNone, Compartment: 3, Seconds: 120})
	event(protocol.Event{Kind: protocol.EventLockJammed, Credential: protocol.CredOpsRemote, Compartment: 4, Reason: "door never showed open"})
	event(protocol.Event{Kind: protocol.EventBoardOffline, Credential: protocol.CredNone, Board: ptr(0), Reason: "no reply"})
	event(protocol.Event{Kind: protocol.EventBoardOnline, Credential: protocol.CredNone, Board: ptr(0)})
	event(protocol.Event{Kind: protocol.EventTempExcursion, Credential: protocol.CredNone, Zone: protocol.ZoneChilled, Celsius: ptr(9.5), Seconds: 900})
	event(protocol.Event{Kind: protocol.EventCodeLockout, Credential: protocol.CredNone, Seconds: 300, Reason: "5 wrong codes"})
	event(protocol.Event{Kind: protocol.EventOrderCompromised, Credential: protocol.CredSystem, Order: "ord-1043", Compartment: 2, Seconds: 2700, Reason: "zone faulty"})
	event(protocol.Event{Kind: protocol.EventExpiredRemoved, Credential: protocol.CredOpsLocal, Order: "ord-1039", Compartment: 3})
	event(protocol.Event{Kind: protocol.EventHelpRequested, Credential: protocol.CredNone})

	add("telemetry", 0, protocol.Telemetry{
		UptimeSeconds: 86400.5,
		OutboxDepth:   3,
		Zones: []protocol.ZoneReading{
			{Zone: protocol.ZoneFrozen, Celsius: ptr(-19.25)},
			{Zone: protocol.ZoneChilled, Celsius: ptr(9.5), Excursion: true},
			{Zone: protocol.ZoneCool, Celsius: nil},
			{Zone: protocol.ZoneAmbient, Celsius: ptr(21.0)},
		},
		Boards: []protocol.BoardHealth{
			{Address: 0, Online: true, Errors: 2},
			{Address: 1, Online: false, Errors: 41},
		},
	})

	openOps := exampleID("command-open-ops")
	ack := func(st protocol.CommandState, code protocol.ErrorCode, msg string) {
		add("command_ack-"+strings.ToLower(string(st)), 0, protocol.CommandAck{CommandID: openOps, State: st, Error: code, Message: msg})
	}
	ack(protocol.StateQueued, "", "")
	ack(protocol.StateInProgress, "", "")
	ack(protocol.StateSucceeded, "", "")
	ack(protocol.StateFailed, protocol.ErrJammed, "latch pulsed 3 times, door never showed open")
	ack(protocol.StateTimedOut, protocol.ErrBoardOffline, "board 0 did not answer within 2s")
	ack(protocol.StateRejected, protocol.ErrExpired, "")

	add("desired_get", 0, protocol.DesiredGet{Have: 42, Reason: "gap: got version 44"})

	add("desired-full", 42, protocol.Desired{
		Version: 42,
		Full:    true,
		Reservations: []protocol.Reservation{
			{
				Order:              exampleOrder,
				Slots:              []protocol.Slot{{Compartment: 1, Generation: 9, Size: protocol.SizeS}},
				CodeDigest:         codeDigest,
				SecondFactorDigest: factorDigest,
				ExpiresAt:          expires,
				MaxExpiresAt:       expires.Add(2 * time.Hour),
				Zone:               protocol.ZoneChilled,
				BudgetSeconds:      1800,
			},
			{
				Order: "ord-1043",
				Slots: []protocol.Slot{
					{Compartment: 2, Generation: 4, Size: protocol.SizeM},
					{Compartment: 4, Generation: 5, Size: protocol.SizeM},
				},
				CodeDigest:         protocol.CodeDigest(exampleSiteKey, "73016428"),
				SecondFactorDigest: protocol.SecondFactorDigest(exampleSiteKey, "ord-1043", "0815"),
				ExpiresAt:          expires,
				Zone:               protocol.ZoneFrozen,
				BudgetSeconds:      900,
				Accessible:         true,
			},
		},
		Credentials: []protocol.LoadingCredential{
			{ID: "cred-8", Digest: credDigest, Driver: "driver-31", ExpiresAt: time.Date(2026, 5, 4, 22, 0, 0, 0, time.UTC)},
		},
	})
	add("desired-delta", 43, protocol.Desired{
		Version: 43,
		Reservations: []protocol.Reservation{{
			Order:              "ord-1045",
			Slots:              []protocol.Slot{{Compartment: 3, Generation: 12, Size: protocol.SizeL}},
			CodeDigest:         protocol.CodeDigest(exampleSiteKey, "91537260"),
			SecondFactorDigest: protocol.SecondFactorDigest(exampleSiteKey, "ord-1045", "2202"),
			ExpiresAt:          expires,
			Zone:               protocol.ZoneAmbient,
		}},
		Cancel: []string{"ord-1038"},
		Revoke: []string{"cred-7"},
	})

	cmdExpires := exampleTime(60)
	command := func(name string, c protocol.Command) {
		c.ID = exampleID(name)
		c.ExpiresAt = cmdExpires
		add(name, 0, c) // the envelope id is the command id (add derives both from name)
	}
	command("command-open-ops", protocol.Command{Kind: protocol.CmdOpen, Compartment: 4, Purpose: protocol.PurposeOps, Reason: "resident called: bag stuck", Actor: "ops-anna"})
	command("command-open-loading", protocol.Command{Kind: protocol.CmdOpen, Compartment: 2, Purpose: protocol.PurposeLoading, Order: "ord-1043", Generation: 4, Actor: "driver-31"})
	command("command-set_out_of_service", protocol.Command{Kind: protocol.CmdOutOfService, Compartment: 4, Reason: "latch jammed", Actor: "ops-anna"})
	command("command-set_in_service", protocol.Command{Kind: protocol.CmdInService, Compartment: 4, Actor: "ops-anna"})
	command("command-resync", protocol.Command{Kind: protocol.CmdResync, Actor: "ops-anna"})

	add("event_ack", 0, protocol.EventAck{Seq: 1222})
	add("event_ack-rejected", 0, protocol.EventAck{Seq: 1224, Rejected: []protocol.Rejection{
		{Seq: 1223, Error: protocol.ErrInvalidEvent, Field: "body.order", Message: "required for picked_up"},
	}})
	// A 1.0 edge's birth has no protocol field; a 1.1 cloud accepts it as ever.
	birth10 := birth
	birth10.Protocol, birth10.Software = "", "larder-edge 1.0.0"
	add("birth-1.0", 0, birth10)

	// The cold-chain record rides on picked_up and expired_removed (protocol 1.1); the
	// examples above are those events as 1.0 edges send them.
	loaded := time.Date(2026, 5, 4, 9, 12, 0, 0, time.UTC)
	add("event-picked_up-cold_chain", 1223, protocol.Event{Kind: protocol.EventPickedUp, Credential: protocol.CredPickup, Order: exampleOrder,
		ColdChain: &protocol.ColdChain{From: loaded, To: exampleTime(len(exs)), LimitC: 8, AboveSeconds: 420, PeakC: ptr(9.25), MissingSeconds: 0}})
	add("event-expired_removed-cold_chain", 1224, protocol.Event{Kind: protocol.EventExpiredRemoved, Credential: protocol.CredDriver, Order: "ord-1039", Compartment: 3,
		ColdChain: &protocol.ColdChain{From: loaded, To: exampleTime(len(exs)), LimitC: -15, AboveSeconds: 0, PeakC: ptr(-17.5), MissingSeconds: 600}})
	// Telemetry with the applied desired version (added after protocol 1.0).
	add("telemetry-desired_version", 0, protocol.Telemetry{
		UptimeSeconds:  3600,
		OutboxDepth:    0,
		Zones:          []protocol.ZoneReading{{Zone: protocol.ZoneChilled, Celsius: ptr(3.5)}},
		Boards:         []protocol.BoardHealth{{Address: 0, Online: true}},
		DesiredVersion: 43,
	})
	// Kinds added after 1.0 come last, so that the examples before them keep their times.
	add("event-outage", 1225, protocol.Event{Kind: protocol.EventOutage, Credential: protocol.CredNone, Seconds: 5400})
	return exs
}
