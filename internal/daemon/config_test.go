package daemon_test

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/larder-lockers/larder/internal/daemon"
)

// config is a daemon's configuration in miniature.
type config struct {
	Name     string          `json:"name"`
	Dir      string          `json:"dir"`
	Port     int             `json:"port"`
	Every    daemon.Duration `json:"every"`
	Password string          `json:"password,omitempty"`
	Tags     []string        `json:"tags,omitempty"`
}

func defaults() config {
	return config{Name: "default", Dir: "data", Port: 1, Every: daemon.Duration(time.Minute)}
}

var source = daemon.Source[config]{
	Program:   "testd",
	ConfigEnv: "TESTD_CONFIG",
	Settings: []daemon.Setting[config]{
		{Env: "TESTD_NAME", Flag: "name", Usage: "name", Set: func(c *config, v string) error { c.Name = v; return nil }},
		{Env: "TESTD_DIR", Flag: "dir", Usage: "dir", Set: func(c *config, v string) error { c.Dir = v; return nil }},
		{Env: "TESTD_PORT", Flag: "port", Usage: "port", Set: func(c *config, v string) (err error) {
			c.Port, err = strconv.Atoi(v)
			return err
		}},
		{Env: "TESTD_PASSWORD", Secret: true, Set: func(c *config, v string) error { c.Password = v; return nil }},
	},
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "testd.json")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// TestPrecedence: defaults < file < environment < flags, key by key; empty values
// change nothing.
func TestPrecedence(t *testing.T) {
	file := writeFile(t, `{"name":"file","dir":"/file","port":2,"every":"30s","tags":["a"]}`)
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want config
	}{
		{"defaults", nil, nil, defaults()},
		{"file over defaults", []string{"-config", file}, nil,
			config{Name: "file", Dir: "/file", Port: 2, Every: daemon.Duration(30 * time.Second), Tags: []string{"a"}}},
		{"file named by the environment", nil, map[string]string{"TESTD_CONFIG": file},
			config{Name: "file", Dir: "/file", Port: 2, Every: daemon.Duration(30 * time.Second), Tags: []string{"a"}}},
		{"environment over file", []string{"-config", file}, map[string]string{"TESTD_NAME": "env", "TESTD_PORT": "3", "TESTD_DIR": ""},
			config{Name: "env", Dir: "/file", Port: 3, Every: daemon.Duration(30 * time.Second), Tags: []string{"a"}}},
		{"flags over environment", []string{"-config", file, "-name", "flag", "-dir", ""}, map[string]string{"TESTD_NAME": "env", "TESTD_PORT": "3"},
			config{Name: "flag", Dir: "/file", Port: 3, Every: daemon.Duration(30 * time.Second), Tags: []string{"a"}}},
		{"secret from the environment", nil, map[string]string{"TESTD_PASSWORD": "s3cret"},
			config{Name: "default", Dir: "data", Port: 1, Every: daemon.Duration(time.Minute), Password: "s3cret"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := source.Load(defaults(), tc.args, env(tc.env), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

// TestErrorsNameTheCulprit: whatever is wrong, the error says which key, line,
// variable or flag.
func TestErrorsNameTheCulprit(t *testing.T) {
	for _, tc := range []struct {
		name string
		file string
		args []string
		env  map[string]string
		want []string
	}{
		{"unknown key", `{"name":"x","dri":"/typo"}`, nil, nil, []string{"testd.json", `unknown key "dri"`}},
		{"wrong type", `{"port":"80"}`, nil, nil, []string{"testd.json", `key "port"`, "int"}},
		{"bad duration", `{"every":"soon"}`, nil, nil, []string{"testd.json", `"soon"`}},
		{"syntax", "{\n\"name\": \"x\",\n}", nil, nil, []string{"testd.json", "line 3"}},
		{"empty file", ``, nil, nil, []string{"testd.json", "empty"}},
		{"bad variable", "", nil, map[string]string{"TESTD_PORT": "eighty"}, []string{"environment TESTD_PORT", `"eighty"`}},
		{"bad flag value", "", []string{"-port", "eighty"}, nil, []string{"flag -port", `"eighty"`}},
		{"stray argument", "", []string{"-name", "x", "extra"}, nil, []string{`unexpected argument "extra"`}},
		{"a secret is no flag", "", []string{"-password", "s3cret"}, nil, []string{"-password"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.file != "" || tc.name == "empty file" {
				args = append([]string{"-config", writeFile(t, tc.file)}, args...)
			}
			_, err := source.Load(defaults(), args, env(tc.env), io.Discard)
			if err == nil {
				t.Fatal("accepted")
			}
			t.Log(err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	if _, err := source.Load(defaults(), []string{"-config", filepath.Join(t.TempDir(), "none.json")}, env(nil), io.Discard); err == nil ||
		!errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestHelp(t *testing.T) {
	var out strings.Builder
	_, err := source.Load(defaults(), []string{"-h"}, env(map[string]string{"TESTD_CONFIG": "/etc/testd.json"}), &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v, want flag.ErrHelp", err)
	}
	for _, w := range []string{"-config", "env TESTD_CONFIG", "/etc/testd.json", "-name", "-port"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("usage lacks %q:\n%s", w, out.String())
		}
	}
	if strings.Contains(out.String(), "password") {
		t.Errorf("usage offers the secret as a flag:\n%s", out.String())
	}
}

func TestSecretWithAFlagIsABug(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("a secret setting with a flag was accepted")
		}
	}()
	bad := daemon.Source[config]{Program: "testd", ConfigEnv: "TESTD_CONFIG", Settings: []daemon.Setting[config]{
		{Env: "TESTD_PASSWORD", Flag: "password", Secret: true, Set: func(c *config, v string) error { c.Password = v; return nil }}}}
	bad.Load(defaults(), nil, env(nil), io.Discard)
}

func TestDurationJSON(t *testing.T) {
	d := daemon.Duration(1500 * time.Millisecond)
	b, err := d.MarshalJSON()
	if err != nil || string(b) != `"1.5s"` {
		t.Fatalf("marshal: %s %v", b, err)
	}
	var back daemon.Duration
	if err := back.UnmarshalJSON(b); err != nil || back != d {
		t.Fatalf("unmarshal: %v %v", time.Duration(back), err)
	}
	if err := back.UnmarshalJSON([]byte(`90`)); err == nil {
		t.Error("a bare number accepted as a duration")
	}
}
