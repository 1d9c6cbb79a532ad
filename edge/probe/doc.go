// Package probe reads zone air temperatures and implements hw.Thermometer
// twice:
//
//   - DS18B20 reads Maxim DS18B20 probes over periph.io's onewire.Bus: one
//     broadcast Convert T (0x44) with the strong pull-up that
//     parasite-powered probes need, the conversion time (750 ms at 12-bit),
//     then each probe's scratchpad (0xBE) by Match ROM. A scratchpad is
//     believed only if its CRC8 checks, it is not all zero (an absent or
//     shorted probe reads zeros, whose CRC is valid) and it is not the 85 °C
//     power-on value (a probe that browned out or never converted).
//   - SimProbe reads the zone temperatures that larder-sim exposes on its
//     HTTP control API, as a refrigeration controller would be read.
//
// A probe that fails yields a Reading with Err set (wrapping hw.ErrProbe):
// a zone without a valid temperature is a fact the food-safety logic must
// see, not a gap. Probes measure air, not food: the alarm margin and duration
// belong to the consumer (edge.DefaultZoneLimits, docs/food-safety.md).
package probe
