package daemon_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/larder-lockers/larder/internal/daemon"
)

// fakeMain records its life and fails where told.
type fakeMain struct {
	openErr, runErr, closeErr error
	calls                     []string
}

func (f *fakeMain) Open(context.Context) error { f.calls = append(f.calls, "open"); return f.openErr }
func (f *fakeMain) Run(context.Context) error  { f.calls = append(f.calls, "run"); return f.runErr }
func (f *fakeMain) Close() error               { f.calls = append(f.calls, "close"); return f.closeErr }

func TestExec(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name      string
		cfgErr    error
		m         fakeMain
		code      int
		calls     string
		stderr    string
		reportErr bool
	}{
		{"clean stop", nil, fakeMain{}, 0, "open run close", "", false},
		{"help", flag.ErrHelp, fakeMain{}, 0, "", "", false},
		{"bad configuration", boom, fakeMain{}, 2, "", "testd: boom", false},
		{"open fails", nil, fakeMain{openErr: boom}, 1, "open close", "", true},
		{"run fails", nil, fakeMain{runErr: boom}, 1, "open run close", "", true},
		{"close fails", nil, fakeMain{closeErr: boom}, 1, "open run close", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			var reported error
			m := tc.m
			code := daemon.Exec(context.Background(), "testd", &stderr, func() (daemon.Main, func(error), error) {
				return &m, func(err error) { reported = err }, tc.cfgErr
			})
			if code != tc.code {
				t.Errorf("exit %d, want %d", code, tc.code)
			}
			if got := strings.Join(m.calls, " "); got != tc.calls {
				t.Errorf("calls %q, want %q", got, tc.calls)
			}
			if got := strings.TrimSpace(stderr.String()); got != tc.stderr {
				t.Errorf("stderr %q, want %q", got, tc.stderr)
			}
			if tc.reportErr != errors.Is(reported, boom) {
				t.Errorf("reported %v", reported)
			}
		})
	}
	// Without a reporter the Main's failure goes to stderr.
	var stderr bytes.Buffer
	code := daemon.Exec(context.Background(), "testd", &stderr, func() (daemon.Main, func(error), error) {
		return &fakeMain{runErr: boom}, nil, nil
	})
	if code != 1 || strings.TrimSpace(stderr.String()) != "testd: boom" {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}

func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	log := daemon.NewLogger(&buf, "warn", "json")
	log.Info("hidden")
	log.Warn("shown", "k", 1)
	if out := buf.String(); strings.Contains(out, "hidden") || !strings.Contains(out, `"msg":"shown"`) {
		t.Errorf("json at warn: %q", out)
	}
	buf.Reset()
	log = daemon.NewLogger(&buf, "loud", "text")
	log.Debug("hidden")
	log.Info("shown")
	if out := buf.String(); strings.Contains(out, "hidden") || !strings.Contains(out, "msg=shown") {
		t.Errorf("text at the default level: %q", out)
	}
}
