package demo_test

import (
	"bytes"
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/larder-lockers/larder/demo"
)

// TestBannerCloudLinksAnswer prints the banner against a real larder-cloud and follows
// every cloud link in it that a person could open as printed, on the API's address and
// on the metrics address: none may answer 404 (the REST line once pointed at /v1/, which
// is no resource; the metrics line at the API's address, which no longer serves them).
func TestBannerCloudLinksAnswer(t *testing.T) {
	ctx := context.Background()
	l := &demo.Launcher{BinDir: binDir, LogDir: t.TempDir(), StopTimeout: 5 * time.Second}
	t.Cleanup(func() { l.StopAll() })
	cloud, err := l.StartCloud(ctx, demo.CloudOptions{DataDir: t.TempDir(), LogLevel: "warn"})
	if err != nil {
		t.Fatal(err)
	}
	// The kiosk and the simulator are not started: only the cloud's links are followed.
	edge := &demo.Edge{Kiosk: &demo.KioskClient{URL: "http://127.0.0.1:1"}, MetricsURL: "http://127.0.0.1:1"}
	sim := &demo.Sim{Control: &demo.SimClient{URL: "http://127.0.0.1:1"}}
	var out bytes.Buffer
	demo.Banner(ctx, &out, demo.Config{Dir: t.TempDir(), Site: "banner-test"}, cloud, edge, sim,
		demo.State{Keys: map[string]string{}}, "0000000000")
	banner := out.String()
	if !strings.Contains(banner, "REST API") {
		t.Fatalf("no REST API line in the banner:\n%s", banner)
	}
	links := regexp.MustCompile(`(`+regexp.QuoteMeta(cloud.URL)+`|`+regexp.QuoteMeta(cloud.MetricsURL)+`)/[^\s()]*`).FindAllString(banner, -1)
	followed := 0
	for _, u := range links {
		if strings.ContainsAny(u, "{}") {
			continue // a template, not a link
		}
		resp, err := http.Get(u)
		if err != nil {
			t.Errorf("%s: %v", u, err)
			continue
		}
		resp.Body.Close()
		followed++
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode >= 500 {
			t.Errorf("banner link %s answers %d", u, resp.StatusCode)
		}
	}
	if followed < 4 { // ops, driver, REST API, metrics
		t.Errorf("followed %d cloud links, want at least 4; banner:\n%s", followed, banner)
	}
	if strings.Contains(banner, "not served") {
		t.Errorf("banner marks a link as not served:\n%s", banner)
	}
}
