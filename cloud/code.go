package cloud

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/larder-lockers/larder/protocol"
)

// Pickup codes.
//
// A code is CodeDigits random decimal digits from crypto/rand, drawn by rejection
// sampling so that every code is equally likely. It is unique among the live codes of its
// site (the codes index maps site/digest → order, and a draw that hits a live digest is
// drawn again), because the edge looks an order up by the digest of what was typed. Only
// the keyed digest protocol.CodeDigest(siteKey, code) is stored; the plain code exists
// once: in the API response to a platform that delivers codes itself (drawn at
// creation), or in the arrival notice to the resident (drawn when the order is loaded,
// so that no plain code waits in a queue for hours; until then the reservation carries
// the digest of a code nobody was told). The second factor is the last 4 digits of the recipient's phone
// number, stored as protocol.SecondFactorDigest(siteKey, order, last4).
//
// With 8 digits and 50 live codes at a site, a random guess hits some order with
// probability 5·10⁻⁷; with the second factor and the edge's lockout that is out of reach.

// CodeDigits is the length of a pickup code.
const CodeDigits = protocol.CodeDigits

const codeSpace = 100_000_000 // 10^CodeDigits

// QRPayload is the QR payload of a code: "larder:v1:{site}:{code}". It travels with the
// plain code, to the resident (in the notice) or to the platform (in the API response).
// The kiosk page reads it from a scanner that types it (edge/kiosk/web/screens/pickup.js
// parseQR, which must accept this shape): it checks the site, fills in the code and still
// asks for the second factor; the edge checks a scanned code like a typed one. The
// resident page shows a device-bound form instead, this payload followed by
// ":{expires}:{tag}" (protocol.QRTag; web.ResidentQR), which opens without the second
// factor.
func QRPayload(site, code string) string { return "larder:v1:" + site + ":" + code }

// newCode draws a uniform random code.
func newCode() string {
	// The largest multiple of codeSpace below 2^32: values at or above it would make low
	// codes more likely than high ones, so they are drawn again.
	const limit = (1 << 32) / codeSpace * codeSpace
	var b [4]byte
	for {
		rand.Read(b[:]) // never fails
		v := binary.BigEndian.Uint32(b[:])
		if v < limit {
			return fmt.Sprintf("%0*d", CodeDigits, v%codeSpace)
		}
	}
}

// newDigits draws n uniform random decimal digits (n ≤ 9), for driver credentials.
func newDigits(n int) string {
	space := uint32(1)
	for range n {
		space *= 10
	}
	limit := uint32((uint64(1) << 32) / uint64(space) * uint64(space))
	var b [4]byte
	for {
		rand.Read(b[:])
		v := binary.BigEndian.Uint32(b[:])
		if v < limit {
			return fmt.Sprintf("%0*d", n, v%space)
		}
	}
}

// issueCode draws a code unique among the live codes of site and indexes its digest for
// order. It returns the plain code and its digest.
func issueCode(tx Tx, site *Site, order string) (code, digest string, err error) {
	for range 32 {
		code = newCode()
		digest = protocol.CodeDigest(site.Key, code)
		if tx.Get(bCodes, site.ID+"/"+digest) == nil {
			return code, digest, tx.Put(bCodes, site.ID+"/"+digest, []byte(order))
		}
	}
	// 32 collisions in a row means the site has nearly 10^8 live codes: a broken invariant.
	return "", "", Errorf(EInternal, "could not draw a unique code at site %s", site.ID)
}

// phoneDigits returns the digits of a phone number ("+44 20 7946-0958" → "442079460958").
func phoneDigits(p string) string {
	var b strings.Builder
	for _, r := range p {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// validPhone accepts E.164-like numbers: an optional '+', then 7 to 15 digits, with
// spaces, dashes, dots and parentheses allowed between them.
func validPhone(p string) bool {
	if p == "" || len(p) > 32 {
		return false
	}
	for i, r := range p {
		switch {
		case r >= '0' && r <= '9', r == ' ', r == '-', r == '.', r == '(', r == ')':
		case r == '+' && i == 0:
		default:
			return false
		}
	}
	n := len(phoneDigits(p))
	return n >= 7 && n <= 15
}

// LastFour is the second factor of a phone number.
func LastFour(phone string) string {
	d := phoneDigits(phone)
	if len(d) < 4 {
		return d
	}
	return d[len(d)-4:]
}

// sha256Hex digests a high-entropy secret (API keys, MQTT passwords) for storage; such
// secrets need no key or stretching, unlike low-entropy codes.
func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// randomToken returns n random bytes in hex.
func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// dropCode removes o's code from the live codes of its site (if it is still o's).
func dropCode(tx Tx, o *Order) error {
	k := o.Site + "/" + o.CodeDigest
	if string(tx.Get(bCodes, k)) == o.ID {
		return tx.Delete(bCodes, k)
	}
	return nil
}
