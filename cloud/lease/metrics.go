package lease

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	held    *prometheus.GaugeVec   // kind: site, work
	changes *prometheus.CounterVec // change: gained, lost, released
	live    prometheus.Gauge
}

// newMetrics registers the manager's metrics with reg; nil reg registers nowhere.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		held: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "larder_leases_held",
			Help: "Leases this replica holds, by kind (site: one per site it serves; work: 1 while it runs the periodic work).",
		}, []string{"kind"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "larder_lease_changes_total",
			Help: "Leases this replica gained, lost (expired or taken before it could renew) or released (handed back), by change.",
		}, []string{"change"}),
		live: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "larder_replicas_live",
			Help: "Cloud replicas that heartbeated within one lease TTL, as this replica counted them at its last renewal.",
		}),
	}
	// Pre-create the label values so dashboards see zeros, not gaps.
	for _, k := range []string{"site", "work"} {
		m.held.WithLabelValues(k)
	}
	for _, c := range []string{changeGained, changeLost, changeReleased} {
		m.changes.WithLabelValues(c)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.held, m.changes, m.live} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

const (
	changeGained   = "gained"
	changeLost     = "lost"
	changeReleased = "released"
)
