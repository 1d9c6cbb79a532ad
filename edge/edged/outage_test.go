package edged_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/larder-lockers/larder/edge"
	"github.com/larder-lockers/larder/edge/bolt"
	"github.com/larder-lockers/larder/edge/edged"
	"github.com/larder-lockers/larder/edge/mqtt/mqtttest"
	"github.com/larder-lockers/larder/protocol"
)

// startUnreachable runs edged.Main in-process pointed at a broker nobody listens on.
func (r *rig) startUnreachable() {
	r.t.Helper()
	cfg := r.cfg
	cfg.Broker = "tcp://" + mqtttest.FreeAddr(r.t)
	m, err := edged.NewMain(cfg, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := m.Open(context.Background()); err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.m, r.kiosk, r.stop, r.done = m, m.KioskURL(), cancel, make(chan struct{})
	go func() { defer close(r.done); m.Run(ctx) }()
	r.t.Cleanup(r.shutdown)
}

// TestE2EOfflinePastDeadline: through the real daemon and its kiosk, an edge that has
// not reached the cloud for ten minutes (stopped, its outage record moved ten minutes
// back, then started against a dead broker) opens an order whose deadline has passed
// but whose food-safety cap has not, and lists it as loaded for the driver; an order
// past its cap, and one without a cap (from a 1.0 cloud), are expired. When the broker
// is back, the cloud hears the outage once.
func TestE2EOfflinePastDeadline(t *testing.T) {
	r := newRig(t, mqtttest.StartMochi(t).URL(), nil)
	r.start()
	expires := time.Now().Add(3 * time.Second)
	honoured := ord{id: "ord_outage_1", code: "11112222", factor: "1111", slots: []int{2}}
	capped := ord{id: "ord_outage_2", code: "33334444", factor: "2222", slots: []int{3}}
	uncapped := ord{id: "ord_outage_3", code: "55556666", factor: "3333", slots: []int{4}}
	caps := map[string]time.Time{honoured.id: expires.Add(time.Hour), capped.id: expires.Add(time.Second)}
	r.ver++
	d := protocol.Desired{Version: r.ver, Full: true, Credentials: []protocol.LoadingCredential{{ID: "cred-1",
		Digest: protocol.CredentialDigest(key, "driver-token"), Driver: "drv-1", ExpiresAt: time.Now().Add(time.Hour)}}}
	for _, o := range []ord{honoured, capped, uncapped} {
		d.Reservations = append(d.Reservations, protocol.Reservation{Order: o.id, CodeDigest: protocol.CodeDigest(key, o.code),
			SecondFactorDigest: protocol.SecondFactorDigest(key, o.id, o.factor), ExpiresAt: expires, MaxExpiresAt: caps[o.id],
			Zone: protocol.ZoneChilled, Slots: []protocol.Slot{{Compartment: o.slots[0], Generation: 1, Size: protocol.SizeM}}})
	}
	r.cloud.Publish(t, protocol.Header{}, d)
	r.waitDesired(r.ver)
	tok := r.login()
	for _, o := range []ord{honoured, capped, uncapped} {
		r.load(tok, o)
	}
	r.cloud.Wait(t, 15*time.Second, "three loaded", func(s mqtttest.Snapshot) bool { return count(s, protocol.EventLoaded, "") == 3 })

	r.shutdown()
	st, err := bolt.Open(filepath.Join(r.cfg.DataDir, "edge.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = st.Update(func(tx edge.Tx) error {
		k, err := tx.Link()
		if err != nil || k.Down.IsZero() {
			return fmt.Errorf("link record after a stop: %+v, %v; want down since the stop", k, err)
		}
		k.Down = k.Down.Add(-10 * time.Minute)
		return tx.PutLink(k)
	})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	r.startUnreachable()
	time.Sleep(time.Until(caps[capped.id].Add(100 * time.Millisecond)))

	tok = r.login()
	_, body := r.call("GET", "/api/driver/manifest", "", tok)
	states := map[string]string{}
	for _, o := range body["orders"].([]any) {
		mo := o.(map[string]any)
		states[mo["order"].(string)] = mo["state"].(string)
	}
	want := map[string]string{honoured.id: "loaded", capped.id: "expired", uncapped.id: "expired"}
	for id, w := range want {
		if states[id] != w {
			t.Errorf("manifest: %s is %q, want %q", id, states[id], w)
		}
	}
	for _, c := range []struct {
		o    ord
		want int
	}{{honoured, 200}, {capped, 410}, {uncapped, 410}} {
		if st, body := r.call("POST", "/api/pickup", fmt.Sprintf(`{"code":%q,"factor":%q}`, c.o.code, c.o.factor), ""); st != c.want {
			t.Errorf("pickup of %s past its deadline, offline: %d %v, want %d", c.o.id, st, body, c.want)
		}
	}

	r.shutdown()
	stopped := time.Now()
	r.start()
	s := r.waitEvent(protocol.EventOutage, "", 15*time.Second)
	var seconds []float64
	for _, m := range s.Processed {
		if e := m.Body.(protocol.Event); e.Kind == protocol.EventOutage {
			seconds = append(seconds, e.Seconds)
		}
	}
	if len(seconds) != 1 || seconds[0] < 600 || seconds[0] > 600+time.Since(stopped).Seconds()+30 {
		t.Errorf("outage events %v, want one of ten minutes and the test's seconds", seconds)
	}
}
