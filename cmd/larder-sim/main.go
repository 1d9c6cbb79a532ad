// Command larder-sim simulates a bus of locker boards on a pty or TCP, with
// a control API; see package github.com/larder-lockers/larder/firmware-sim.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	sim "github.com/larder-lockers/larder/firmware-sim"
)

func main() {
	cfg, err := sim.ParseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "larder-sim:", err)
		os.Exit(2)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg.Stdout = os.Stdout
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m, err := sim.NewMain(cfg)
	if err == nil {
		err = m.Run(ctx)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "larder-sim:", err)
		os.Exit(1)
	}
}
