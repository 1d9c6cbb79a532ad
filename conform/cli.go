package conform

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"time"
)

// Exec is the larder-conform command: it parses args, runs one mode and writes the
// report to stdout. It returns the exit status: 0 when every clause passed, 1 when one
// failed, 2 for a usage or configuration error (or when the kit could not start).
// Secrets come from the environment or files, never from flags (flags show in ps).
func Exec(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("larder-conform", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: larder-conform -mode edge|cloud [flags]  (docs/conformance.md)\n\n")
		fs.PrintDefaults()
	}
	mode := fs.String("mode", "", "edge: the kit is broker and cloud for an edge under test; cloud: the kit is an edge of a cloud under test")
	timeout := fs.Duration("timeout", 20*time.Second, "bound of every wait for the implementation")
	wait := fs.Duration("wait", 0, "how long to watch for what must not happen (default 3s edge, 2s cloud)")
	run := fs.String("run", "", "check only the clauses whose id matches this regular expression (and those they need)")
	skip := fs.String("skip", "", "do not check the clauses whose id matches this regular expression (unless another needs them)")
	asJSON := fs.Bool("json", false, "write the report as JSON")
	list := fs.Bool("list", false, "list the clauses of -mode (or both) and exit")
	verbose := fs.Bool("v", false, "log the kit's progress to stderr")
	// edge mode
	listen := fs.String("listen", "127.0.0.1:1885", "edge mode: the kit's broker address; configure the edge with tcp://ADDR")
	site := fs.String("site", "", "edge mode: the edge's site id; cloud mode: the site to create (default conform-RANDOM)")
	siteKeyFile := fs.String("site-key-file", "", "edge mode: file with the edge's site key, 64 hex characters (or LARDER_CONFORM_SITE_KEY)")
	passwordFile := fs.String("mqtt-password-file", "", "edge mode: file with the edge's MQTT password (or LARDER_CONFORM_MQTT_PASSWORD)")
	kiosk := fs.String("kiosk", "", "edge mode: the edge's kiosk URL, e.g. http://127.0.0.1:8081")
	sim := fs.String("sim", "", "edge mode: larder-sim's control URL, e.g. http://127.0.0.1:7480")
	// cloud mode
	cloud := fs.String("cloud", "", "cloud mode: the cloud's REST API URL, e.g. http://127.0.0.1:8080")
	adminKeyFile := fs.String("admin-key-file", "", "cloud mode: file with an admin API key (or LARDER_CONFORM_ADMIN_KEY)")
	broker := fs.String("broker", "", "cloud mode: the broker URL, when not the one provisioning hands out")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "larder-conform: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *list {
		for _, c := range Clauses() {
			if *mode == "" || string(c.Mode) == *mode {
				fmt.Fprintf(stdout, "%-32s %-34s %s\n", c.ID, c.Section, c.Text)
			}
		}
		return 0
	}
	var sel Selection
	for _, f := range []struct {
		name, expr string
		re         **regexp.Regexp
	}{{"run", *run, &sel.Run}, {"skip", *skip, &sel.Skip}} {
		if f.expr == "" {
			continue
		}
		var err error
		if *f.re, err = regexp.Compile(f.expr); err != nil {
			fmt.Fprintf(stderr, "larder-conform: -%s: %v\n", f.name, err)
			return 2
		}
	}
	log := slog.New(slog.DiscardHandler)
	if *verbose {
		log = slog.New(slog.NewTextHandler(stderr, nil))
	}
	secret := func(file, env string) (string, error) {
		if file != "" {
			b, err := os.ReadFile(file)
			return strings.TrimSpace(string(b)), err
		}
		return strings.TrimSpace(getenv(env)), nil
	}
	var rep Report
	var err error
	switch Mode(*mode) {
	case ModeEdge:
		cfg := EdgeConfig{Listen: *listen, Site: *site, Kiosk: strings.TrimRight(*kiosk, "/"), Sim: strings.TrimRight(*sim, "/"),
			Timeout: *timeout, Wait: *wait, Select: sel, Log: log}
		var key string
		if key, err = secret(*siteKeyFile, "LARDER_CONFORM_SITE_KEY"); err == nil {
			if cfg.SiteKey, err = hex.DecodeString(key); err != nil {
				err = errors.New("the site key is not hex")
			}
		}
		if err == nil {
			cfg.Password, err = secret(*passwordFile, "LARDER_CONFORM_MQTT_PASSWORD")
		}
		if err == nil {
			cfg.Listening = func(url string) {
				fmt.Fprintf(stderr, "larder-conform: broker on %s, waiting for edge %s (client id larder-edge-%s)\n", url, cfg.Site, cfg.Site)
			}
			rep, err = RunEdge(ctx, cfg)
		}
	case ModeCloud:
		cfg := CloudConfig{API: *cloud, Site: *site, Broker: *broker, Timeout: *timeout, Wait: *wait, Select: sel, Log: log}
		if cfg.AdminKey, err = secret(*adminKeyFile, "LARDER_CONFORM_ADMIN_KEY"); err == nil {
			rep, err = RunCloud(ctx, cfg)
		}
	default:
		err = fmt.Errorf("-mode must be edge or cloud, not %q", *mode)
	}
	if err != nil {
		fmt.Fprintf(stderr, "larder-conform: %v\n", err)
		return 2
	}
	if *asJSON {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "larder-conform: %v\n", err)
		return 2
	}
	if rep.Failed() > 0 {
		return 1
	}
	return 0
}
