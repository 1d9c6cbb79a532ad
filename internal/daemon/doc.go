// Package daemon is the skeleton larder-edge (edge/edged) and larder-cloud (cloud/cloudd)
// share: where their configuration comes from, and the life of the process around their
// Main. Each daemon keeps its own Config, DefaultConfig, Validate and table of
// [Setting]s; this package only reads the sources in order and runs the Main. It uses
// the standard library alone, so that edge and cloud can both import it.
//
// # Configuration
//
// [Source.Load] starts from the daemon's defaults and overlays, later sources winning:
//
//  1. the JSON file named by -config (or, without the flag, by [Source.ConfigEnv]),
//     decoded with unknown keys refused: a misspelt key stops the daemon with an error
//     that names it, instead of leaving a setting at its default unnoticed;
//  2. the environment: each [Setting] with an Env variable that is set and not empty;
//  3. the flags: each [Setting] with a Flag given a non-empty value.
//
// An error names what was wrong: in the file the unknown or mistyped key, or the line of
// a syntax error (a bad duration is named by its value: encoding/json does not say
// which key a custom decoder was reading); otherwise the variable or the flag.
// Secrets (keys, tokens, passwords) are Settings marked Secret, which have no flag: flags
// show in ps to every user of the machine, the file and the environment do not. Load
// never validates; the daemon's Validate does, after Load.
//
// # Life of the process
//
// [Command] is the daemons' func main: it cancels the context on SIGINT and SIGTERM
// (signal.NotifyContext) and exits with the status of the daemon's Exec, which calls
// [Exec]: configure, [Main.Open], [Main.Run] until the context ends, [Main.Close].
// Each daemon's Close stays its own, because the order is the point of it (the edge
// switches the relays off before anything else; the cloud drains its API and flushes
// outbound messages before it disconnects); Exec only guarantees that it is called, and
// each Close is idempotent.
//
// # Metrics
//
// [MetricsServer] is the listener both daemons serve /metrics on, apart from their
// public address (the cloud's API, the edge's kiosk), which answers 404 for it: the
// exposition is fleet data. An empty address turns it off; "off" says so from the
// environment or a flag ([MetricsAddr]), which cannot carry an empty value. The
// daemons pass it their promhttp handler, so this package still needs no Prometheus.
package daemon
