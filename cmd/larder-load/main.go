// Command larder-load plays a fleet of edges against a real larder-cloud from outside,
// speaking protocol v1 over MQTT and the REST API, and prints each figure next to its
// same-run baseline. See package loadgen and docs/load.md. It exits 1 when anything was
// lost or a measurement failed.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/larder-lockers/larder/loadgen"
)

func main() {
	cfg := loadgen.DefaultConfig()
	fs := flag.NewFlagSet("larder-load", flag.ExitOnError)
	cfg.Flags(fs)
	jsonPath := fs.String("json", "", "write the summary as JSON to this file")
	fs.Parse(os.Args[1:])
	cfg.AdminKey = os.Getenv("LARDER_LOAD_ADMIN_KEY")
	if p := os.Getenv("LARDER_LOAD_RAW_PASSWORD"); p != "" {
		cfg.RawPassword = p
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	s, err := loadgen.Run(ctx, cfg, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "larder-load:", err)
		os.Exit(2)
	}
	s.Print(os.Stdout)
	if *jsonPath != "" {
		data, _ := json.MarshalIndent(s, "", "  ")
		if err := os.WriteFile(*jsonPath, append(data, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "larder-load:", err)
			os.Exit(2)
		}
	}
	if !s.OK() {
		os.Exit(1)
	}
}
