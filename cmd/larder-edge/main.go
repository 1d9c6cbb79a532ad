// Command larder-edge runs beside one locker bank: it drives the lock boards, serves the
// kiosk, keeps the durable outbox and syncs with the cloud over MQTT. See edge/edged for
// the configuration (flags, LARDER_EDGE_* environment, JSON file).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/larder-lockers/larder/edge/edged"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := edged.Exec(ctx, os.Args[1:], os.Getenv, os.Stderr)
	stop()
	os.Exit(code)
}
