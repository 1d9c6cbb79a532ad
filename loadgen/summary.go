package loadgen

import (
	"fmt"
	"io"
	"slices"
	"time"
)

// Summary is a run's figures, each with its same-run baseline, and what was lost. It is
// also the -json document.
type Summary struct {
	Edges            int           `json:"edges"`
	Seed             uint64        `json:"seed"`
	Broker           string        `json:"broker"`
	ProvisionSeconds float64       `json:"provision_seconds"`
	ConnectSeconds   float64       `json:"connect_seconds"`
	Ingest           *IngestFigure `json:"ingest,omitempty"`
	RawLatency       *Latency      `json:"raw_latency,omitempty"`
	Orders           *OrderFigure  `json:"orders,omitempty"`
	HTTPFloor        *Latency      `json:"http_floor,omitempty"`
	Opens            *OpenFigure   `json:"remote_opens,omitempty"`
	Memory           *MemoryFigure `json:"memory,omitempty"`
	Storm            *StormFigure  `json:"storm,omitempty"`
	Losses           LossFigure    `json:"losses"`
	Protocol         ProtocolFacts `json:"protocol"`
	// CloudLogLines is how many lines a cloud the run started logged (at warn and above).
	CloudLogLines *int64 `json:"cloud_log_lines,omitempty"`
	// Failures lists why the run failed; empty means nothing was lost.
	Failures []string `json:"failures"`
}

// OK reports whether nothing was lost and every measurement could be made.
func (s *Summary) OK() bool { return len(s.Failures) == 0 }

// IngestFigure is events acknowledged per second (durable effect and ack) next to the
// raw broker's pub→sub rate with as many publishers and messages.
type IngestFigure struct {
	Edges        int     `json:"edges"`
	Events       int     `json:"events"`
	PerSecond    float64 `json:"per_second"`
	RawPerSecond float64 `json:"raw_per_second,omitempty"`
	Ratio        float64 `json:"ratio,omitempty"`
	Error        string  `json:"error,omitempty"`
	RawError     string  `json:"raw_error,omitempty"`
}

// OrderFigure is orders created over REST at the offered rate.
type OrderFigure struct {
	Offered     float64  `json:"offered_per_second"`
	Created     int      `json:"created"`
	PerSecond   float64  `json:"per_second"`
	Latency     *Latency `json:"latency"`
	SkippedFull int64    `json:"skipped_full"` // ticks whose chosen site had no compartment to spare
}

// OpenFigure is remote opens from the REST call to SUCCEEDED visible in REST.
type OpenFigure struct {
	Offered   float64  `json:"offered_per_second"`
	Succeeded int      `json:"succeeded"`
	Failed    int      `json:"failed"`
	Latency   *Latency `json:"latency"`
}

// MemoryFigure is the cloud's resident set before and after the edges connected.
type MemoryFigure struct {
	BeforeBytes  int64 `json:"before_bytes"`
	AfterBytes   int64 `json:"after_bytes"`
	PerEdgeBytes int64 `json:"per_edge_bytes"`
}

// StormFigure is the reconnect storm: the broker restarted with every edge connected,
// and each edge wrote one event while it was down.
type StormFigure struct {
	Broker string `json:"broker"` // "mosquitto", or "embedded" (the cloud restarted)
	Edges  int    `json:"edges"`
	// DownSeconds is from the kill until the broker was listening again.
	DownSeconds float64 `json:"down_seconds"`
	// Healthy counts the edges connected again with their outage event acknowledged;
	// Healthy is from the kill until each was, over the edges.
	Healthy      int      `json:"healthy"`
	HealthyAfter *Latency `json:"healthy_after"`
	// Disconnects counts the connections lost during the storm (every edge loses one;
	// more are reconnects refused or cut while the fleet came back).
	Disconnects   int64   `json:"disconnects"`
	TargetSeconds float64 `json:"target_seconds"`
	Error         string  `json:"error,omitempty"`
}

// LossFigure is what must be zero.
type LossFigure struct {
	OrdersWalked     int `json:"orders_walked"`
	OrdersWrong      int `json:"orders_wrong"` // not picked_up over REST, or their walk failed
	EventsUnacked    int `json:"events_unacked"`
	DigestMismatches int `json:"digest_mismatches"`
}

// ProtocolFacts are the edges' counts of what crossed the wire.
type ProtocolFacts struct {
	EventsPublished int64 `json:"events_published"`
	EventsSent      int64 `json:"events_sent"`
	EventsResent    int64 `json:"events_resent"`
	AcksDuplicate   int64 `json:"acks_duplicate"`
	AcksBeyond      int64 `json:"acks_beyond"`
	DesiredApplied  int64 `json:"desired_applied"`
	DesiredStale    int64 `json:"desired_stale"`
	DesiredGaps     int64 `json:"desired_gaps"`
	InboundDropped  int64 `json:"inbound_dropped"`
	Rejected        int64 `json:"rejected"`
	Commands        int64 `json:"commands"`
	CommandsRepeat  int64 `json:"commands_repeat"`
	CommandAcks     int64 `json:"command_acks"`
	CommandAckFails int64 `json:"command_ack_fails"`
	ConnectionsLost int64 `json:"connections_lost"`
	PublishFailures int64 `json:"publish_failures"`
}

