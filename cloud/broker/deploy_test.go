package broker_test

import (
	"flag"
	"os"
	"testing"

	"github.com/larder-lockers/larder/cloud/broker"
)

var updateACL = flag.Bool("update-acl", false, "rewrite deploy/mosquitto/larder.acl")

// TestDeployACL keeps the Mosquitto ACL shipped in deploy/ equal to what the embedded
// broker enforces, so production and the default deployment grant the same topics.
func TestDeployACL(t *testing.T) {
	const path = "../../deploy/mosquitto/larder.acl"
	want := broker.MosquittoACL("larder.cloud")
	if *updateACL {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s differs from broker.MosquittoACL; run go test ./cloud/broker -run TestDeployACL -update-acl", path)
	}
}
