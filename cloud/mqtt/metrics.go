package mqtt

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/larder-lockers/larder/protocol"
)

type metrics struct {
	connected   prometheus.Gauge
	received    *prometheus.CounterVec
	rejected    *prometheus.CounterVec
	events      *prometheus.CounterVec
	sitesOnline prometheus.Gauge
	commands    *prometheus.CounterVec
	fleetErrors *prometheus.CounterVec
	unowned     *prometheus.CounterVec
	sitesOwned  prometheus.Gauge
	fenced      prometheus.Counter

	// The children of events and received that count once per message, resolved once:
	// a label lookup hashes its values on every call.
	ingested, duplicate, held, refused, failed, rejectedEvents, unownedEvents prometheus.Counter
	receivedEvents                                                            prometheus.Counter
}

// receivedOn is the counter of messages received on ch.
func (m *metrics) receivedOn(ch protocol.Channel) prometheus.Counter {
	if ch == protocol.ChanEvents {
		return m.receivedEvents
	}
	return m.received.WithLabelValues(ch.String())
}

// newMetrics registers the adapter's metrics with reg; nil registers nowhere.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "larder_fleet_broker_connected",
			Help: "1 while the cloud's fleet adapter is connected to the MQTT broker.",
		}),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "larder_fleet_messages_received_total",
			Help: "Messages received from edges, by channel.",
		}, []string{"channel"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "larder_fleet_messages_rejected_total",
			Help: "Messages from edges that failed to decode or validate, by channel.",
		}, []string{"channel"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "larder_fleet_events_total",
			Help: "Edge events by outcome: ingested, duplicate, held (after a gap), refused (sent beyond the edge's window, a protocol violation: dropped unacknowledged, so resent), failed (not applied for now: resent), rejected (did not decode: acknowledged as rejected, never applied), unowned (the site moved to another replica before they committed: resent to it).",
		}, []string{"outcome"}),
		sitesOnline: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "larder_fleet_sites_online",
			Help: "Sites whose last status this process saw was online.",
		}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "larder_fleet_commands_total",
			Help: "Commands by final state as the cloud recorded it.",
		}, []string{"state"}),
		fleetErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "larder_fleet_domain_errors_total",
			Help: "Calls into the domain that failed, by channel.",
		}, []string{"channel"}),
		unowned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "larder_fleet_messages_unowned_total",
			Help: "Messages from edges of sites this replica does not own (in flight while a site moved), ignored unacknowledged, by channel.",
		}, []string{"channel"}),
		sitesOwned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "larder_fleet_sites_owned",
			Help: "Sites this replica owns and is subscribed to (set only when replicas share the fleet through leases).",
		}),
		fenced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "larder_fleet_leases_fenced_total",
			Help: "Sites dropped because the store refused this replica's fence: the lease had moved to another replica.",
		}),
	}
	m.ingested, m.duplicate, m.held = m.events.WithLabelValues("ingested"), m.events.WithLabelValues("duplicate"), m.events.WithLabelValues("held")
	m.refused, m.failed = m.events.WithLabelValues("refused"), m.events.WithLabelValues("failed")
	m.rejectedEvents, m.unownedEvents = m.events.WithLabelValues("rejected"), m.events.WithLabelValues("unowned")
	m.receivedEvents = m.received.WithLabelValues(protocol.ChanEvents.String())
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.connected, m.received, m.rejected, m.events,
		m.sitesOnline, m.commands, m.fleetErrors, m.unowned, m.sitesOwned, m.fenced} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("mqtt: register metrics: %w", err)
		}
	}
	return m, nil
}