func (s *Summary) fill(c *edgeCounters) {
	s.Protocol = ProtocolFacts{c.eventsPublished.Load(), c.eventsSent.Load(), c.eventsResent.Load(), c.acksDuplicate.Load(),
		c.acksBeyond.Load(), c.desiredApplied.Load(), c.desiredStale.Load(), c.desiredGaps.Load(), c.inboundDropped.Load(),
		c.rejected.Load(), c.commands.Load(), c.commandsRepeat.Load(), c.commandAcks.Load(), c.commandAckFails.Load(),
		c.connectionsLost.Load(), c.publishFailures.Load()}
	p := s.Protocol
	for _, f := range []struct {
		n    int64
		what string
	}{{p.AcksBeyond, "event acks beyond the last event published"}, {p.Rejected, "malformed messages from the cloud"},
		{p.CommandAckFails, "command acks the broker did not take"}, {p.ConnectionsLost, "edge connections lost"},
		{p.InboundDropped, "desired or command messages dropped by a full edge queue"}} {
		if f.n > 0 {
			s.Failures = append(s.Failures, fmt.Sprintf("%d %s", f.n, f.what))
		}
	}
	if s.Opens != nil && s.Opens.Failed > 0 {
		s.Failures = append(s.Failures, fmt.Sprintf("%d remote opens did not reach SUCCEEDED", s.Opens.Failed))
	}
}

// Latency is a distribution's percentiles, in milliseconds.
type Latency struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

func latencyOf(d []time.Duration) *Latency {
	if len(d) == 0 {
		return nil
	}
	s := slices.Clone(d)
	slices.Sort(s)
	at := func(q float64) float64 {
		return float64(s[min(len(s)-1, int(q*float64(len(s))))]) / float64(time.Millisecond)
	}
	return &Latency{N: len(s), P50: at(0.50), P99: at(0.99), Max: at(1)}
}

func (l *Latency) String() string {
	if l == nil {
		return "no samples"
	}
	return fmt.Sprintf("p50 %.1f ms p99 %.1f ms (n=%d)", l.P50, l.P99, l.N)
}

// Print writes one line per figure, each with its same-run baseline, then the losses
// and the verdict.
func (s *Summary) Print(w io.Writer) {
	fmt.Fprintf(w, "larder-load: %d edges, broker %s, seed %d; provisioned in %.1f s, connected in %.1f s\n",
		s.Edges, s.Broker, s.Seed, s.ProvisionSeconds, s.ConnectSeconds)
	if f := s.Ingest; f != nil {
		raw := "raw baseline not measured"
		switch {
		case f.RawError != "":
			raw = "raw baseline FAILED: " + f.RawError
		case f.RawPerSecond > 0:
			raw = fmt.Sprintf("raw pub→sub %.0f/s, ratio %.2f", f.RawPerSecond, f.Ratio)
		}
		fmt.Fprintf(w, "ingest       %.0f events/s acked, %d edges at once, %d events | %s\n", f.PerSecond, f.Edges, f.Events, raw)
	}
	if o := s.Orders; o != nil {
		fmt.Fprintf(w, "orders       %.1f/s created of %.1f/s offered, %s | HTTP floor GET /healthz %s\n", o.PerSecond, o.Offered, o.Latency, s.HTTPFloor)
	}
	if o := s.Opens; o != nil {
		fmt.Fprintf(w, "remote open  REST → SUCCEEDED in REST %s, %d failed | raw broker pub→sub %s\n", o.Latency, o.Failed, s.RawLatency)
	}
	if m := s.Memory; m != nil {
		fmt.Fprintf(w, "memory       cloud RSS %.1f MB with %d edges: %.1f KB per edge | %.1f MB before they connected\n",
			float64(m.AfterBytes)/(1<<20), s.Edges, float64(m.PerEdgeBytes)/1024, float64(m.BeforeBytes)/(1<<20))
	}
	p := s.Protocol
	fmt.Fprintf(w, "events       %d published, %d sent (%d resent), %d unacked, %d duplicate acks\n",
		p.EventsPublished, p.EventsSent, p.EventsResent, s.Losses.EventsUnacked, p.AcksDuplicate)
	fmt.Fprintf(w, "orders       %d walked, %d not picked_up, %d digest mismatches; desired %d applied, %d stale, %d gaps\n",
		s.Losses.OrdersWalked, s.Losses.OrdersWrong, s.Losses.DigestMismatches, p.DesiredApplied, p.DesiredStale, p.DesiredGaps)
	if f := s.Storm; f != nil {
		if f.HealthyAfter == nil {
			fmt.Fprintf(w, "storm        FAILED: %s\n", f.Error)
		} else {
			fmt.Fprintf(w, "storm        %d of %d edges healthy again after the %s broker restart: last %.1f s, p50 %.1f s; %d disconnects | broker down %.1f s (target < %.0f s)\n",
				f.Healthy, f.Edges, f.Broker, f.HealthyAfter.Max/1000, f.HealthyAfter.P50/1000, f.Disconnects, f.DownSeconds, f.TargetSeconds)
		}
	}
	if s.CloudLogLines != nil {
		fmt.Fprintf(w, "cloud log    %d lines at warn and above\n", *s.CloudLogLines)
	}
	if s.OK() {
		fmt.Fprintln(w, "result       OK: nothing lost")
		return
	}
	fmt.Fprintln(w, "result       FAILED:")
	for _, f := range s.Failures {
		fmt.Fprintln(w, "  "+f)
	}
}
