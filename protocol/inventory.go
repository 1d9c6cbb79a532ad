package protocol

import "fmt"

// Size is a compartment's size class.
type Size string

// Size classes, smallest first.
const (
	SizeS Size = "S"
	SizeM Size = "M"
	SizeL Size = "L"
)

// Rank orders sizes: S < M < L. An unknown size ranks 0.
func (s Size) Rank() int {
	switch s {
	case SizeS:
		return 1
	case SizeM:
		return 2
	case SizeL:
		return 3
	}
	return 0
}

// Valid reports whether s is a known size class.
func (s Size) Valid() bool { return s.Rank() > 0 }

// Zone is a compartment's temperature zone.
type Zone string

// Temperature zones. Cool is for produce hurt by cold (bananas, tomatoes): about 10–13 °C.
const (
	ZoneFrozen  Zone = "frozen"
	ZoneChilled Zone = "chilled"
	ZoneCool    Zone = "cool"
	ZoneAmbient Zone = "ambient"
)

// Zones lists every zone, coldest first.
func Zones() []Zone { return []Zone{ZoneFrozen, ZoneChilled, ZoneCool, ZoneAmbient} }

// Valid reports whether z is a known zone.
func (z Zone) Valid() bool {
	switch z {
	case ZoneFrozen, ZoneChilled, ZoneCool, ZoneAmbient:
		return true
	}
	return false
}

// Board is one lock control board of a site.
type Board struct {
	// Address is the board's bus address (kerong-cu16: 0–15; bcc8a: 1–32; modbus-rtu: 1–247).
	Address int `json:"address"`
	// Profile is the board's serial dialect ("kerong-cu16", "bcc8a", "modbus-rtu") or "gpio".
	Profile string `json:"profile"`
	// Locks is how many locks the board drives.
	Locks int `json:"locks"`
}

// Compartment is one door of a locker bank, as the edge knows it.
type Compartment struct {
	// Number is the door number printed on the locker, unique within the site, from 1.
	Number int  `json:"number"`
	Size   Size `json:"size"`
	Zone   Zone `json:"zone"`
	// HeightCM is the height of the compartment's floor above the ground, for
	// accessibility: orders flagged accessible go only below 120 cm.
	HeightCM int `json:"height_cm"`
	// Board and Lock say which board output drives the door.
	Board int `json:"board"`
	Lock  int `json:"lock"`
}

func (c Compartment) validate(f string) error {
	switch {
	case c.Number < 1:
		return fieldErr(f+".number", "must be at least 1")
	case !c.Size.Valid():
		return fieldErr(f+".size", "unknown size %q (want S, M or L)", c.Size)
	case !c.Zone.Valid():
		return fieldErr(f+".zone", "unknown zone %q", c.Zone)
	case c.HeightCM < 0:
		return fieldErr(f+".height_cm", "must not be negative")
	case c.Board < 0 || c.Lock < 0:
		return fieldErr(f+".board", "board and lock must not be negative")
	}
	return nil
}

// Status is the retained presence of an edge on [ChanStatus]. The offline form is
// registered as the edge's MQTT Last Will, so the broker announces an edge that vanishes.
type Status struct {
	// Online is true in the message an edge publishes on connect, false in its Last Will
	// and in the message it publishes on a clean shutdown.
	Online bool `json:"online"`
	// Software is the edge's software version.
	Software string `json:"software,omitempty"`
}

func (Status) MessageType() Type { return TypeStatus }
func (s Status) Validate() error { return nil }

// Birth is what an edge publishes on every connect: who it is and what it has, so the
// cloud can reconcile after any outage.
type Birth struct {
	// Protocol is the protocol revision the edge speaks ([Revision], "1.1"); absent
	// means 1.0.
	Protocol     string        `json:"protocol,omitempty"`
	Software     string        `json:"software"`
	Boards       []Board       `json:"boards"`
	Compartments []Compartment `json:"compartments"`
	// DesiredVersion is the last desired-state version the edge applied (0: none).
	DesiredVersion uint64 `json:"desired_version"`
	// OutboxHighWater is the sequence of the last event the edge has written to its
	// outbox; events up to it will arrive.
	OutboxHighWater uint64 `json:"outbox_high_water"`
}

func (Birth) MessageType() Type { return TypeBirth }

func (b Birth) Validate() error {
	if b.Software == "" {
		return fieldErr("software", "required")
	}
	if len(b.Compartments) == 0 {
		return fieldErr("compartments", "required: at least one compartment")
	}
	seen := map[int]bool{}
	for i, c := range b.Compartments {
		f := fmt.Sprintf("compartments[%d]", i)
		if err := c.validate(f); err != nil {
			return err
		}
		if seen[c.Number] {
			return fieldErr(f+".number", "duplicate compartment %d", c.Number)
		}
		seen[c.Number] = true
	}
	for i, bd := range b.Boards {
		if bd.Profile == "" {
			return fieldErr(fmt.Sprintf("boards[%d].profile", i), "required")
		}
	}
	return nil
}

// Telemetry is an edge's periodic health report on [ChanTelemetry].
type Telemetry struct {
	UptimeSeconds float64 `json:"uptime_seconds"`
	// OutboxDepth is how many events await the cloud's acknowledgement.
	OutboxDepth int           `json:"outbox_depth"`
	Zones       []ZoneReading `json:"zones"`
	Boards      []BoardHealth `json:"boards"`
	// DesiredVersion is the last desired-state version the edge applied, as in [Birth]
	// (0 or absent: not reported, as by edges of protocol 1.0). An edge publishes
	// telemetry at once after applying a desired message, so that the cloud learns
	// promptly that a new pickup code works at the kiosk before telling the resident.
	DesiredVersion uint64 `json:"desired_version,omitempty"`
}

// ZoneReading is one zone's air temperature.
type ZoneReading struct {
	Zone Zone `json:"zone"`
	// Celsius is nil when the probe failed.
	Celsius *float64 `json:"celsius"`
	// Excursion is true while the zone is in a temperature alarm.
	Excursion bool `json:"excursion,omitempty"`
}

// BoardHealth is one lock board's health.
type BoardHealth struct {
	Address int  `json:"address"`
	Online  bool `json:"online"`
	// Errors counts failed exchanges (timeouts, garbled replies) since the edge started.
	Errors uint64 `json:"errors"`
}

func (Telemetry) MessageType() Type { return TypeTelemetry }

func (t Telemetry) Validate() error {
	for i, z := range t.Zones {
		if !z.Zone.Valid() {
			return fieldErr(fmt.Sprintf("zones[%d].zone", i), "unknown zone %q", z.Zone)
		}
	}
	if t.OutboxDepth < 0 {
		return fieldErr("outbox_depth", "must not be negative")
	}
	return nil
}
