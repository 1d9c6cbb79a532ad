// Package edged is larder-edge as an importable program: Config (DefaultConfig, Load from
// flags, LARDER_EDGE_* environment and an optional JSON file, Validate), and Main, which
// wires the bbolt store, the RS-485 lock-board bus (edge/serial), the hardware poller,
// the thermometer, the flows (edge.Locker), the MQTT sync (edge/mqtt) and the kiosk
// server (edge/kiosk). cmd/larder-edge is a thin wrapper over Exec.
//
// # Configuration
//
// Later sources win: DefaultConfig, the JSON file (-config, LARDER_EDGE_CONFIG), the
// environment, then flags (internal/daemon reads them in that order). A key the file
// should not have, a value that does not parse or an argument that is not a flag stops
// the daemon at once with an error naming it. Secrets have no flag.
//
//	setting          flag             environment                   default
//	site             -site            LARDER_EDGE_SITE              (required)
//	site_key (hex)   -                LARDER_EDGE_SITE_KEY          (required, ≥ 32 bytes)
//	site_key_file    -site-key-file   LARDER_EDGE_SITE_KEY_FILE
//	data_dir         -data            LARDER_EDGE_DATA_DIR          data
//	kiosk_addr       -kiosk           LARDER_EDGE_KIOSK_ADDR        127.0.0.1:8081
//	metrics_addr     -metrics         LARDER_EDGE_METRICS_ADDR      127.0.0.1:8491 (empty or off: none)
//	broker           -broker          LARDER_EDGE_BROKER            (none: offline)
//	broker_username  -broker-user     LARDER_EDGE_BROKER_USERNAME
//	broker_password  -                LARDER_EDGE_BROKER_PASSWORD
//	bus              -bus             LARDER_EDGE_BUS               (required: /dev/ttyUSB0, tcp://host:port)
//	profile          -profile         LARDER_EDGE_PROFILE           kerong-cu16 (or bcc8a, modbus-rtu, gpio)
//	boards           -boards          LARDER_EDGE_BOARDS            0
//	zones            -zones           LARDER_EDGE_ZONES             all chilled
//	thermometer      -thermometer     LARDER_EDGE_THERMOMETER       (none), sim:http://127.0.0.1:7480, ds18b20:1
//	log_level        -log-level       LARDER_EDGE_LOG_LEVEL         info
//
// The JSON file may also give compartments (number, size, zone, height_cm, board, lock,
// row, column), limits per zone (alarm_above_c, alarm_after_seconds, limit_c,
// budget_seconds), polarity, baud, poll_interval and temp_interval ("500ms"), probes
// (zone → DS18B20 ROM address), for profile modbus-rtu a modbus object (locks,
// coil_base, input_base, pulse: ModbusConfig) and, for profile gpio (a bank wired to a single-board
// computer, no bus), relays and door_pins (compartment → pin name such as "GPIO17"),
// relay_active_low and door_open_low. Only this package initialises periph's host
// drivers (through edge/gpio/gpiohost), and only for gpio banks and DS18B20 probes.
//
// # Start-up and shutdown
//
// Open reads every board once before accepting work (a dead board does not stop the
// daemon), resumes sessions a crash interrupted, and ends interrupted commands as
// TIMED_OUT. The bbolt file is opened with a 1 s lock timeout: a second daemon on the
// same data directory fails at once with a clear error. Close halts the hardware first,
// then closes the kiosk and the store. GET /healthz answers 503 while the store is
// unavailable or no lock board answers.
//
// # Metrics
//
// GET /metrics is served on metrics_addr alone, not on the kiosk's address (which
// answers 404 for it): the kiosk faces the courtyard's screen and network, the exposition
// is fleet data (compartments, outbox depth, board health). The default is loopback, for
// a Prometheus or agent on the edge's machine; to scrape from elsewhere, give an address
// on the management network. Empty in the file, or off from the environment or a flag,
// serves no metrics. /healthz stays on the kiosk's address, where a watchdog probes it.
package edged
