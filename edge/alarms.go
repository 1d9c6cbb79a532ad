package edge

import (
	"context"
	"time"

	"github.com/larder-lockers/larder/edge/hw"
	"github.com/larder-lockers/larder/protocol"
)

// ZoneLimits are a zone's temperature alarm and cold-chain limits. Probes measure air,
// not food, so the alarm has a duration and the cold chain a budget.
type ZoneLimits struct {
	// AlarmAboveC and AlarmAfter: temperature_excursion when the air stays above
	// AlarmAboveC for AlarmAfter. Zero AlarmAfter disables the alarm.
	AlarmAboveC float64       `json:"alarm_above_c"`
	AlarmAfter  time.Duration `json:"alarm_after"`
	// LimitC is the cold-chain limit: time above it counts against an order's budget.
	LimitC float64 `json:"limit_c"`
	// Budget applies to orders whose reservation carries no budget (0 = none).
	Budget time.Duration `json:"budget"`
}

// DefaultZoneLimits are the limits docs/food-safety.md explains: alarm a chilled zone
// above 7 °C for 10 min (a margin over the 5 °C target), count chilled time above 8 °C
// (the UK legal maximum) against a 30 min budget and frozen time above −15 °C (the
// warmest brief rise tolerated in distribution) against 15 min. The frozen alarm (−15 °C
// for 10 min), the cool zone (produce hurt by cold, kept near 10–13 °C: alarm above
// 16 °C for 30 min) and ambient (alarm above 32 °C for 60 min, the danger zone's hot end)
// are choices made here; budgets for cool and ambient come from the reservation only.
var DefaultZoneLimits = map[protocol.Zone]ZoneLimits{
	protocol.ZoneFrozen:  {AlarmAboveC: -15, AlarmAfter: 10 * time.Minute, LimitC: -15, Budget: 15 * time.Minute},
	protocol.ZoneChilled: {AlarmAboveC: 7, AlarmAfter: 10 * time.Minute, LimitC: 8, Budget: 30 * time.Minute},
	protocol.ZoneCool:    {AlarmAboveC: 16, AlarmAfter: 30 * time.Minute, LimitC: 16},
	protocol.ZoneAmbient: {AlarmAboveC: 32, AlarmAfter: 60 * time.Minute, LimitC: 32},
}

// maxGap is the longest interval between two readings that counts as continuous. A
// longer gap (the edge was down, the probe failed) is credited to the cold chain only
// when the readings on both sides of it are above the limit: the air was most likely
// warm all along, and food safety errs on the side of not handing over.
const maxGap = 2 * time.Minute

type zoneState struct {
	last       time.Time
	celsius    float64
	known      bool
	aboveSince time.Time // zero: not above the alarm threshold
	alarmed    bool      // temperature_excursion raised for this excursion
}

// ZoneStatus is a zone's last reading for telemetry.
type ZoneStatus struct {
	Zone      protocol.Zone
	Celsius   float64
	Known     bool
	Excursion bool
}

// Zones returns every configured zone's last reading.
func (l *Locker) Zones() []ZoneStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []ZoneStatus
	for _, z := range protocol.Zones() {
		if zs, ok := l.zones[z]; ok {
			out = append(out, ZoneStatus{Zone: z, Celsius: zs.celsius, Known: zs.known, Excursion: zs.alarmed})
		}
	}
	return out
}

