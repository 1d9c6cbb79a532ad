// Package cloudd is larder-cloud as an importable Main: [Config] (DefaultConfig,
// Validate, [Load] from flags, LARDER_CLOUD_* environment and an optional JSON file),
// [NewMain], [Main.Open], [Main.Run] and [Main.Close]. cmd/larder-cloud only calls [Exec].
//
// Later sources win: DefaultConfig, the JSON file (--config, LARDER_CLOUD_CONFIG), the
// environment, then flags (internal/daemon reads them in that order). A key the file
// should not have, a value that does not parse or an argument that is not a flag stops
// the cloud at once with an error naming it. Secrets (admin key, MQTT password, SMS
// token, notify key) have no flag: flags show in ps.
//
// # Embedded by default
//
//	larder-cloud --data DIR --http 127.0.0.1:8080
//
// runs everything on one machine: the bbolt store DIR/cloud.db (group commit), the domain,
// the embedded MQTT broker (cloud/broker, on --mqtt-listen, default 127.0.0.1:1884, with
// per-site logins and topic ACLs checked against the store) and the fleet adapter
// (cloud/mqtt) logged in with a service account whose password is drawn at each start.
// With --mqtt tcp://host:1883 the cloud uses that broker instead (Mosquitto, EMQX,
// VerneMQ) and runs none; the broker's own configuration must then authenticate edges
// (e.g. Mosquitto's password file with the passwords handed out at provisioning) and
// confine each to larder/v1/{site}/#.
//
// # First start
//
// An API needs a first key. Set LARDER_CLOUD_ADMIN_KEY (lk_ + at least 32 characters) to
// install one, or let the first start draw one into DIR/admin.key (mode 0600; the key is
// never logged). With the admin key: create sites (POST /v1/sites), provision their edges
// (POST /v1/sites/{site}/provision returns the site key, hex, and the edge's MQTT login,
// once), and create keys for platforms, drivers and ops (POST /v1/keys).
//
// # Web pages
//
// The same listener serves cloud/web's pages next to the API: the ops dashboard at /ops/,
// the driver's phone page at /driver/ and the resident's order page at /r/{order}.
//
// # Metrics
//
// GET /metrics is served on --metrics (metrics_addr, LARDER_CLOUD_METRICS_ADDR; default
// 127.0.0.1:8490) alone; the API's listener answers 404 for it, because it may face the
// internet and the exposition is fleet data (sites, alarms, queue depths). Loopback suits
// a Prometheus on the same machine; to scrape from elsewhere, give an address on the
// monitoring network. Empty in the file, or off from the environment or a flag, serves
// no metrics. /healthz stays on the API's listener, where load balancers probe.
//
// # Order of things
//
// Open: store → registry → domain → admin key → downtime → broker → fleet adapter →
// listener → notification outbox → API and pages → metrics listener (the listener comes
// before the outbox so that the default public URL has the real port). Downtime is
// cloud.Service.Resume: if the cloud's last heartbeat (written every 15 s and on Close) is
// over a minute old, every online site reads offline since then, and its edge's first
// status after the restart extends its pickup deadlines by the outage; it comes before
// the broker so that no edge is heard first.
// Close: the reverse, idempotent; queued outbound messages are flushed before the fleet
// adapter disconnects, and the last heartbeat is written after it.
//
// # Notifications
//
// The domain's notices go through cloud/notify's durable outbox, a bucket of the same
// bbolt file sealed with AES-GCM (LARDER_CLOUD_NOTIFY_KEY, or a key drawn once into
// DIR/notify.key; the same key seals the pickup codes held on orders until the resident
// is told them, cloud.Options CodeKey), and a delivery worker: CloudEvents webhooks to each platform's URL
// (set with PUT /v1/platforms/{platform}/webhook, which returns the signing secret once)
// and, when LARDER_CLOUD_SMS_URL is set, SMS through that gateway (without one, SMS
// notices are not queued at all). The domain writes each notice into the outbox in the
// transaction of the change it reports, so a crash never loses an acknowledged change's
// notice (see cloud's package doc).
//
// Notices that carry a pickup code (the arrival notice, a reissued code) also carry the
// resident page's link, {public URL}/r/{order}#c={code}: after the code in the SMS, and
// as resident_url in the webhook data of platforms that get the code. Set --public-url
// (LARDER_CLOUD_PUBLIC_URL) to the address residents reach, e.g. behind a TLS proxy; the
// default, http://{--http address}, suits only a single machine.
package cloudd
