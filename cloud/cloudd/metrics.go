package cloudd

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/larder-lockers/larder/cloud/bolt"
)

// storeCollector exposes the bbolt committer's counters: how many transactions, how many
// updates they carried (the ratio is the group size) and where the time went.
type storeCollector struct {
	st                        *bolt.Stats
	commits, updates, reruns  *prometheus.Desc
	runSeconds, commitSeconds *prometheus.Desc
}

func newStoreCollector(st *bolt.Stats) *storeCollector {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	return &storeCollector{st: st,
		commits:       d("larder_store_commits_total", "bbolt transactions committed (each costs two fsyncs)."),
		updates:       d("larder_store_updates_total", "Domain updates committed; divided by commits, the group-commit size."),
		reruns:        d("larder_store_group_reruns_total", "Groups run again without an update that failed after writing."),
		runSeconds:    d("larder_store_run_seconds_total", "Time spent running updates inside transactions."),
		commitSeconds: d("larder_store_commit_seconds_total", "Time spent committing (writes and fsyncs)."),
	}
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.commits, c.updates, c.reruns, c.runSeconds, c.commitSeconds} {
		ch <- d
	}
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.commits, prometheus.CounterValue, float64(c.st.Commits.Load()))
	ch <- prometheus.MustNewConstMetric(c.updates, prometheus.CounterValue, float64(c.st.Updates.Load()))
	ch <- prometheus.MustNewConstMetric(c.reruns, prometheus.CounterValue, float64(c.st.Reruns.Load()))
	ch <- prometheus.MustNewConstMetric(c.runSeconds, prometheus.CounterValue, float64(c.st.RunNanos.Load())/1e9)
	ch <- prometheus.MustNewConstMetric(c.commitSeconds, prometheus.CounterValue, float64(c.st.SyncNanos.Load())/1e9)
}
