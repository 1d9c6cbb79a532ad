package cloudd_test

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

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

func load(t *testing.T, args []string, env map[string]string) (cloudd.Config, error) {
	t.Helper()
	return cloudd.Load(args, func(k string) string { return env[k] }, io.Discard)
}

// TestStore: empty is the bbolt file; a PostgreSQL URL comes from the file, the
// environment or the flag, is checked for its form and needs an external broker; a
// password is accepted from the environment or the file, refused in a flag, and never
// shows in an error or in StoreRedacted.
func TestStore(t *testing.T) {
	const broker = "tcp://127.0.0.1:1883"
	c, err := load(t, nil, nil)
	if err != nil || c.Store != "" || c.Postgres() {
		t.Fatalf("default: store %q postgres %v, %v; want the bbolt file", c.Store, c.Postgres(), err)
	}
	file := filepath.Join(t.TempDir(), "cloud.json")
	os.WriteFile(file, []byte(`{"store":"postgresql://larder:s3cret-file@db.example.org:5432/larder","mqtt_url":"`+broker+`"}`), 0o600)
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string // the store, "" for an error
		err  string // what the error names
	}{
		{"file", []string{"-config", file}, nil, "postgresql://larder:s3cret-file@db.example.org:5432/larder", ""},
		{"env", nil, map[string]string{"LARDER_CLOUD_STORE": "postgres://larder:s3cret-env@127.0.0.1/larder?sslmode=disable", "LARDER_CLOUD_MQTT_URL": broker},
			"postgres://larder:s3cret-env@127.0.0.1/larder?sslmode=disable", ""},
		{"flag without password", []string{"-store", "postgres://larder@127.0.0.1:5432/larder", "-mqtt", broker}, nil, "postgres://larder@127.0.0.1:5432/larder", ""},
		{"unix socket by host parameter", []string{"-store", "postgres:///larder?host=/run/postgresql", "-mqtt", broker}, nil, "postgres:///larder?host=/run/postgresql", ""},
		{"flag with password", []string{"-store", "postgres://larder:s3cret-flag@127.0.0.1/larder", "-mqtt", broker}, nil, "", "password"},
		{"flag with password parameter", []string{"-store", "postgres://127.0.0.1/larder?password=s3cret-flag", "-mqtt", broker}, nil, "", "password"},
		{"embedded broker", nil, map[string]string{"LARDER_CLOUD_STORE": "postgres://larder:s3cret-env@127.0.0.1/larder"}, "", "external broker"},
		{"other scheme", nil, map[string]string{"LARDER_CLOUD_STORE": "mysql://larder:s3cret-env@127.0.0.1/larder", "LARDER_CLOUD_MQTT_URL": broker}, "", "postgres://"},
		{"no host", nil, map[string]string{"LARDER_CLOUD_STORE": "postgres://:s3cret-env@/larder", "LARDER_CLOUD_MQTT_URL": broker}, "", "host"},
		{"a path, not a URL", []string{"-store", "/var/lib/larder/cloud.db"}, nil, "", "postgres://"},
		{"no notify key", []string{"-store", "postgres://larder@127.0.0.1:5432/larder", "-mqtt", broker}, map[string]string{"LARDER_CLOUD_NOTIFY_KEY": ""}, "", "notify_key"},
	} {
		env := map[string]string{"LARDER_CLOUD_NOTIFY_KEY": strings.Repeat("ab", 32)} // replicas share one
		for k, v := range tc.env {
			env[k] = v
		}
		c, err := load(t, tc.args, env)
		switch {
		case tc.want == "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: %v, want an error naming %q", tc.name, err, tc.err)
		case tc.want != "" && (err != nil || c.Store != tc.want || !c.Postgres()):
			t.Errorf("%s: store %q, %v; want %q", tc.name, c.Store, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: the error shows the password: %v", tc.name, err)
		}
		if strings.Contains(c.StoreRedacted(), "s3cret") {
			t.Errorf("%s: StoreRedacted %q shows the password", tc.name, c.StoreRedacted())
		}
	}
	c = cloudd.Config{Store: "postgres://larder:s3cret@db:5432/larder?password=s3cret2&sslmode=require"}
	if got, want := c.StoreRedacted(), "postgres://larder:xxxxx@db:5432/larder?password=xxxxx&sslmode=require"; got != want {
		t.Errorf("StoreRedacted = %q, want %q", got, want)
	}
}

