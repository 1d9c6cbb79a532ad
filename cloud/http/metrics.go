package http

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/larder-lockers/larder/cloud"
)

// alarmKinds are the kinds of alarm the domain opens (cloud.AlarmKinds):
// larder_alarms_open reports every one of them for every site, 0 when none is open, so
// that a dashboard or an alert rule tells a healthy site (0) from a missing series.
var alarmKinds = cloud.AlarmKinds()

// fleetCollector exposes fleet health at scrape time from the domain: per-site presence,
// compartments by zone and state, zone temperatures, open alarms by kind (zeros
// included), and the service's counters. Site is a label (a fleet has a bounded number
// of sites, like hosts); order ids and codes never are.
type fleetCollector struct {
	svc FleetSource

	up, lastSeen, comps, temp, alarms, desired   *prometheus.Desc
	unlockFail, lockouts, created, refused, sent *prometheus.Desc
	pending, events                              *prometheus.Desc
}

func newFleetCollector(svc FleetSource) *fleetCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &fleetCollector{svc: svc,
		up:         d("larder_site_up", "1 if the site's edge is online.", "site"),
		lastSeen:   d("larder_site_last_seen_timestamp_seconds", "When the cloud last heard from the site's edge.", "site"),
		comps:      d("larder_compartments", "Compartments by site, zone and state.", "site", "zone", "state"),
		temp:       d("larder_zone_temperature_celsius", "Last reported air temperature of a zone.", "site", "zone"),
		alarms:     d("larder_alarms_open", "Open alarms by site and kind; 0 for a kind with none open.", "site", "kind"),
		desired:    d("larder_site_desired_version", "Version of the site's desired state (compare with the edge's larder_desired_version).", "site"),
		unlockFail: d("larder_unlock_failures_total", "Door openings that failed (jammed locks, failed or timed-out open commands)."),
		lockouts:   d("larder_code_lockouts_total", "code_lockout events applied: wrong-code budgets spent at keypads and orders invalidated after too many wrong phone endings."),
		created:    d("larder_orders_created_total", "Orders admitted."),
		refused:    d("larder_orders_refused_total", "Orders refused because the site was full."),
		sent:       d("larder_outbound_errors_total", "Failed deliveries of desired state, commands or notifications to their adapters."),
		pending:    d("larder_outbound_pending", "Outbound messages waiting for delivery to the adapters."),
		events:     d("larder_edge_events_applied_total", "Edge events applied."),
	}
}

func (c *fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.lastSeen, c.comps, c.temp, c.alarms, c.desired, c.unlockFail, c.lockouts, c.created, c.refused, c.sent, c.pending, c.events} {
		ch <- d
	}
}

func (c *fleetCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sites, err := c.svc.ListSites(ctx, cloud.System)
	if err == nil {
		for _, s := range sites {
			up := 0.0
			if s.Online {
				up = 1
			}
			ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up, s.ID)
			ch <- prometheus.MustNewConstMetric(c.desired, prometheus.GaugeValue, float64(s.DesiredVersion), s.ID)
			if !s.LastSeen.IsZero() {
				ch <- prometheus.MustNewConstMetric(c.lastSeen, prometheus.GaugeValue, float64(s.LastSeen.UnixMilli())/1000, s.ID)
			}
			for zone, states := range s.ByZone {
				for _, st := range cloud.CompStates() {
					ch <- prometheus.MustNewConstMetric(c.comps, prometheus.GaugeValue, float64(states[st]), s.ID, string(zone), string(st))
				}
			}
			for _, z := range s.Zones {
				if z.Celsius != nil {
					ch <- prometheus.MustNewConstMetric(c.temp, prometheus.GaugeValue, *z.Celsius, s.ID, string(z.Zone))
				}
			}
			for _, kind := range alarmKinds {
				ch <- prometheus.MustNewConstMetric(c.alarms, prometheus.GaugeValue, float64(s.AlarmKinds[kind]), s.ID, string(kind))
			}
		}
	}
	st := c.svc.Stats()
	ch <- prometheus.MustNewConstMetric(c.unlockFail, prometheus.CounterValue, float64(st.UnlockFailures.Load()))
	ch <- prometheus.MustNewConstMetric(c.lockouts, prometheus.CounterValue, float64(st.CodeLockouts.Load()))
	ch <- prometheus.MustNewConstMetric(c.created, prometheus.CounterValue, float64(st.OrdersCreated.Load()))
	ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue, float64(st.Refused.Load()))
	ch <- prometheus.MustNewConstMetric(c.sent, prometheus.CounterValue, float64(st.SendErrors.Load()))
	ch <- prometheus.MustNewConstMetric(c.events, prometheus.CounterValue, float64(st.EventsApplied.Load()))
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(c.svc.Pending()))
}
