package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// Main is a daemon's Main once built from its configuration.
type Main interface {
	// Open acquires everything (store, listeners, connections); on error it has
	// closed what it opened.
	Open(ctx context.Context) error
	// Run serves until ctx ends and returns nil, or the first fatal error.
	Run(ctx context.Context) error
	// Close releases everything in the daemon's order; it is idempotent.
	Close() error
}

// Exec is a daemon's whole program. configure loads and validates the configuration and
// builds the Main, and returns how to report the Main's failures (nil: a line
// "program: error" on stderr). Then Exec opens the Main, runs it until ctx ends and
// closes it, whatever happened. It returns the exit status:
//
//   - 0 after -h, or when the Main ran and closed without error;
//   - 2 when configure fails (a bad flag, file, variable or setting), reported on stderr
//     as "program: error" before anything was opened;
//   - 1 when the Main fails to open, stops with an error or fails to close, reported
//     through fail.
func Exec(ctx context.Context, program string, stderr io.Writer, configure func() (Main, func(error), error)) int {
	m, fail, err := configure()
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, program+":", err)
		return 2
	}
	if fail == nil {
		fail = func(err error) { fmt.Fprintln(stderr, program+":", err) }
	}
	err = m.Open(ctx)
	if err == nil {
		err = m.Run(ctx)
	}
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fail(err)
		return 1
	}
	return 0
}

// NewLogger logs to w at level (debug, info, warn or error; anything else: info) as
// text, or as JSON when format is "json".
func NewLogger(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Command is a daemon's func main: it runs exec with the process's arguments,
// environment and stderr, under a context that ends on SIGINT or SIGTERM (so that exec
// closes everything, relays first on the edge, instead of dying mid-write), and exits
// with exec's status.
func Command(exec func(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := exec(ctx, os.Args[1:], os.Getenv, os.Stderr)
	stop()
	os.Exit(code)
}
