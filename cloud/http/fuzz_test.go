package http

import (
	"testing"

	"github.com/larder-lockers/larder/cloud"
)

// FuzzDecodeOrder feeds arbitrary bytes to the order-create decoder: it must never
// panic, and every failure must be a 4xx domain error (never a 500).
func FuzzDecodeOrder(f *testing.F) {
	for _, s := range []string{
		`{"external_id":"x","site":"y1","recipient":{"phone":"+8613800138000","name":"Wang","flat":"2-301"},"accessible":true,"parcels":[{"size":"S","zone":"chilled"},{"size":"L","zone":"frozen"}],"window":{"start":"2030-01-01T10:00:00Z","end":"2030-01-01T11:00:00+08:00"},"code_delivery":"platform"}`,
		`{"external_id":5}`, `{"parcels":[{"size":"S","zone":"chilled","x":1}]}`, `{"window":{"start":"soon"}}`,
		`[]`, `null`, ``, `{`, `{} {}`, `{"recipient":{"phone":null}}`, "{\"external_id\":\"\xff\"}",
		`{"parcels":[` + "1e999" + `]}`, `{"accessible":"yes"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := decodeOrder(data)
		if err != nil {
			e := cloud.AsError(err)
			if s := StatusOf(e.Code); s < 400 || s > 499 {
				t.Fatalf("decode error %v maps to %d", err, s)
			}
			return
		}
		// What decodes must also validate without panicking, and fail only with 4xx.
		if err := req.Validate(req.Window.Start, 1<<62); err != nil {
			if s := StatusOf(cloud.ErrorCode(err)); s < 400 || s > 499 {
				t.Fatalf("validate error %v maps to %d", err, s)
			}
		}
	})
}

// FuzzDecodeRedeliver feeds arbitrary bytes to the redeliver decoder: it must never
// panic, and every failure must be a 4xx domain error.
func FuzzDecodeRedeliver(f *testing.F) {
	for _, s := range []string{
		`{"external_id":"x/redelivery","window":{"start":"2030-01-01T10:00:00Z","end":"2030-01-01T12:00:00Z"},"refund":{"amount_cents":1290,"currency":"CNY","reference":"pay-1","note":"warm"}}`,
		`{"window":{"start":"2030-01-01T10:00:00Z","end":"2030-01-01T12:00:00Z"},"refund":null}`,
		`{"refund":{"amount_cents":"12"}}`, `{"refund":{"amount_cents":1e99}}`, `{"refund":{"cents":1}}`, `{"window":{}}`,
		`[]`, `null`, ``, `{`, `{} {}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := decodeRedeliver(data); err != nil {
			if s := StatusOf(cloud.AsError(err).Code); s < 400 || s > 499 {
				t.Fatalf("decode error %v maps to %d", err, s)
			}
		}
	})
}
