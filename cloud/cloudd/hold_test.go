package cloudd_test

import (
	"io"
	"testing"
	"time"

	"github.com/larder-lockers/larder/cloud/cloudd"
)

// TestHold: the hold after loading can be shortened (tests, trials) but never past the
// food-safety cap.
func TestHold(t *testing.T) {
	for _, tc := range []struct {
		env  string
		want time.Duration
		ok   bool
	}{
		{"", 0, true},
		{"8s", 8 * time.Second, true},
		{"24h", 24 * time.Hour, true},
		{"25h", 0, false},
		{"-1s", 0, false},
		{"soon", 0, false},
	} {
		env := map[string]string{"LARDER_CLOUD_HOLD": tc.env}
		c, err := cloudd.Load(nil, func(k string) string { return env[k] }, io.Discard)
		if err == nil {
			err = c.Validate()
		}
		if (err == nil) != tc.ok {
			t.Errorf("hold %q: err %v, want ok=%v", tc.env, err, tc.ok)
			continue
		}
		if tc.ok && time.Duration(c.Hold) != tc.want {
			t.Errorf("hold %q: got %s", tc.env, time.Duration(c.Hold))
		}
	}
}
