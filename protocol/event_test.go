package protocol_test

import (
	"testing"

	"github.com/larder-lockers/larder/protocol"
)

// TestRejectEvent: an undecodable event is rejected by the sequence its envelope names,
// with the field Decode blamed; without a v 1 envelope and a positive seq there is
// nothing to name ([ack.reject]).
func TestRejectEvent(t *testing.T) {
	for _, tc := range []struct {
		name, payload string
		ok            bool
		want          protocol.Rejection
	}{
		{"required field missing", `{"v":1,"id":"a","seq":5,"ts":"2026-05-04T17:30:00Z","type":"event","body":{"kind":"picked_up","credential":"none"}}`,
			true, protocol.Rejection{Seq: 5, Error: protocol.ErrInvalidEvent, Field: "body.order", Message: "required for picked_up"}},
		{"bad timestamp", `{"v":1,"id":"a","seq":7,"ts":"yesterday","type":"event","body":{"kind":"help_requested","credential":"none"}}`,
			true, protocol.Rejection{Seq: 7, Error: protocol.ErrInvalidEvent, Field: "ts"}},
		{"keys in another case", `{"V":1,"ID":"a","SEQ":9,"TS":"2026-05-04T17:30:00Z","Type":"event","Body":{"kind":"loaded","credential":"driver"}}`,
			true, protocol.Rejection{Seq: 9, Error: protocol.ErrInvalidEvent, Field: "body.order", Message: "required for loaded"}},
		{"no seq", `{"v":1,"id":"a","ts":"2026-05-04T17:30:00Z","type":"event","body":{}}`, false, protocol.Rejection{}},
		{"seq as a string", `{"v":1,"id":"a","seq":"5","ts":"2026-05-04T17:30:00Z","type":"event","body":{}}`, false, protocol.Rejection{}},
		{"another major version", `{"v":2,"id":"a","seq":5,"type":"event","body":{}}`, false, protocol.Rejection{}},
		{"not JSON", `{"v":1,"seq":5`, false, protocol.Rejection{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := protocol.DecodeOn(protocol.ChanEvents, []byte(tc.payload))
			if err == nil {
				t.Fatal("decoded")
			}
			got, ok := protocol.RejectEvent([]byte(tc.payload), err)
			if tc.want.Message == "" {
				got.Message = "" // the decoder's wording
			}
			if ok != tc.ok || got != tc.want {
				t.Errorf("RejectEvent = %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
