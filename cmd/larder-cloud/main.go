// Command larder-cloud runs Larder's cloud service: the REST API, orders and pickup
// codes, fleet state over MQTT (with an embedded broker unless --mqtt names one) and
// metrics. See cloud/cloudd for the configuration (flags, LARDER_CLOUD_* environment,
// JSON file).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/larder-lockers/larder/cloud/cloudd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cloudd.Exec(ctx, os.Args[1:], os.Getenv, os.Stderr)
	stop()
	os.Exit(code)
}
