// Command larder-demo runs the whole Larder system on one machine: larder-sim (one
// simulated courtyard on a pty), larder-cloud (embedded MQTT broker, bbolt) and
// larder-edge, started from ./bin as child processes. See package
// github.com/larder-lockers/larder/demo.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/larder-lockers/larder/demo"
)

func main() {
	var cfg demo.Config
	flag.StringVar(&cfg.Dir, "data", "data", "state directory (cloud/, edge/, logs/, demo.json); delete it to start afresh")
	flag.StringVar(&cfg.BinDir, "bin", "bin", "directory of the built larder-cloud, larder-edge and larder-sim")
	flag.IntVar(&cfg.BasePort, "port", 7400, "first of seven loopback ports: cloud HTTP, MQTT broker, kiosk, simulator control, demo inbox (SMS and webhooks), cloud metrics, edge metrics")
	flag.StringVar(&cfg.Site, "site", "courtyard-1", "site id of the simulated courtyard")
	flag.BoolVar(&cfg.Follow, "follow", false, "stream the children's logs here, prefixed by name (always in DATA/logs)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := demo.Run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "larder-demo:", err)
		os.Exit(1)
	}
}