// Temperatures applies one round of zone readings: the excursion alarm and each loaded
// order's cold-chain record (time above its zone's limit, compromised past its budget).
func (l *Locker) Temperatures(ctx context.Context, readings []hw.Reading) {
	now := l.clock.Now()
	type credit struct {
		zone protocol.Zone
		dt   float64
	}
	var credits []credit
	var alarms []protocol.Event
	var persist []ZoneReading
	l.mu.Lock()
	for _, rd := range readings {
		z := protocol.Zone(rd.Zone)
		lim, ok := l.limits[z]
		if !ok {
			continue
		}
		zs := l.zones[z]
		if zs == nil {
			zs = &zoneState{}
			l.zones[z] = zs
		}
		if rd.Err != nil {
			zs.known = false // last and celsius stay: the last known reading
			continue
		}
		l.m.ZoneTemp.WithLabelValues(string(z)).Set(rd.Celsius)
		if !zs.last.IsZero() && rd.Celsius > lim.LimitC {
			if dt := now.Sub(zs.last); dt > 0 && (dt <= maxGap || zs.celsius > lim.LimitC) {
				credits = append(credits, credit{z, dt.Seconds()})
			}
		}
		// Remember warm readings (and the return to cold) across restarts, so that the
		// time the edge was down is credited like any other gap. Cold readings are not
		// written: flash storage wears.
		if warm, wasWarm := rd.Celsius > lim.LimitC, !zs.last.IsZero() && zs.celsius > lim.LimitC; warm || wasWarm {
			persist = append(persist, ZoneReading{Zone: z, At: now, Celsius: rd.Celsius})
		}
		zs.last, zs.celsius, zs.known = now, rd.Celsius, true
		if lim.AlarmAfter > 0 && rd.Celsius > lim.AlarmAboveC {
			if zs.aboveSince.IsZero() {
				zs.aboveSince = now
			}
			if d := now.Sub(zs.aboveSince); !zs.alarmed && d >= lim.AlarmAfter {
				zs.alarmed = true
				c := rd.Celsius
				alarms = append(alarms, protocol.Event{Kind: protocol.EventTempExcursion, Credential: protocol.CredNone,
					Zone: z, Celsius: &c, Seconds: d.Seconds()})
			}
		} else {
			zs.aboveSince, zs.alarmed = time.Time{}, false
		}
	}
	l.mu.Unlock()
	if len(credits) == 0 && len(alarms) == 0 && len(persist) == 0 {
		return
	}
	var compromised []string
	err := l.cfg.Store.Update(func(tx Tx) error {
		compromised = compromised[:0]
		for _, zr := range persist {
			if err := tx.PutZoneReading(zr); err != nil {
				return err
			}
		}
		for _, e := range alarms {
			if err := enqueue(tx, now, e); err != nil {
				return err
			}
		}
		if len(credits) == 0 {
			return nil
		}
		var changed []Reservation
		err := tx.Reservations(func(r Reservation) bool {
			if r.LoadedAt.IsZero() || !r.State.Holds() {
				return true
			}
			credited := false
			for _, c := range credits {
				if c.zone == r.Zone {
					r.OutSeconds += c.dt
					credited = true
				}
			}
			if credited {
				changed = append(changed, r)
			}
			return true
		})
		if err != nil {
			return err
		}
		for _, r := range changed {
			budget := float64(r.BudgetSeconds)
			if budget == 0 {
				budget = l.limits[r.Zone].Budget.Seconds()
			}
			if budget > 0 && r.OutSeconds > budget && !r.Compromised {
				r.Compromised = true
				compromised = append(compromised, r.Order)
				if err := enqueue(tx, now, protocol.Event{Kind: protocol.EventOrderCompromised, Credential: protocol.CredNone,
					Order: r.Order, Zone: r.Zone, Seconds: r.OutSeconds}); err != nil {
					return err
				}
			}
			if err := tx.PutReservation(r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		l.log.Error("recording temperatures failed", "err", err)
		return
	}
	for _, z := range alarms {
		l.log.Warn("temperature excursion", "zone", string(z.Zone), "celsius", *z.Celsius)
	}
	for _, o := range compromised {
		l.log.Warn("order compromised: out of temperature past its budget", "order", o)
	}
	l.notify()
}

// Tick runs the timers: doors left open, sessions that timed out, expired inbox ids and
// the gauges. Call it about once a second.
func (l *Locker) Tick(ctx context.Context) {
	now := l.clock.Now()
	var left []protocol.Event
	l.mu.Lock()
	for c, since := range l.openSince {
		if d := now.Sub(since); d >= l.cfg.DoorLeftOpen && !l.leftOpen[c] {
			l.leftOpen[c] = true
			left = append(left, protocol.Event{Kind: protocol.EventDoorLeftOpen, Credential: protocol.CredNone,
				Compartment: c, Seconds: d.Seconds()})
		}
	}
	l.mu.Unlock()
	if len(left) > 0 {
		err := l.cfg.Store.Update(func(tx Tx) error {
			for _, e := range left {
				if err := enqueue(tx, now, e); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			l.log.Error("recording door left open failed", "err", err)
		}
		for _, e := range left {
			l.log.Warn("door left open", "compartment", e.Compartment)
		}
		l.notify()
	}
	l.settleAll(ctx, true)
	l.aliveTick(now)
	l.refreshGauges()
}
