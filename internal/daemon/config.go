package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Setting is one configuration key that the environment and the command line may set
// (the JSON file sets any key of the daemon's Config, by its json tag).
type Setting[C any] struct {
	// Env is the environment variable ("LARDER_EDGE_DATA_DIR"); empty: none.
	Env string
	// Flag is the flag's name without the dash ("data"); empty: none. A Secret never
	// has one.
	Flag string
	// Usage is the flag's help text.
	Usage string
	// Secret marks a key, token or password: the file or the environment only.
	Secret bool
	// Set parses v into c. Its error should say what was wanted; Load names the
	// variable or flag it came from.
	Set func(c *C, v string) error
}

// Source is where a daemon's configuration comes from.
type Source[C any] struct {
	// Program names the flag set ("larder-edge"), for the usage message.
	Program string
	// ConfigEnv is the environment variable naming the JSON file when -config is not
	// given ("LARDER_EDGE_CONFIG").
	ConfigEnv string
	// Settings are the keys the environment and flags may set, applied in this order.
	Settings []Setting[C]
}

// Load returns defaults overlaid with the JSON file, the environment (getenv, usually
// os.Getenv) and the flags in args, in that order; see the package doc. An empty
// variable or flag value leaves the setting as it is. Usage and flag errors go to
// stderr, as package flag writes them; -h returns an error wrapping [flag.ErrHelp].
// Arguments other than flags are refused: neither daemon takes any, and one that was
// meant as a setting would otherwise be silently ignored.
func (s Source[C]) Load(defaults C, args []string, getenv func(string) string, stderr io.Writer) (C, error) {
	c := defaults
	fs := flag.NewFlagSet(s.Program, flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", getenv(s.ConfigEnv), "JSON configuration file (env "+s.ConfigEnv+")")
	flags := make([]*string, len(s.Settings))
	for i, st := range s.Settings {
		if st.Secret && st.Flag != "" {
			panic("daemon: secret setting " + st.Env + " has flag -" + st.Flag)
		}
		if st.Flag != "" {
			flags[i] = fs.String(st.Flag, "", st.Usage)
		}
	}
	if err := fs.Parse(args); err != nil {
		return defaults, err
	}
	if fs.NArg() > 0 {
		return defaults, fmt.Errorf("unexpected argument %q (settings are flags, -config or the environment)", fs.Arg(0))
	}
	if *file != "" {
		if err := decodeFile(*file, &c); err != nil {
			return defaults, err
		}
	}
	for _, st := range s.Settings {
		if st.Env == "" {
			continue
		}
		if v := getenv(st.Env); v != "" {
			if err := st.Set(&c, v); err != nil {
				return defaults, fmt.Errorf("environment %s: %w", st.Env, err)
			}
		}
	}
	for i, st := range s.Settings {
		if flags[i] == nil || *flags[i] == "" {
			continue
		}
		if err := st.Set(&c, *flags[i]); err != nil {
			return defaults, fmt.Errorf("flag -%s: %w", st.Flag, err)
		}
	}
	return c, nil
}

// decodeFile decodes the JSON file at path over c, refusing keys c does not have.
func decodeFile(path string, c any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return fmt.Errorf("config file %s: %w", filepath.Base(path), explain(err, b))
	}
	return nil
}

// explain rewords encoding/json's errors in the file's terms: the key, or the line.
func explain(err error, b []byte) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("line %d: %w", 1+bytes.Count(b[:min(int(syn.Offset), len(b))], []byte("\n")), err)
	case errors.As(err, &typ) && typ.Field != "":
		return fmt.Errorf("key %q: want %s, got a JSON %s", typ.Field, typ.Type, typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no typed error for it; the message is stable.
		return fmt.Errorf("unknown key %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	case errors.Is(err, io.EOF):
		return errors.New("empty file: want a JSON object")
	}
	return err
}

// Duration is a time.Duration written as a string in JSON ("500ms", "90s", "24h").
type Duration time.Duration

// MarshalJSON writes d as time.Duration's String does.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a string that time.ParseDuration accepts.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration such as \"90s\", not %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}
