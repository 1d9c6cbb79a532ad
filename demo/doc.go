// Package demo runs the whole Larder system on one machine from the built binaries, the
// way it is deployed: larder-sim (a simulated courtyard on a pseudo-terminal),
// larder-cloud (embedded MQTT broker, bbolt store) and larder-edge (talking to the sim's
// pty and the cloud's broker), each a child process. cmd/larder-demo (`make run`) is a
// thin wrapper over Run; the end-to-end tests in e2e/ reuse the Launcher to start the
// same binaries on free ports in a temporary directory.
//
// # Pieces
//
//   - Launcher starts children in their own process group (Ctrl-C reaches only the
//     launcher, which stops them in reverse order: edge, cloud, simulator), prefixes
//     their output with their name into DIR/logs/NAME.log (and the console with
//     -follow), waits for readiness (/healthz) with timeouts, and fails with the
//     child's last output lines when it exits or a port is taken (CheckFree).
//   - StartSim, StartCloud, StartEdge wrap each binary's flags; the edge's
//     configuration, secrets included, goes in a 0600 JSON file, never on the
//     command line.
//   - API (cloud REST), KioskClient (the kiosk's JSON API), SimClient (the simulator's
//     control API) and People (a driver and a resident acting at the kiosk with their
//     hands played through the simulator) are what the demo seeding and the tests use.
//
// # Demo state and resuming
//
// Run keeps everything under one directory (default ./data): cloud/ and edge/ are the
// programs' own bbolt data, logs/ their output, demo.json (0600) the site's
// provisioning and the demo's API keys. The first run provisions the site through the
// REST API, creates admin, ops, driver and platform keys and seeds six orders, three of
// them loaded by a simulated driver at the kiosk (two with codes the platform hands out,
// printed in the banner; one whose code the cloud texts to the resident, shown by the
// Inbox). Later runs skip all that.
//
// larder-sim keeps its physical world in memory, so a restart would leave the edge
// believing compartments are loaded that are physically empty. The demo snapshots the
// simulator's contents into demo.json every 5 s and at shutdown, and on the next run
// puts them back (force the door, put, shut) before the edge starts, so the edge sees
// no door move. A demo killed with SIGKILL loses at most the last 5 s of changes.
//
// Ports (BasePort 7400): 7400 cloud HTTP (API, ops and driver pages), 7401 the embedded
// MQTT broker, 7402 the kiosk, 7403 the simulator's control API, 7404 the demo's Inbox:
// the SMS gateway and the demo platform's webhook endpoint, whose messages (pickup codes
// included, as on a resident's phone) are shown on the console and in
// DIR/logs/inbox.log; 7405 the cloud's /metrics and 7406 the edge's, each on an address
// of its own as in production (the API and the kiosk answer 404 for /metrics). They avoid the usual services (MQTT 1883, PostgreSQL 5432, Redis 6379,
// NATS 4222, RabbitMQ 5672, MariaDB 3306). Nothing is fetched from the network.
package demo
