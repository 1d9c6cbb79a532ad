package loadgen

import (
	"strings"
	"testing"
	"time"
)

func TestTargetsMissed(t *testing.T) {
	met := &Summary{
		Ingest: &IngestFigure{Edges: 100, Ratio: 0.6},
		Opens:  &OpenFigure{Latency: &Latency{N: 400, P99: 120}},
		Memory: &MemoryFigure{PerEdgeBytes: 40 << 10},
	}
	want := Targets{IngestRatio: 0.5, OpenP99: 250 * time.Millisecond, MemoryPerEdge: 50 << 10}
	if m := want.Missed(met); len(m) != 0 {
		t.Errorf("all met, got %q", m)
	}
	if m := (Targets{}).Missed(&Summary{}); len(m) != 0 {
		t.Errorf("no targets, got %q", m)
	}
	for _, tc := range []struct {
		name string
		s    *Summary
		says string
	}{
		{"ingest low", &Summary{Ingest: &IngestFigure{Edges: 1, Ratio: 0.49}, Opens: met.Opens, Memory: met.Memory}, "ingest: 0.49"},
		{"ingest unmeasured", &Summary{Ingest: &IngestFigure{Error: "x"}, Opens: met.Opens, Memory: met.Memory}, "ingest: no ratio"},
		{"open slow", &Summary{Ingest: met.Ingest, Opens: &OpenFigure{Latency: &Latency{N: 9, P99: 250}}, Memory: met.Memory}, "p99 250 ms"},
		{"no opens", &Summary{Ingest: met.Ingest, Memory: met.Memory}, "remote opens: none"},
		{"memory high", &Summary{Ingest: met.Ingest, Opens: met.Opens, Memory: &MemoryFigure{PerEdgeBytes: 50<<10 + 1}}, "memory: 50.0 KB"},
		{"no memory", &Summary{Ingest: met.Ingest, Opens: met.Opens}, "memory: not measured"},
	} {
		m := want.Missed(tc.s)
		if len(m) != 1 || !strings.Contains(m[0], tc.says) {
			t.Errorf("%s: got %q, want one line with %q", tc.name, m, tc.says)
		}
	}
}
