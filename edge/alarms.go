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
// warm all along, and food safety errs on the side of not handing over. Every longer gap
// also counts, whole, as time without a reading (Reservation.MissingSeconds).
const maxGap = 2 * time.Minute

// checkpointEvery is how often a zone's reading is written to the store although it is
// cold, so that after a crash the edge knows to within this much when it last had a
// reading (warm readings are written every round). Writing every cold reading would
// wear flash storage; once a minute, all zones in one commit, does not.
const checkpointEvery = time.Minute

type zoneState struct {
	last       time.Time
	celsius    float64
	known      bool
	saved      time.Time // when a reading of the zone was last written (ZoneReading)
	aboveSince time.Time // zero: not above the alarm threshold
	alarmed    bool      // temperature_excursion raised for this excursion
	// No order held in the zone has a peak below peakFloor (when peakKnown), so a
	// reading at or below it changes no record and needs no write. A load forgets it
	// (peakEpoch counts loads, so that a round that began before one does not set it).
	peakFloor float64
	peakKnown bool
	peakEpoch uint64
}

// zoneRound is what one valid reading of a zone does to the orders held there.
type zoneRound struct {
	zone    protocol.Zone
	celsius float64
	above   float64   // seconds above the limit since the previous reading (0: none)
	gap     bool      // the reading ends a gap longer than maxGap ...
	gapFrom time.Time // ... which began here (zero: the zone was never read)
	peak    bool      // the reading may be some order's new peak
	epoch   uint64    // the zone's peakEpoch when the round began
}

// record applies one round to the cold-chain record of r, held since r.LoadedAt; it
// reports whether anything changed. Nothing before loading counts: a stretch of the hold
// without a reading begins at loading or at a reading, and counts as missing, whole,
// when it is longer than maxGap.
func (r *Reservation) record(z zoneRound, now time.Time) bool {
	held := now.Sub(r.LoadedAt).Seconds()
	if held < 0 {
		return false
	}
	changed := false
	if z.above > 0 && held > 0 {
		r.OutSeconds += min(z.above, held)
		changed = true
	}
	if d := now.Sub(later(z.gapFrom, r.LoadedAt)); z.gap && d > maxGap {
		r.MissingSeconds += d.Seconds()
		changed = true
	}
	if z.peak && (r.PeakC == nil || z.celsius > *r.PeakC) {
		c := z.celsius
		r.PeakC = &c
		changed = true
	}
	return changed
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// zoneLast is a zone's last valid reading, as the cold chain saw it.
type zoneLast struct {
	at      time.Time // zero: none
	celsius float64
}

// zoneLasts returns every zone's last valid reading. Callers take it before their
// transaction: mu is never held inside one.
func (l *Locker) zoneLasts() map[protocol.Zone]zoneLast {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[protocol.Zone]zoneLast{}
	for z, zs := range l.zones {
		out[z] = zoneLast{at: zs.last, celsius: zs.celsius}
	}
	return out
}

// loadedPeak starts the peak of an order loaded now with the zone's last reading, if it
// is recent (last: the zone's entry of zoneLasts).
func loadedPeak(last zoneLast, now time.Time) *float64 {
	if last.at.IsZero() || now.Sub(last.at) > maxGap {
		return nil
	}
	c := last.celsius
	return &c
}

// forgetPeak makes the next reading of zone z look at every record (an order was loaded).
func (l *Locker) forgetPeak(z protocol.Zone) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if zs := l.zones[z]; zs != nil {
		zs.peakKnown = false
		zs.peakEpoch++
	}
}

// closeColdChain closes r's cold-chain record at now (its pickup or return) and returns it
// for the event; nil if nothing was ever loaded. last is r's zone's entry of zoneLasts.
// The stretch since the last reading (or loading) counts like any other: missing if it
// is longer than maxGap, else above the limit if that reading was warm.
func (r *Reservation) closeColdChain(last zoneLast, limitC float64, now time.Time) *protocol.ColdChain {
	if r.LoadedAt.IsZero() {
		return nil
	}
	switch d := now.Sub(later(last.at, r.LoadedAt)); {
	case d > maxGap:
		r.MissingSeconds += d.Seconds()
	case d > 0 && !last.at.IsZero() && last.celsius > limitC:
		r.OutSeconds += d.Seconds()
	}
	cc := &protocol.ColdChain{From: r.LoadedAt.UTC(), To: now.UTC(), LimitC: limitC,
		AboveSeconds: r.OutSeconds, MissingSeconds: r.MissingSeconds}
	if r.PeakC != nil {
		c := *r.PeakC
		cc.PeakC = &c
	}
	return cc
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
// order's cold-chain record (time above its zone's limit, compromised past its budget;
// its peak; the time without a reading).
func (l *Locker) Temperatures(ctx context.Context, readings []hw.Reading) {
	now := l.clock.Now()
	var rounds []zoneRound
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
		zr := zoneRound{zone: z, celsius: rd.Celsius, peak: !zs.peakKnown || rd.Celsius > zs.peakFloor, epoch: zs.peakEpoch}
		if dt := now.Sub(zs.last); zs.last.IsZero() || dt > maxGap {
			zr.gap, zr.gapFrom = true, zs.last
		}
		if !zs.last.IsZero() && rd.Celsius > lim.LimitC {
			if dt := now.Sub(zs.last); dt > 0 && (dt <= maxGap || zs.celsius > lim.LimitC) {
				zr.above = dt.Seconds()
			}
		}
		if zr.gap || zr.above > 0 || zr.peak {
			rounds = append(rounds, zr)
		}
		// Remember warm readings (and the return to cold) across restarts, so that the
		// time the edge was down is credited like any other gap, and a cold one every
		// checkpointEvery, so that it counts as missing no longer than it was.
		if warm, wasWarm := rd.Celsius > lim.LimitC, !zs.last.IsZero() && zs.celsius > lim.LimitC; warm || wasWarm || now.Sub(zs.saved) >= checkpointEvery {
			persist = append(persist, ZoneReading{Zone: z, At: now, Celsius: rd.Celsius})
			zs.saved = now
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
	if len(rounds) == 0 && len(alarms) == 0 && len(persist) == 0 {
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
		if len(rounds) == 0 {
			return nil
		}
		var changed []Reservation
		err := tx.Reservations(func(r Reservation) bool {
			if r.LoadedAt.IsZero() || !r.State.Holds() {
				return true
			}
			credited := false
			for _, zr := range rounds {
				if zr.zone == r.Zone && r.record(zr, now) {
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
	l.mu.Lock()
	for _, zr := range rounds {
		if zs := l.zones[zr.zone]; zr.peak && zs.peakEpoch == zr.epoch {
			zs.peakFloor, zs.peakKnown = zr.celsius, true
		}
	}
	l.mu.Unlock()
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
