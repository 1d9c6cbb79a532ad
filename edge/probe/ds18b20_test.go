package probe_test

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/larder-lockers/larder/edge/hw"
	"github.com/larder-lockers/larder/edge/probe"
	"periph.io/x/conn/v3/onewire"
	"periph.io/x/conn/v3/onewire/onewiretest"
)

// pad builds a valid 12-bit scratchpad for raw (1/16 °C units).
func pad(raw int16, cfg byte) []byte {
	p := []byte{byte(raw), byte(uint16(raw) >> 8), 0x4B, 0x46, cfg, 0xFF, 0x0C, 0x10, 0}
	p[8] = onewire.CalcCRC(p[:8])
	return p
}

func TestDecode(t *testing.T) {
	badCRC := pad(344, 0x7F)
	badCRC[8] ^= 1
	tests := []struct {
		name string
		spad []byte
		want float64
		ok   bool
	}{
		{"21.5", pad(344, 0x7F), 21.5, true},
		{"fridge 3.0625", pad(49, 0x7F), 3.0625, true},
		{"freezer -18.125", pad(-290, 0x7F), -18.125, true},
		{"9-bit masks low bits", pad(0x0157, 0x1F), 21, true}, // 21.4375 with 3 undefined bits cleared
		{"power-on 85", pad(0x0550, 0x7F), 0, false},
		{"all zero", make([]byte, 9), 0, false},
		{"all ones (no presence)", []byte{255, 255, 255, 255, 255, 255, 255, 255, 255}, 0, false},
		{"crc", badCRC, 0, false},
		{"short", []byte{1, 2, 3}, 0, false},
		{"out of range", pad(0x07F0+16*10, 0x7F), 0, false},
	}
	for _, tt := range tests {
		got, err := probe.Decode(tt.spad)
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v, want ok=%v", tt.name, err, tt.ok)
			continue
		}
		if err != nil && !errors.Is(err, hw.ErrProbe) {
			t.Errorf("%s: err %v does not wrap ErrProbe", tt.name, err)
		}
		if tt.ok && got != tt.want {
			t.Errorf("%s: got %v °C, want %v", tt.name, got, tt.want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(pad(344, 0x7F))
	f.Add(pad(-290, 0x1F))
	f.Add(pad(0x0550, 0x7F))
	f.Add(make([]byte, 9))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := probe.Decode(b)
		if err != nil {
			return
		}
		if math.IsNaN(c) || c < -55 || c > 125 || c == 85 {
			t.Fatalf("Decode(% x) = %v accepted", b, c)
		}
		if !onewire.CheckCRC(b) {
			t.Fatalf("Decode accepted a bad CRC: % x", b)
		}
	})
}

// matchRead is the Tx of a Match ROM + Read Scratchpad for addr.
func matchRead(addr onewire.Address, r []byte) onewiretest.IO {
	w := []byte{0x55, 0, 0, 0, 0, 0, 0, 0, 0, 0xBE}
	for i := range 8 {
		w[1+i] = byte(addr >> (8 * i))
	}
	return onewiretest.IO{W: w, R: r}
}

func TestDS18B20Read(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fridge := onewire.Address(0x7a00000131825228)
		freezer := onewire.Address(0x5500000131825328)
		badCRC := pad(49, 0x7F)
		badCRC[3] ^= 0x40
		bus := &onewiretest.Playback{
			DontPanic: true,
			Ops: []onewiretest.IO{
				{W: []byte{0xCC, 0x44}, Pull: onewire.StrongPullup},
				matchRead(fridge, badCRC),             // line noise: read again
				matchRead(fridge, pad(49, 0x7F)),      // 3.0625
				matchRead(freezer, pad(0x0550, 0x7F)), // browned out
			},
		}
		d := &probe.DS18B20{Bus: bus, Sensors: []probe.Sensor{{"chilled", fridge}, {"frozen", freezer}}}
		t0 := time.Now()
		rs, err := d.Read(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if el := time.Since(t0); el != probe.DefaultConversionTime {
			t.Errorf("waited %v for the conversion", el)
		}
		if len(rs) != 2 || rs[0].Zone != "chilled" || rs[0].Err != nil || rs[0].Celsius != 3.0625 {
			t.Errorf("chilled reading = %+v", rs[0])
		}
		if !errors.Is(rs[1].Err, hw.ErrProbe) || rs[1].Zone != "frozen" {
			t.Errorf("frozen reading = %+v, want ErrProbe", rs[1])
		}
		if err := bus.Close(); err != nil {
			t.Error(err)
		}
		if !probe.IsDS18B20(fridge) || probe.IsDS18B20(0x10) {
			t.Error("IsDS18B20")
		}
	})
}

func TestDS18B20Cancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus := &onewiretest.Playback{DontPanic: true, Ops: []onewiretest.IO{
			{W: []byte{0xCC, 0x44}, Pull: onewire.StrongPullup},
		}}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		d := &probe.DS18B20{Bus: bus, Sensors: []probe.Sensor{{"chilled", 0x28}}}
		if _, err := d.Read(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Read = %v", err)
		}
	})
}

func TestDiscover(t *testing.T) {
	probeA := addr(0x28, 0x0131825252)
	probeB := addr(0x28, 0x0131825353)
	other := addr(0x10, 0x0131825454) // a DS18S20
	// Search issues one Search ROM (0xF0) per device found; the triplets
	// are simulated by Playback from Devices.
	search := onewiretest.IO{W: []byte{0xF0}}
	bus := &onewiretest.Playback{DontPanic: true, Devices: []onewire.Address{probeA, other, probeB},
		Ops: []onewiretest.IO{search, search, search}}
	got, err := probe.Discover(bus)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !slices.Contains(got, probeA) || !slices.Contains(got, probeB) {
		t.Errorf("Discover = %x, want the two DS18B20s", got)
	}
}

// addr builds a 1-Wire address with a valid CRC byte.
func addr(family byte, serial uint64) onewire.Address {
	var b [8]byte
	b[0] = family
	for i := range 6 {
		b[1+i] = byte(serial >> (8 * i))
	}
	b[7] = onewire.CalcCRC(b[:7])
	var a onewire.Address
	for i := range 8 {
		a |= onewire.Address(b[i]) << (8 * i)
	}
	return a
}
