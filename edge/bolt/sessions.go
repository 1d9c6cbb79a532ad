package bolt

import (
	"encoding/json"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/larder-lockers/larder/edge"
)

// Drivers' kiosk sessions: the core keeps each under the keyed digest of its token
// (edge.DriverToken), never the token, so that a restart of the edge does not sign a
// driver out in the middle of a stop.

var bDriverTokens = []byte("driver_tokens")

func (t *txn) DriverToken(digest string) (edge.DriverToken, bool, error) {
	return get[edge.DriverToken](t.b(bDriverTokens), []byte(digest))
}

func (t *txn) DriverTokens() ([]edge.DriverToken, error) {
	var out []edge.DriverToken
	err := t.b(bDriverTokens).ForEach(func(k, v []byte) error {
		var d edge.DriverToken
		if err := json.Unmarshal(v, &d); err != nil {
			return err
		}
		out = append(out, d)
		return nil
	})
	return out, err
}

func (t *txn) PutDriverToken(d edge.DriverToken) error {
	return put(t.b(bDriverTokens), []byte(d.Digest), d)
}

func (t *txn) DeleteDriverToken(digest string) error {
	return t.b(bDriverTokens).Delete([]byte(digest))
}

// expiredDriverToken reports whether a stored session ended before now.
func expiredDriverToken(now time.Time) func(v []byte) bool {
	return func(v []byte) bool {
		var d edge.DriverToken
		return json.Unmarshal(v, &d) == nil && !now.Before(d.Expires)
	}
}

// checkDriverTokens verifies invariant 8 (package doc).
func checkDriverTokens(tx *bbolt.Tx, bad func(string, ...any)) error {
	b := tx.Bucket(bDriverTokens)
	if n := b.Stats().KeyN; n > edge.MaxDriverTokens {
		bad("%d driver sessions stored, at most %d allowed", n, edge.MaxDriverTokens)
	}
	return b.ForEach(func(k, v []byte) error {
		var d edge.DriverToken
		switch err := json.Unmarshal(v, &d); {
		case err != nil:
			bad("driver session does not decode: %v", err)
		case d.Digest != string(k) || !isDigest(k):
			bad("driver session stored under a key that is not its token's digest") // never print a key: it could be a token
		case d.Driver == "" || d.Credential == "" || d.Expires.IsZero():
			bad("driver session of %q lacks its driver, credential or expiry", d.Driver)
		}
		return nil
	})
}

// isDigest reports whether k has the shape of a keyed digest: 64 lower-case hex
// characters (a token is 32).
func isDigest(k []byte) bool {
	if len(k) != 64 {
		return false
	}
	for _, c := range k {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
