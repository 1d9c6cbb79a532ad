// Command larder-edge runs beside one locker bank: it drives the lock boards, serves the
// kiosk, keeps the durable outbox and syncs with the cloud over MQTT. See edge/edged for
// the configuration (flags, LARDER_EDGE_* environment, JSON file). SIGINT and SIGTERM
// stop it cleanly: relays off first, then the rest.
package main

import (
	"github.com/larder-lockers/larder/edge/edged"
	"github.com/larder-lockers/larder/internal/daemon"
)

func main() { daemon.Command(edged.Exec) }
