package probe

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/larder-lockers/larder/edge/hw"
	"periph.io/x/conn/v3/onewire"
)

// DS18B20 function commands (datasheet).
const (
	cmdSkipROM        = 0xCC
	cmdConvertT       = 0x44
	cmdReadScratchpad = 0xBE
	familyDS18B20     = 0x28
)

// DefaultConversionTime is the DS18B20's worst-case 12-bit conversion time.
const DefaultConversionTime = 750 * time.Millisecond

// powerOnRaw is the scratchpad value after power-on reset (85 °C): a probe
// that browned out during the conversion, or never converted, reads it. A
// refrigerated locker is never at 85 °C, so it is always a failure.
const powerOnRaw = 0x0550

// Sensor is one DS18B20 on the bus and the zone it measures.
type Sensor struct {
	Zone string
	Addr onewire.Address
}

// DS18B20 reads DS18B20 probes on one 1-Wire bus. It implements
// hw.Thermometer. Read is not safe for concurrent use (a 1-Wire bus carries
// one transaction at a time; the daemon reads from one loop).
type DS18B20 struct {
	Bus     onewire.Bus
	Sensors []Sensor
	// ConversionTime to wait after Convert T; zero means
	// DefaultConversionTime (12-bit resolution, the power-on default).
	ConversionTime time.Duration
}

// Read starts one conversion on every probe at once (Skip ROM, Convert T,
// with the strong pull-up that parasite-powered probes need), waits for it,
// and reads each probe's scratchpad (Match ROM, Read Scratchpad). A
// scratchpad that fails its CRC is read once more before the probe is
// reported failed.
func (d *DS18B20) Read(ctx context.Context) ([]hw.Reading, error) {
	if err := d.Bus.Tx([]byte{cmdSkipROM, cmdConvertT}, nil, onewire.StrongPullup); err != nil {
		return nil, fmt.Errorf("probe: convert: %w", err)
	}
	wait := d.ConversionTime
	if wait <= 0 {
		wait = DefaultConversionTime
	}
	t := time.NewTimer(wait)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
		return nil, fmt.Errorf("probe: convert: %w", ctx.Err())
	}
	out := make([]hw.Reading, 0, len(d.Sensors))
	for _, s := range d.Sensors {
		r := hw.Reading{Zone: s.Zone, At: time.Now()}
		var err error
		for range 2 {
			r.Celsius, err = d.readOne(s.Addr)
			if err == nil || !errors.Is(err, errCRC) {
				break
			}
		}
		if err != nil {
			r.Err = fmt.Errorf("probe %s (%#016x): %w", s.Zone, uint64(s.Addr), err)
		}
		out = append(out, r)
	}
	return out, nil
}

var errCRC = fmt.Errorf("scratchpad CRC mismatch: %w", hw.ErrProbe)

func (d *DS18B20) readOne(addr onewire.Address) (float64, error) {
	var spad [9]byte
	dev := onewire.Dev{Bus: d.Bus, Addr: addr}
	if err := dev.Tx([]byte{cmdReadScratchpad}, spad[:]); err != nil {
		return 0, fmt.Errorf("read scratchpad: %w: %w", hw.ErrProbe, err)
	}
	return Decode(spad[:])
}

// Decode converts a DS18B20 scratchpad (9 bytes) to degrees Celsius,
// checking its CRC and rejecting the all-zero pad (a shorted or absent
// probe: its CRC is valid) and the 85 °C power-on value. Bits below the
// configured resolution are undefined on the device and are masked.
func Decode(spad []byte) (float64, error) {
	if len(spad) != 9 {
		return 0, fmt.Errorf("scratchpad of %d bytes: %w", len(spad), hw.ErrProbe)
	}
	allZero := true
	for _, b := range spad {
		allZero = allZero && b == 0
	}
	if allZero {
		return 0, fmt.Errorf("scratchpad all zero (no probe or bus shorted): %w", hw.ErrProbe)
	}
	if !onewire.CheckCRC(spad) {
		return 0, errCRC
	}
	raw := int16(uint16(spad[1])<<8 | uint16(spad[0]))
	if raw == powerOnRaw {
		return 0, fmt.Errorf("power-on value 85 °C: %w", hw.ErrProbe)
	}
	// Configuration register bits 6..5: 0 = 9-bit … 3 = 12-bit; each bit of
	// resolution less leaves one more low bit undefined.
	res := (spad[4] >> 5) & 3
	raw &^= int16(1<<(3-res)) - 1
	c := float64(raw) / 16
	if c < -55 || c > 125 {
		return 0, fmt.Errorf("%.4f °C outside the sensor's range: %w", c, hw.ErrProbe)
	}
	return c, nil
}

// IsDS18B20 reports whether a 1-Wire address has the DS18B20 family code,
// to pick probes out of a bus search.
func IsDS18B20(a onewire.Address) bool { return byte(a) == familyDS18B20 }

var _ hw.Thermometer = (*DS18B20)(nil)

// Discover searches the bus and returns the DS18B20 probes on it, to help
// an installer map addresses to zones.
func Discover(bus onewire.Bus) ([]onewire.Address, error) {
	all, err := bus.Search(false)
	var out []onewire.Address
	for _, a := range all {
		if IsDS18B20(a) {
			out = append(out, a)
		}
	}
	if err != nil {
		return out, fmt.Errorf("probe: search: %w", err)
	}
	return out, nil
}
