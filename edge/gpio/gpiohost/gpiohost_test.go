package gpiohost_test

import (
	"strings"
	"testing"

	"github.com/larder-lockers/larder/edge/gpio"
	"github.com/larder-lockers/larder/edge/gpio/gpiohost"
)

// On any machine (a CI box has no GPIO header) host initialisation works and
// an unknown pin name is refused by name, before any pin is touched.
func TestOpenUnknownPin(t *testing.T) {
	_, err := gpiohost.Open(map[int]string{1: "NO_SUCH_PIN"}, nil, gpio.Config{})
	if err == nil || !strings.Contains(err.Error(), "NO_SUCH_PIN") {
		t.Fatalf("Open = %v, want an unknown-pin error", err)
	}
}
