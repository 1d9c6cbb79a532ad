package e2e_test

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/larder-lockers/larder/demo"
	"github.com/larder-lockers/larder/edge/bolt"
	"github.com/larder-lockers/larder/protocol"
)

// TestMalformedEventDoesNotWedgeTheSite: an event the cloud cannot decode sits in the
// real edge's outbox between good ones (planted in its bbolt file while it is stopped,
// as a broken edge build would write it). With the real cloud, edge and Mosquitto, the
// cloud applies the event after it, records the rejection in its audit log, and names
// it in its ack; the edge sets it aside (kept, byte for byte), drains its outbox and
// raises larder_mqtt_events_rejected_total.
func TestMalformedEventDoesNotWedgeTheSite(t *testing.T) {
	s := newSystem(t, sysOpts{})
	s.waitDrained(30 * time.Second)
	if err := s.edge.Stop(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(s.edge.Opts.DataDir, "edge.db")
	bad, good := plantEvents(t, path)

	s.startEdge()
	s.waitDrained(30 * time.Second)
	// The event after the rejected one took effect: its alarm is open.
	if err := demo.Eventually(s.ctx, 30*time.Second, "help_requested alarm", func() error {
		st, err := s.ops.Site(s.ctx, s.site)
		if err != nil {
			return err
		}
		for _, a := range st.Alarms {
			if a["kind"] == string(protocol.EventHelpRequested) {
				return nil
			}
		}
		return fmt.Errorf("alarms %v", st.Alarms)
	}); err != nil {
		t.Fatal(err)
	}
	var audit struct {
		Entries []struct {
			Action string `json:"action"`
			Reason string `json:"reason"`
		} `json:"entries"`
	}
	getJSON(t, s.cloud.URL+"/v1/audit?site="+url.QueryEscape(s.site), s.ops.Key, &audit)
	found := false
	for _, a := range audit.Entries {
		if a.Action == "event_rejected" {
			found = true
			if want := "invalid_event: body.order: required for picked_up"; a.Reason != want {
				t.Errorf("audit reason %q, want %q", a.Reason, want)
			}
		}
	}
	if !found {
		t.Fatalf("no event_rejected in the cloud's audit log: %+v", audit)
	}
	if err := demo.Eventually(s.ctx, 10*time.Second, "edge alarm metric", func() error {
		body := getText(t, s.edge.MetricsURL+"/metrics")
		if !strings.Contains(body, "\nlarder_mqtt_events_rejected_total 1\n") {
			return fmt.Errorf("larder_mqtt_events_rejected_total not 1")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	if err := s.edge.Stop(); err != nil {
		t.Fatal(err)
	}
	st, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	kept, err := st.RejectedEvents()
	if err != nil {
		t.Fatal(err)
	}
	if len(kept) != 1 || kept[0].Seq != bad.seq || kept[0].Field != "body.order" || string(kept[0].Payload) != bad.payload {
		t.Fatalf("edge kept %+v, want seq %d as planted: %s", kept, bad.seq, bad.payload)
	}
	if acked, _ := st.Acked(); acked < good.seq {
		t.Fatalf("edge acked %d, want at least %d", acked, good.seq)
	}
}

type planted struct {
	seq     uint64
	payload string
}

// plantEvents appends to the outbox of the stopped edge's database at path a picked_up
// event without its order (undecodable) and a help request after it.
func plantEvents(t *testing.T, path string) (bad, good planted) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bbolt.Tx) error {
		meta, ob := tx.Bucket([]byte("meta")), tx.Bucket([]byte("outbox"))
		next := uint64(1)
		if v := meta.Get([]byte("outbox_next")); v != nil {
			next = binary.BigEndian.Uint64(v)
		}
		ts := time.Now().UTC().Format(time.RFC3339)
		bad = planted{next, fmt.Sprintf(`{"v":1,"id":"planted-%d","seq":%d,"ts":%q,"type":"event","body":{"kind":"picked_up","credential":"pickup_code"}}`, next, next, ts)}
		raw, err := protocol.Encode(protocol.Header{Seq: next + 1}, protocol.Event{Kind: protocol.EventHelpRequested, Credential: protocol.CredNone})
		if err != nil {
			return err
		}
		good = planted{next + 1, string(raw)}
		key := func(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
		if err := ob.Put(key(bad.seq), []byte(bad.payload)); err != nil {
			return err
		}
		if err := ob.Put(key(good.seq), raw); err != nil {
			return err
		}
		return meta.Put([]byte("outbox_next"), key(next+2))
	})
	if err != nil {
		t.Fatal(err)
	}
	return bad, good
}

func getJSON(t *testing.T, u, key string, out any) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s %s", u, resp.Status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

func getText(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
