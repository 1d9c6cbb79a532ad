package cloudd

import (
	"context"
	"time"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/cloud/mqtt"
	"github.com/larder-lockers/larder/protocol"
)

// fleet adapts the domain to the fleet adapter's interfaces (cloud/mqtt.Fleet): the
// adapter speaks in its own types, the domain in its own, and this is the only place
// that knows both.
type fleet struct{ svc *cloud.Service }

var _ mqtt.Fleet = fleet{}

func (f fleet) SiteStatus(ctx context.Context, site string, s mqtt.StatusChange) error {
	return f.svc.ApplyPresence(ctx, site, cloud.Presence{Online: s.Online, At: s.At, Outage: s.Outage, Software: s.Software})
}

func (f fleet) SiteBirth(ctx context.Context, site string, b protocol.Birth) error {
	_, err := f.svc.ApplyBirth(ctx, site, time.Now(), b) // the adapter publishes a snapshot after every birth
	return err
}

// SiteEvents applies every run in one shared transaction: one commit for the batch of a
// fleet worker, which the store's group commit shares with the other workers' too.
func (f fleet) SiteEvents(ctx context.Context, runs []mqtt.EventRun) []mqtt.EventResult {
	in := make([]cloud.EdgeEvents, len(runs))
	for i, r := range runs {
		in[i] = cloud.EdgeEvents{Site: r.Site, Events: r.Events}
	}
	res := f.svc.ApplyEdgeEvents(ctx, in)
	out := make([]mqtt.EventResult, len(res))
	for i, r := range res {
		out[i] = mqtt.EventResult{Ack: r.Ack, Err: r.Err}
	}
	return out
}

func (f fleet) EventHighWater(ctx context.Context, site string) (uint64, error) {
	return f.svc.EventHighWater(ctx, site)
}

func (f fleet) SiteTelemetry(ctx context.Context, site string, t protocol.Telemetry, at time.Time) error {
	return f.svc.ApplyTelemetry(ctx, site, at, t)
}

func (f fleet) DesiredSnapshot(ctx context.Context, site string) (protocol.Desired, error) {
	return f.svc.DesiredSnapshot(ctx, site)
}

func (f fleet) CommandProgress(ctx context.Context, site string, ack protocol.CommandAck, at time.Time) error {
	return f.svc.ApplyCommandAck(ctx, site, at, ack)
}

func (f fleet) PendingCommands(ctx context.Context, site string) ([]mqtt.PendingCommand, error) {
	recs, err := f.svc.PendingCommands(ctx, site)
	if err != nil {
		return nil, err
	}
	out := make([]mqtt.PendingCommand, 0, len(recs))
	for _, r := range recs {
		out = append(out, mqtt.PendingCommand{Site: r.Site, Command: r.Command})
	}
	return out, nil
}

// edgeLogins checks edges' MQTT passwords for the embedded broker (broker.Credentials).
type edgeLogins struct{ svc *cloud.Service }

func (e edgeLogins) CheckEdge(ctx context.Context, site, password string) (bool, error) {
	_, ok := e.svc.AuthenticateEdge(ctx, site, password)
	return ok, nil
}

// NewFleet is the domain as the fleet adapter consumes it, for tools and benchmarks that
// run the adapter over a Service outside Main.
func NewFleet(svc *cloud.Service) mqtt.Fleet { return fleet{svc} }
