package broker

import (
	"fmt"
	"sync/atomic"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// registerMetrics exports mochi's own counters. Drops matter most: mochi drops a QoS 1
// message for a subscriber whose in-flight window or write queue is full.
func registerMetrics(reg prometheus.Registerer, srv *mochi.Server) error {
	info := srv.Info
	load := func(p *int64) func() float64 { return func() float64 { return float64(atomic.LoadInt64(p)) } }
	collectors := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "larder_broker_clients_connected",
			Help: "MQTT clients connected to the embedded broker."}, load(&info.ClientsConnected)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "larder_broker_sessions_disconnected",
			Help: "Persistent sessions of disconnected clients the embedded broker keeps until they expire."}, load(&info.ClientsDisconnected)),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "larder_broker_messages_received_total",
			Help: "PUBLISH packets the embedded broker received."}, load(&info.MessagesReceived)),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "larder_broker_messages_sent_total",
			Help: "PUBLISH packets the embedded broker sent."}, load(&info.MessagesSent)),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "larder_broker_messages_dropped_total",
			Help: "Messages the embedded broker dropped for a slow subscriber (write queue full)."}, load(&info.MessagesDropped)),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "larder_broker_inflight_dropped_total",
			Help: "QoS 1 messages the embedded broker dropped because a client's in-flight window was full."}, load(&info.InflightDropped)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "larder_broker_retained_messages",
			Help: "Retained messages held by the embedded broker."}, load(&info.Retained)),
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("broker: register metrics: %w", err)
		}
	}
	return nil
}
