package loadgen

import (
	"flag"
	"fmt"
	"time"
)

// Targets are the figures a run must reach besides losing nothing (Summary.Failures);
// each zero field is not checked. `make bench-load` sets issue 10's: ingest at least half
// the raw broker rate, remote opens p99 under 250 ms, and the cloud's memory per edge.
// The HA run checks its own (HAConfig).
type Targets struct {
	IngestRatio   float64       // ingest / raw broker pub→sub, at least
	OpenP99       time.Duration // remote open p99, below
	MemoryPerEdge int64         // the cloud's resident set per connected edge in bytes, at most
}

// Flags registers the targets' flags on fs.
func (t *Targets) Flags(fs *flag.FlagSet) {
	fs.Float64Var(&t.IngestRatio, "want-ingest-ratio", t.IngestRatio, "fail unless ingest reaches this share of the raw broker rate (0: not checked)")
	fs.DurationVar(&t.OpenP99, "want-open-p99", t.OpenP99, "fail unless remote opens' p99 is below this (0: not checked)")
	fs.Int64Var(&t.MemoryPerEdge, "want-memory-per-edge", t.MemoryPerEdge, "fail unless the cloud's resident set per connected edge is at most this many bytes (0: not checked)")
}

// Missed returns a line for each target s does not reach, and for each figure a target
// needs that the run did not measure.
func (t Targets) Missed(s *Summary) []string {
	var out []string
	if t.IngestRatio > 0 {
		switch i := s.Ingest; {
		case i == nil || i.Ratio == 0:
			out = append(out, fmt.Sprintf("ingest: no ratio measured (target ≥ %.2f)", t.IngestRatio))
		case i.Ratio < t.IngestRatio:
			out = append(out, fmt.Sprintf("ingest: %.2f × the raw broker rate with %d edges, want ≥ %.2f", i.Ratio, i.Edges, t.IngestRatio))
		}
	}
	if t.OpenP99 > 0 {
		want := float64(t.OpenP99) / float64(time.Millisecond)
		switch o := s.Opens; {
		case o == nil || o.Latency == nil:
			out = append(out, fmt.Sprintf("remote opens: none measured (target p99 < %v)", t.OpenP99))
		case o.Latency.P99 >= want:
			out = append(out, fmt.Sprintf("remote opens: p99 %.0f ms of %d, want < %v", o.Latency.P99, o.Latency.N, t.OpenP99))
		}
	}
	if t.MemoryPerEdge > 0 {
		switch m := s.Memory; {
		case m == nil:
			out = append(out, fmt.Sprintf("memory: not measured (target ≤ %.1f KB per edge)", float64(t.MemoryPerEdge)/1024))
		case m.PerEdgeBytes > t.MemoryPerEdge:
			out = append(out, fmt.Sprintf("memory: %.1f KB per edge, want ≤ %.1f KB", float64(m.PerEdgeBytes)/1024, float64(t.MemoryPerEdge)/1024))
		}
	}
	return out
}
