package cloudd_test

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/larder-lockers/larder/cloud/cloudd"
)

// TestNoSharedGroup: the shared-subscription option is gone (each replica has its own
// store, so several would split a site's events between databases). A configuration
// that still names it is refused, not silently obeyed or ignored.
func TestNoSharedGroup(t *testing.T) {
	file := filepath.Join(t.TempDir(), "cloud.json")
	os.WriteFile(file, []byte(`{"shared_group":"larder"}`), 0o600)
	for _, args := range [][]string{{"-shared-group", "larder"}, {"-config", file}} {
		_, err := cloudd.Load(args, func(string) string { return "" }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "shared") {
			t.Errorf("%v: %v, want an error naming the option", args, err)
		}
	}
}

// TestSecretsAreNoFlags: keys, tokens and passwords come from the file or the
// environment only (flags show in ps).
func TestSecretsAreNoFlags(t *testing.T) {
	var usage strings.Builder
	cloudd.Load([]string{"-h"}, func(string) string { return "" }, &usage)
	for _, flag := range []string{"-admin-key", "-mqtt-password", "-sms-token", "-notify-key"} {
		if strings.Contains(usage.String(), flag+" ") {
			t.Errorf("usage offers %s", flag)
		}
		if _, err := cloudd.Load([]string{flag, "x"}, func(string) string { return "" }, io.Discard); err == nil {
			t.Errorf("%s accepted", flag)
		}
	}
	c, err := cloudd.Load(nil, func(k string) string {
		return map[string]string{"LARDER_CLOUD_SMS_TOKEN": "tok", "LARDER_CLOUD_MQTT_PASSWORD": "pw"}[k]
	}, io.Discard)
	if err != nil || c.SMSToken != "tok" || c.MQTTPassword != "pw" {
		t.Errorf("secrets from the environment: %+v %v", c, err)
	}
}

// TestMetricsAddr: metrics_addr defaults to loopback, comes from the file, the
// environment and the flag (later sources winning), "off" from the environment or a
// flag turns metrics off like an empty value in the file, and a malformed address is
// refused.
func TestMetricsAddr(t *testing.T) {
	file := filepath.Join(t.TempDir(), "cloud.json")
	os.WriteFile(file, []byte(`{"metrics_addr":"127.0.0.1:9501"}`), 0o600)
	off := filepath.Join(t.TempDir(), "off.json")
	os.WriteFile(off, []byte(`{"metrics_addr":""}`), 0o600)
	for _, tc := range []struct {
		name string
		args []string
		env  string
		want string
	}{
		{"default", nil, "", cloudd.DefaultMetricsAddr},
		{"file", []string{"-config", file}, "", "127.0.0.1:9501"},
		{"env over file", []string{"-config", file}, "127.0.0.1:9502", "127.0.0.1:9502"},
		{"flag over env", []string{"-config", file, "-metrics", "127.0.0.1:9503"}, "127.0.0.1:9502", "127.0.0.1:9503"},
		{"off in the file", []string{"-config", off}, "", ""},
		{"off by env", nil, "off", ""},
		{"off by flag", []string{"-metrics", "off"}, "127.0.0.1:9502", ""},
	} {
		c, err := cloudd.Load(tc.args, func(k string) string {
			return map[string]string{"LARDER_CLOUD_METRICS_ADDR": tc.env}[k]
		}, io.Discard)
		if err != nil || c.MetricsAddr != tc.want {
			t.Errorf("%s: metrics_addr %q, %v; want %q", tc.name, c.MetricsAddr, err, tc.want)
		}
	}
	if _, err := cloudd.Load([]string{"-metrics", "9400"}, func(string) string { return "" }, io.Discard); err == nil || !strings.Contains(err.Error(), "metrics_addr") {
		t.Errorf("-metrics 9400: %v, want an error naming metrics_addr", err)
	}
}
