// Command larder-load plays a fleet of edges against a real larder-cloud from outside,
// speaking protocol v1 over MQTT and the REST API, and prints each figure next to its
// same-run baseline. See package loadgen and docs/load.md. It exits 1 when anything was
// lost, a measurement failed or a figure missed its -want-… target.
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
	var targets loadgen.Targets
	targets.Flags(fs)
	ha := loadgen.DefaultHAConfig()
	replicas := fs.Int("replicas", 0, "with -start-cloud, -mosquitto and -store: start this many replicas over one PostgreSQL (the HA benchmark; 0: one cloud on bbolt)")
	fs.StringVar(&ha.Store, "store", "", "PostgreSQL URL the replicas share (or LARDER_LOAD_STORE, to keep a password out of ps)")
	fs.DurationVar(&ha.LeaseTTL, "lease-ttl", ha.LeaseTTL, "the replicas' lease time (0: larder-cloud's default)")
	fs.DurationVar(&ha.SaturateFor, "saturate-for", ha.SaturateFor, "how long the HA throughput and its PostgreSQL baseline run")
	fs.Float64Var(&ha.PacedRate, "paced-rate", ha.PacedRate, "orders per second offered in the HA latency measurement (replaces -rate)")
	jsonPath := fs.String("json", "", "write the summary as JSON to this file")
	verbose := fs.Bool("v", false, "also log each cloud it starts to stderr: pid, API and metrics URLs")
	fs.Parse(os.Args[1:])
	if ha.Store == "" {
		ha.Store = os.Getenv("LARDER_LOAD_STORE")
	}
	cfg.AdminKey = os.Getenv("LARDER_LOAD_ADMIN_KEY")
	if p := os.Getenv("LARDER_LOAD_RAW_PASSWORD"); p != "" {
		cfg.RawPassword = p
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	level := slog.LevelError
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	var (
		s    *loadgen.Summary
		figs *loadgen.HAFigures
		err  error
	)
	if *replicas > 0 {
		ha.Replicas = *replicas
		s, figs, err = loadgen.RunHA(ctx, cfg, ha, log)
	} else {
		s, err = loadgen.Run(ctx, cfg, log)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "larder-load:", err)
		os.Exit(2)
	}
	s.Failures = append(s.Failures, targets.Missed(s)...)
	if figs != nil {
		figs.Print(os.Stdout)
	}
	s.Print(os.Stdout)
	if *jsonPath != "" {
		doc := struct {
			*loadgen.Summary
			HA *loadgen.HAFigures `json:"ha,omitempty"`
		}{s, figs}
		data, _ := json.MarshalIndent(doc, "", "  ")
		if err := os.WriteFile(*jsonPath, append(data, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "larder-load:", err)
			os.Exit(2)
		}
	}
	if !s.OK() {
		os.Exit(1)
	}
}
