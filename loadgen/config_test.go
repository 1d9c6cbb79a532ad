package loadgen_test

import (
	"strings"
	"testing"

	"github.com/larder-lockers/larder/loadgen"
)

// TestBrokerListLoopback: every URL of a comma-separated -broker list must be on
// loopback (unless remote targets are allowed), not just the first.
func TestBrokerListLoopback(t *testing.T) {
	for _, c := range []struct {
		broker string
		err    string
	}{
		{"tcp://127.0.0.1:1883", ""},
		{"tcp://127.0.0.1:1883,tcp://127.0.0.1:1884", ""},
		{"tcp://127.0.0.1:1883,tcp://192.0.2.1:1883", "192.0.2.1"},
		{"tcp://127.0.0.1:1883,nonsense", "not a URL"},
	} {
		cfg := loadgen.DefaultConfig()
		cfg.CloudURL, cfg.AdminKey, cfg.Broker = "http://127.0.0.1:8080", "lk_x", c.broker
		err := cfg.Validate()
		switch {
		case c.err == "" && err != nil:
			t.Errorf("-broker %s: %v", c.broker, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("-broker %s: %v, want an error naming %q", c.broker, err, c.err)
		}
	}
}
