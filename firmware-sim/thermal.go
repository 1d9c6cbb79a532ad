package sim

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Zone kinds. Each compartment belongs to exactly one zone; one zone per kind.
const (
	ZoneFrozen  = "frozen"
	ZoneChilled = "chilled"
	ZoneCool    = "cool"
	ZoneAmbient = "ambient"
)

// ZoneKinds lists the zone kinds in a stable order.
var ZoneKinds = []string{ZoneFrozen, ZoneChilled, ZoneCool, ZoneAmbient}

// Setpoint is the air temperature a refrigerated zone's controller aims for;
// ambient zones have none (ok false).
func Setpoint(kind string) (c float64, ok bool) {
	switch kind {
	case ZoneFrozen:
		return -18, true
	case ZoneChilled:
		return 4, true
	case ZoneCool:
		return 12, true
	}
	return 0, false
}

// ThermalModel holds the first-order rates of the zone model (per second,
// as fractions of the temperature difference). The defaults give a chilled
// zone a compressor duty cycle of roughly 10–15 % at 25 °C outside, a rise
// from 4 °C to 8 °C in about 20 minutes of power cut, and about 2 °C per
// minute while a door stays open.
type ThermalModel struct {
	Leak       float64       // toward outside, through the insulation
	AmbientBox float64       // an ambient (unrefrigerated) zone toward outside
	DoorOpen   float64       // extra, per open door of the zone, toward outside
	Cooling    float64       // toward the evaporator while the compressor runs
	EvapBelow  float64       // evaporator temperature below the setpoint, °C
	Hysteresis float64       // compressor starts above setpoint+H, stops below setpoint-H
	Step       time.Duration // integration step
}

// DefaultThermalModel returns the model described on ThermalModel.
func DefaultThermalModel() ThermalModel {
	return ThermalModel{
		Leak:       1.0 / 7200,
		AmbientBox: 1.0 / 1800,
		DoorOpen:   1.0 / 600,
		Cooling:    1.0 / 900,
		EvapBelow:  20,
		Hysteresis: 1,
		Step:       time.Second,
	}
}

type zone struct {
	kind       string
	setpoint   float64
	cooled     bool
	temp       float64
	compressor bool
	probeFail  bool
	last       time.Time
	doorsOpen  int // kept current by the world
	members    []int
	runSeconds float64 // compressor run time, for the duty cycle
	seconds    float64
}

// advance integrates the zone up to now.
func (z *zone) advance(m ThermalModel, now time.Time, outside float64, powered bool) {
	if !now.After(z.last) {
		return
	}
	for z.last.Before(now) {
		dt := min(m.Step, now.Sub(z.last))
		s := dt.Seconds()
		k := m.Leak
		if !z.cooled {
			k = m.AmbientBox
		}
		d := (outside - z.temp) * (k + float64(z.doorsOpen)*m.DoorOpen)
		if z.cooled {
			if !powered {
				z.compressor = false
			} else if z.temp > z.setpoint+m.Hysteresis {
				z.compressor = true
			} else if z.temp < z.setpoint-m.Hysteresis {
				z.compressor = false
			}
			if z.compressor {
				d += (z.setpoint - m.EvapBelow - z.temp) * m.Cooling
				z.runSeconds += s
			}
		}
		// The explicit Euler step is stable while every rate*Step << 1.
		z.temp += d * s
		z.seconds += s
		z.last = z.last.Add(dt)
	}
}

// ParseZones parses a zone map such as "chilled:1-8,frozen:9-12,ambient:13-16"
// over compartments 1..n (bus-wide numbering). Compartments not named are
// ambient. An empty spec puts every compartment in the chilled zone.
func ParseZones(spec string, n int) ([]string, error) {
	out := make([]string, n)
	fill := ZoneAmbient
	if strings.TrimSpace(spec) == "" {
		fill = ZoneChilled
	}
	for i := range out {
		out[i] = fill
	}
	if strings.TrimSpace(spec) == "" {
		return out, nil
	}
	seen := make([]bool, n)
	for _, part := range strings.Split(spec, ",") {
		kind, ranges, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok || !slices.Contains(ZoneKinds, kind) {
			return nil, fmt.Errorf("sim: zones %q: want kind:range with kind one of %v", part, ZoneKinds)
		}
		for _, r := range strings.Split(ranges, "+") {
			lo, hi, err := parseRange(r)
			if err != nil {
				return nil, fmt.Errorf("sim: zones %q: %w", part, err)
			}
			if lo < 1 || hi > n || lo > hi {
				return nil, fmt.Errorf("sim: zones %q: range %d-%d outside compartments 1-%d", part, lo, hi, n)
			}
			for c := lo; c <= hi; c++ {
				if seen[c-1] {
					return nil, fmt.Errorf("sim: zones: compartment %d named twice", c)
				}
				seen[c-1] = true
				out[c-1] = kind
			}
		}
	}
	return out, nil
}

func parseRange(s string) (lo, hi int, err error) {
	a, b, isRange := strings.Cut(strings.TrimSpace(s), "-")
	if lo, err = strconv.Atoi(a); err != nil {
		return 0, 0, fmt.Errorf("bad range %q", s)
	}
	if !isRange {
		return lo, lo, nil
	}
	if hi, err = strconv.Atoi(b); err != nil {
		return 0, 0, fmt.Errorf("bad range %q", s)
	}
	return lo, hi, nil
}

// round1 keeps JSON readable; the model keeps full precision.
func round2(f float64) float64 { return math.Round(f*100) / 100 }
