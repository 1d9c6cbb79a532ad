package sim

import "time"

// State is a snapshot of the world, as served by GET /v1/state.
type State struct {
	Profile      string             `json:"profile"`
	Powered      bool               `json:"powered"`
	OutsideC     float64            `json:"outside_c"`
	GarbleRate   float64            `json:"garble_rate"`
	DropRate     float64            `json:"drop_rate"`
	Boards       []BoardState       `json:"boards"`
	Compartments []CompartmentState `json:"compartments"`
	Zones        []ZoneState        `json:"zones"`
}

// BoardState is one board of the bus.
type BoardState struct {
	Address   int  `json:"address"`
	Online    bool `json:"online"` // would answer a command now
	Unplugged bool `json:"unplugged"`
	Booting   bool `json:"booting"`
	SlowMS    int  `json:"slow_ms"`
}

// CompartmentState is the truth about one compartment (what the board
// reports is HookClosed and IR).
type CompartmentState struct {
	N          int      `json:"n"`
	Board      int      `json:"board"`
	Lock       int      `json:"lock"`
	Zone       string   `json:"zone"`
	DoorOpen   bool     `json:"door_open"`
	Latched    bool     `json:"latched"`
	HookClosed bool     `json:"hook_closed"`
	Items      int      `json:"items"`
	IR         bool     `json:"ir"` // what the IR sensor reads (kerong reports it)
	Pulses     int      `json:"pulses"`
	Relay      bool     `json:"relay"` // modbus-rtu: the relay's coil is on
	Faults     []string `json:"faults,omitempty"`
}

// ZoneState is one temperature zone. TempC is nil when the probe has failed.
type ZoneState struct {
	Name         string   `json:"name"`
	TempC        *float64 `json:"temp_c"`
	Error        string   `json:"error,omitempty"`
	SetpointC    *float64 `json:"setpoint_c,omitempty"`
	TrueTempC    float64  `json:"true_temp_c"`
	Compressor   bool     `json:"compressor"`
	DutyCycle    float64  `json:"duty_cycle"` // fraction of simulated time the compressor ran
	DoorsOpen    int      `json:"doors_open"`
	Compartments []int    `json:"compartments"`
}

// Snapshot returns the whole state now.
func (w *World) Snapshot() State {
	now := w.lockNow()
	defer w.mu.Unlock()
	s := State{
		Profile:    string(w.cfg.Profile),
		Powered:    w.powered,
		OutsideC:   w.outside,
		GarbleRate: w.garble,
		DropRate:   w.drop,
	}
	for _, b := range w.boards {
		s.Boards = append(s.Boards, BoardState{
			Address:   b.addr,
			Online:    w.responsive(b, now),
			Unplugged: b.unplugged,
			Booting:   now.Before(b.bootUntil),
			SlowMS:    int(b.slow / time.Millisecond),
		})
	}
	for _, c := range w.comps {
		cs := CompartmentState{
			N: c.n, Board: c.board, Lock: c.lock, Zone: c.zone.kind,
			DoorOpen: c.doorOpen, Latched: c.latched(now), HookClosed: w.hookClosed(c, now),
			Items: c.items, IR: w.irReads(c), Pulses: c.pulses, Relay: c.relay,
		}
		for _, f := range []struct {
			on   bool
			name string
		}{{c.jammed, FaultJammedLatch}, {c.relayStuck, FaultRelayStuck}, {c.leftOpen, FaultDoorLeftOpen}, {c.irStuck != nil, FaultIRStuck}} {
			if f.on {
				cs.Faults = append(cs.Faults, f.name)
			}
		}
		s.Compartments = append(s.Compartments, cs)
	}
	s.Zones = w.zoneStates()
	return s
}

// Zones returns the zone readings now, as served by GET /v1/zones.
func (w *World) Zones() []ZoneState {
	w.lockNow()
	defer w.mu.Unlock()
	return w.zoneStates()
}

func (w *World) zoneStates() []ZoneState {
	var out []ZoneState
	for _, z := range w.zones {
		zs := ZoneState{
			Name: z.kind, TrueTempC: round2(z.temp), Compressor: z.compressor,
			DoorsOpen: z.doorsOpen, Compartments: z.members,
		}
		if z.seconds > 0 {
			zs.DutyCycle = round2(z.runSeconds / z.seconds)
		}
		if z.cooled {
			sp := z.setpoint
			zs.SetpointC = &sp
		}
		if z.probeFail {
			zs.Error = "probe failure"
		} else {
			t := round2(z.temp)
			zs.TempC = &t
		}
		out = append(out, zs)
	}
	return out
}