// TestReplicaIDAndLeaseTTL: the defaults (a host-named id unique per start, 10 s) and
// the checks.
func TestReplicaIDAndLeaseTTL(t *testing.T) {
	a, b := cloudd.DefaultConfig(), cloudd.DefaultConfig()
	if a.ReplicaID == b.ReplicaID {
		t.Errorf("two default replica ids are both %q", a.ReplicaID)
	}
	if err := a.Validate(); err != nil {
		t.Errorf("the default replica id %q: %v", a.ReplicaID, err)
	}
	if host, _ := os.Hostname(); host != "" && !strings.HasPrefix(a.ReplicaID, host[:min(len(host), 10)]) {
		t.Errorf("default replica id %q does not start with the host name %q", a.ReplicaID, host)
	}
	if time.Duration(a.LeaseTTL) != 10*time.Second {
		t.Errorf("default lease_ttl %s, want 10s", time.Duration(a.LeaseTTL))
	}
	for _, tc := range []struct {
		args []string
		env  map[string]string
		err  string // "" for accepted
	}{
		{[]string{"-replica-id", "cloud-a.eu_1"}, nil, ""},
		{nil, map[string]string{"LARDER_CLOUD_REPLICA_ID": "cloud-b"}, ""},
		{[]string{"-replica-id", "cloud a"}, nil, "replica_id"},
		{[]string{"-replica-id", "cloud/a"}, nil, "replica_id"},
		{[]string{"-replica-id", strings.Repeat("r", 65)}, nil, "replica_id"},
		{[]string{"-lease-ttl", "2s"}, nil, ""},
		{nil, map[string]string{"LARDER_CLOUD_LEASE_TTL": "30s"}, ""},
		{[]string{"-lease-ttl", "1500ms"}, nil, "lease_ttl"},
		{[]string{"-lease-ttl", "ten"}, nil, "lease-ttl"},
	} {
		_, err := load(t, tc.args, tc.env)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%v %v: %v, want error naming %q", tc.args, tc.env, err, tc.err)
		}
	}
	c, _ := load(t, []string{"-replica-id", "cloud-a", "-lease-ttl", "4s"}, nil)
	if c.ReplicaID != "cloud-a" || time.Duration(c.LeaseTTL) != 4*time.Second {
		t.Errorf("replica_id %q lease_ttl %s, want cloud-a 4s", c.ReplicaID, time.Duration(c.LeaseTTL))
	}
}

// TestBrokerURLLists: mqtt_url and edge_mqtt_url take several URLs separated by
// commas, each checked.
func TestBrokerURLLists(t *testing.T) {
	c, err := load(t, []string{"-mqtt", "tcp://10.0.0.1:1883, ssl://10.0.0.2:8883", "-edge-mqtt", "mqtts://mq.example.org:8883,mqtts://mq2.example.org:8883"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.MQTTURLs(), []string{"tcp://10.0.0.1:1883", "ssl://10.0.0.2:8883"}; !slices.Equal(got, want) {
		t.Errorf("MQTTURLs = %q, want %q", got, want)
	}
	if got := c.EdgeMQTTURLs(); len(got) != 2 || got[1] != "mqtts://mq2.example.org:8883" {
		t.Errorf("EdgeMQTTURLs = %q", got)
	}
	if c, _ := load(t, nil, nil); c.MQTTURLs() != nil || c.EdgeMQTTURLs() != nil {
		t.Errorf("default: %q %q, want none (the embedded broker)", c.MQTTURLs(), c.EdgeMQTTURLs())
	}
	for _, tc := range []struct{ flag, v string }{
		{"-mqtt", "tcp://10.0.0.1:1883,"},
		{"-mqtt", "tcp://10.0.0.1:1883,10.0.0.2:1883"},
		{"-mqtt", "tcp://10.0.0.1"},
		{"-mqtt", "http://10.0.0.1:1883"},
		{"-mqtt", "tcp://cloud:s3cret@10.0.0.1:1883"},
		{"-edge-mqtt", "tcp://10.0.0.1:1883,tcp://[::1"},
	} {
		key := map[string]string{"-mqtt": "mqtt_url", "-edge-mqtt": "edge_mqtt_url"}[tc.flag]
		_, err := load(t, []string{"-mqtt", "tcp://127.0.0.1:1883", tc.flag, tc.v}, nil)
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s %q: %v, want an error naming %s", tc.flag, tc.v, err, key)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s %q: the error shows the password: %v", tc.flag, tc.v, err)
		}
	}
}
