package edge

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the edge's Prometheus collectors. Labels are low-cardinality only: results,
// states, zones and board addresses; never orders or codes.
type Metrics struct {
	UnlockTotal    *prometheus.CounterVec // result: ok, jammed, board_offline, error
	UnlockDuration prometheus.Histogram
	DoorsOpen      prometheus.Gauge
	Compartments   *prometheus.GaugeVec // state
	ZoneTemp       *prometheus.GaugeVec // zone
	CodeFailures   prometheus.Counter
	CodeLockouts   prometheus.Counter
	QRRefused      *prometheus.CounterVec // reason: malformed, other_site, bad_tag, expired
	BoardOnline    *prometheus.GaugeVec   // board
	// DesiredVersion is the applied desired-state version: compared with the cloud's
	// larder_site_desired_version it shows an edge lagging behind its reservations.
	DesiredVersion prometheus.Gauge
}

// NewMetrics registers the edge's collectors on reg. A nil reg gives working collectors
// that nobody scrapes.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		UnlockTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "larder_unlock_total", Help: "Latch unlocks by result (ok, jammed, board_offline, error).",
		}, []string{"result"}),
		UnlockDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "larder_unlock_duration_seconds", Help: "Time from an unlock command to the latch confirming release.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		DoorsOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "larder_doors_open", Help: "Doors currently open.",
		}),
		Compartments: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "larder_compartments", Help: "Compartments by state.",
		}, []string{"state"}),
		ZoneTemp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "larder_zone_temperature_celsius", Help: "Last air temperature of each zone.",
		}, []string{"zone"}),
		CodeFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "larder_code_failures_total", Help: "Wrong pickup codes or second factors entered at the kiosk.",
		}),
		CodeLockouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "larder_code_lockouts_total", Help: "Wrong-code budgets spent at the keypad and orders invalidated after too many wrong phone endings.",
		}),
		QRRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "larder_qr_refused_total", Help: "QR payloads refused at the kiosk without a look at their code, by reason (malformed, other_site, bad_tag, expired).",
		}, []string{"reason"}),
		BoardOnline: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "larder_board_online", Help: "1 while a lock board answers, 0 while it is offline.",
		}, []string{"board"}),
		DesiredVersion: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "larder_desired_version", Help: "Version of the desired state (reservations, credentials) the edge has applied.",
		}),
	}
	// Every reason is exported from the start, at 0, so that a rate over it has a series.
	for _, reason := range []string{"malformed", "other_site", "bad_tag", "expired"} {
		m.QRRefused.WithLabelValues(reason)
	}
	if reg != nil {
		reg.MustRegister(m.UnlockTotal, m.UnlockDuration, m.DoorsOpen, m.Compartments, m.ZoneTemp,
			m.CodeFailures, m.CodeLockouts, m.QRRefused, m.BoardOnline, m.DesiredVersion)
	}
	return m
}

func (m *Metrics) boardOnline(board int, online bool) {
	v := 0.0
	if online {
		v = 1
	}
	m.BoardOnline.WithLabelValues(strconv.Itoa(board)).Set(v)
}
