// Package gpiohost initialises periph.io's host drivers and builds an
// edge/gpio Driver from pin names ("GPIO17", "P1_11", a number), or opens
// the kernel's 1-Wire master for edge/probe. It is the only edge package
// that calls host.Init, so that everything else builds and
// tests on any machine; only the edge binary imports it.
package gpiohost

import (
	"fmt"

	"github.com/larder-lockers/larder/edge/gpio"
	pgpio "periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/onewire"
	"periph.io/x/host/v3"
	"periph.io/x/host/v3/netlink"
)

// Open initialises the host drivers, resolves relay and door pin names with
// gpioreg.ByName and calls gpio.New with cfg (whose Relays and Doors it
// fills in; entries already there are kept).
func Open(relayPins, doorPins map[int]string, cfg gpio.Config) (*gpio.Driver, error) {
	if _, err := host.Init(); err != nil {
		return nil, fmt.Errorf("gpiohost: init: %w", err)
	}
	if cfg.Relays == nil {
		cfg.Relays = make(map[int]pgpio.PinOut)
	}
	if cfg.Doors == nil {
		cfg.Doors = make(map[int]pgpio.PinIn)
	}
	for c, name := range relayPins {
		p := gpioreg.ByName(name)
		if p == nil {
			return nil, fmt.Errorf("gpiohost: relay %d: no pin %q", c, name)
		}
		cfg.Relays[c] = p
	}
	for c, name := range doorPins {
		p := gpioreg.ByName(name)
		if p == nil {
			return nil, fmt.Errorf("gpiohost: door %d: no pin %q", c, name)
		}
		cfg.Doors[c] = p
	}
	return gpio.New(cfg)
}

// OneWire initialises the host drivers and opens the Linux kernel's 1-Wire
// master number master (w1 over netlink, e.g. the w1-gpio overlay on a
// Raspberry Pi, master 1) as a periph onewire bus for probe.DS18B20.
// Caveat: the kernel master ignores the strong pull-up request, so probes
// must be wired with external power, not parasite power.
func OneWire(master uint32) (onewire.BusCloser, error) {
	if _, err := host.Init(); err != nil {
		return nil, fmt.Errorf("gpiohost: init: %w", err)
	}
	b, err := netlink.New(master)
	if err != nil {
		return nil, fmt.Errorf("gpiohost: 1-wire master %d: %w", master, err)
	}
	return b, nil
}
