// Package http is the cloud's REST API over chi: JSON under /v1, bearer API keys per role
// (platform, driver, ops, admin), one error shape
//
//	{"error": {"code": "no_capacity", "message": "...", "field": "parcels", "nearby_sites": [...]}}
//
// with one table from domain codes to statuses (errors.go), plus /healthz and
// the OpenAPI 3.1 document at /v1/openapi.json (openapi.json, embedded). A test walks the
// router with chi.Walk and fails when the document and the routes disagree; `make lint`
// validates the document with an OpenAPI validator from npm (tools/openapi).
//
// Handlers decode strictly: bodies are size-limited (Options.MaxBody), unknown fields are
// rejected naming the field, times are RFC 3339 and reported by field, and every bad input
// is a 4xx (the order decoder is fuzzed). The audit log and the reports also answer in
// CSV (reports.go): format=csv or Accept: text/csv. A presenter layer (present.go) keeps storage
// records apart from wire shapes: site keys, digests and full phone numbers never leave.
//
// The handlers depend on small interfaces declared here (service.go), one per group of
// handlers (Keys, Sites, SiteAdmin, Commands, Drivers, Alarms, AuditTrail, Reports,
// Webhooks, Orders, OrderChanges, and FleetSource for the metrics); Options.Service is their union,
// which *cloud.Service satisfies. Authorisation is the domain's (every method takes the
// Principal); this package only authenticates. A platform asking for another platform's
// order gets 404, not 403, so that order ids cannot be probed. The status table
// (StatusOf) serves cloud/web as well, so the pages and the API answer a code alike.
//
// Metrics: larder_http_request_duration_seconds{method,route,code} by chi route pattern
// (never ids), and fleet metrics collected at scrape time (metrics.go): per site
// larder_site_up, larder_site_last_seen_timestamp_seconds, larder_site_desired_version,
// larder_compartments{site,zone,state}, larder_zone_temperature_celsius{site,zone} and
// larder_alarms_open{site,kind}, which reports every alarm kind the domain raises, 0 when
// none is open, so that an alert tells a healthy site from a missing series; for the
// service larder_unlock_failures_total, larder_code_lockouts_total,
// larder_orders_created_total, larder_orders_refused_total, larder_outbound_errors_total,
// larder_edge_events_applied_total and the gauge larder_outbound_pending. The collector
// reads every site at each scrape: fine for hundreds of sites; a fleet of many thousands
// wants cached gauges.
package http
