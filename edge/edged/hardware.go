package edged

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"periph.io/x/conn/v3/onewire"

	"github.com/larder-lockers/larder/edge/gpio"
	"github.com/larder-lockers/larder/edge/gpio/gpiohost"
	"github.com/larder-lockers/larder/edge/hw"
	"github.com/larder-lockers/larder/edge/probe"
	"github.com/larder-lockers/larder/edge/serial"
	"github.com/larder-lockers/larder/protocol/board"
)

// hardware is what the daemon needs of a bank's driver: serial.Bus and gpio.Driver both
// are one.
type hardware interface {
	hw.Latch
	hw.Sensors
	hw.Halter
	Close() error
}

// openHardware opens the lock-board bus, or the GPIO pins of a bank wired to a
// single-board computer (the only place the host drivers are initialised).
func (m *Main) openHardware(hmap hw.Map) (hardware, error) {
	if m.cfg.Profile == ProfileGPIO {
		return gpiohost.Open(m.cfg.Relays, m.cfg.DoorPins, gpio.Config{RelayActiveLow: m.cfg.RelayActiveLow,
			DoorOpenLow: m.cfg.DoorOpenLow, Logger: m.log.With("component", "gpio")})
	}
	pol, _ := board.ParsePolarity(m.cfg.Polarity)
	bus, err := serial.Open(m.cfg.Bus, serial.Config{Profile: m.profile, Polarity: pol, Baud: m.cfg.Baud, Map: hmap,
		Modbus: m.cfg.Modbus.Map(), Pulse: time.Duration(m.cfg.Modbus.Pulse), Logger: m.log.With("component", "serial")})
	if err != nil {
		return nil, err
	}
	m.bus = bus
	return bus, nil
}

// openThermometer returns the configured zone thermometer (nil: none).
func (m *Main) openThermometer() (hw.Thermometer, error) {
	t := m.cfg.Thermometer
	if url, ok := strings.CutPrefix(t, "sim:"); ok {
		return &probe.SimProbe{URL: url}, nil
	}
	if n, ok := strings.CutPrefix(t, "ds18b20:"); ok {
		master, _ := strconv.ParseUint(n, 10, 32)
		bus, err := gpiohost.OneWire(uint32(master))
		if err != nil {
			return nil, err
		}
		d := &ds18b20{bus: bus, DS18B20: probe.DS18B20{Bus: bus}}
		for z, a := range m.cfg.Probes {
			addr, _ := strconv.ParseUint(a, 16, 64)
			d.Sensors = append(d.Sensors, probe.Sensor{Zone: string(z), Addr: onewire.Address(addr)})
		}
		return d, nil
	}
	if t != "" {
		return nil, fmt.Errorf("edged: thermometer %q", t)
	}
	return nil, nil
}

// ds18b20 owns its 1-Wire bus so that Close releases it.
type ds18b20 struct {
	probe.DS18B20
	bus onewire.BusCloser
}

func (d *ds18b20) Close() error { return d.bus.Close() }
