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
