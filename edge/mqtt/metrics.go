package mqtt

import (
	"math"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/larder-lockers/larder/protocol"
)

type metrics struct {
	connected       prometheus.Gauge
	attempts        prometheus.Counter
	rejected        *prometheus.CounterVec
	held            *prometheus.CounterVec
	published       prometheus.Counter
	resent          prometheus.Counter
	desired         *prometheus.CounterVec
	unacked         prometheus.GaugeFunc
	commandAcksSent prometheus.Counter
	eventsRejected  prometheus.Counter
}

// newMetrics registers the package's metrics with reg; nil reg registers nowhere.
// larder_mqtt_outbox_unacked is read from r at every gather.
func newMetrics(reg prometheus.Registerer, r Reporter) (*metrics, error) {
	m := &metrics{
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "larder_broker_connected",
			Help: "1 while the edge is connected to the MQTT broker, 0 otherwise.",
		}),
		attempts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "larder_mqtt_connect_attempts_total",
			Help: "Connection attempts to the MQTT broker, successful or not.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "larder_mqtt_rejected_total",
			Help: "Inbound MQTT payloads rejected as malformed or invalid, by channel.",
		}, []string{"channel"}),
		held: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "larder_mqtt_inbound_held_total",
			Help: "Inbound MQTT messages that waited for room in the worker queue, their PUBACK held meanwhile, by channel.",
		}, []string{"channel"}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "larder_mqtt_outbox_published_total",
			Help: "Outbox events published to the broker, resends included.",
		}),
		resent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "larder_mqtt_outbox_resent_total",
			Help: "Times the drainer went back to the last acknowledged event and resent from there.",
		}),
		desired: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "larder_mqtt_desired_total",
			Help: "Desired-state messages by outcome (applied, duplicate, gap, error).",
		}, []string{"outcome"}),
		// The backlog is the durable outbox's, read when scraped, not what the drainer
		// has put on the wire: while the broker is away nothing is on the wire and
		// everything waits, which is exactly when the backlog matters.
		unacked: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "larder_mqtt_outbox_unacked",
			Help: "Events in the edge's outbox that the cloud has not acknowledged yet, connected or not (NaN: the store did not answer).",
		}, func() float64 { return backlog(r) }),
		commandAcksSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "larder_mqtt_command_acks_published_total",
			Help: "Command acks published and taken by the broker (PUBACK), resends included.",
		}),
		eventsRejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "larder_mqtt_events_rejected_total",
			Help: "Outbox events the cloud rejected as undecodable and the edge set aside for inspection; any increase is an alarm.",
		}),
	}
	// Pre-create the label values so dashboards see zeros, not gaps.
	for _, c := range []protocol.Channel{protocol.ChanDesired, protocol.ChanCommands, protocol.ChanEventAck} {
		m.rejected.WithLabelValues(c.String())
		m.held.WithLabelValues(c.String())
	}
	for _, o := range []string{"applied", "duplicate", "gap", "error"} {
		m.desired.WithLabelValues(o)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.connected, m.attempts, m.rejected, m.held,
			m.published, m.resent, m.desired, m.unacked, m.commandAcksSent, m.eventsRejected} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// backlog is the number of outbox events the cloud has not acknowledged, as the core
// reports it in Telemetry.OutboxDepth (the same figure the cloud shows ops); NaN when
// the core cannot tell, since 0 would claim an empty outbox.
func backlog(r Reporter) float64 {
	t, err := r.Telemetry()
	if err != nil {
		return math.NaN()
	}
	return float64(t.OutboxDepth)
}
