package web

import "github.com/prometheus/client_golang/prometheus"

// metrics of the pages; all are nil-safe through the methods below (no registry: no
// metrics). Labels stay low-cardinality: no orders, sites or addresses.
type metrics struct {
	streams    prometheus.Gauge
	codeFails  prometheus.Counter
	locked     prometheus.Counter
	extensions prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		return &metrics{}
	}
	m := &metrics{
		streams: prometheus.NewGauge(prometheus.GaugeOpts{Name: "larder_web_stream_clients",
			Help: "Open ops dashboard event streams."}),
		codeFails: prometheus.NewCounter(prometheus.CounterOpts{Name: "larder_web_resident_code_failures_total",
			Help: "Resident page requests with a wrong pickup code or unknown order."}),
		locked: prometheus.NewCounter(prometheus.CounterOpts{Name: "larder_web_resident_locked_total",
			Help: "Resident page requests refused because the order or the client address is locked after wrong codes."}),
		extensions: prometheus.NewCounter(prometheus.CounterOpts{Name: "larder_web_resident_extensions_total",
			Help: "Pickup deadlines extended by residents."}),
	}
	reg.MustRegister(m.streams, m.codeFails, m.locked, m.extensions)
	return m
}

func inc(c prometheus.Counter) {
	if c != nil {
		c.Inc()
	}
}

func (m *metrics) streamOpened() {
	if m.streams != nil {
		m.streams.Inc()
	}
}

func (m *metrics) streamClosed() {
	if m.streams != nil {
		m.streams.Dec()
	}
}
