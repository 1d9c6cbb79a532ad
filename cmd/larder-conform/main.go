// Command larder-conform is Larder's conformance kit: it checks an edge (-mode edge: the
// kit is the broker and the cloud) or a cloud (-mode cloud: the kit is an edge) against
// the wire contract, clause by clause, and exits 1 when any clause fails. See
// docs/conformance.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/larder-lockers/larder/conform"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := conform.Exec(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
