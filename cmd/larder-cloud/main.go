// Command larder-cloud runs Larder's cloud service: the REST API, orders and pickup
// codes, fleet state over MQTT (with an embedded broker unless --mqtt names one) and
// metrics. See cloud/cloudd for the configuration (flags, LARDER_CLOUD_* environment,
// JSON file). SIGINT and SIGTERM stop it cleanly.
package main

import (
	"github.com/larder-lockers/larder/cloud/cloudd"
	"github.com/larder-lockers/larder/internal/daemon"
)

func main() { daemon.Command(cloudd.Exec) }
