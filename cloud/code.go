package cloud

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/larder-lockers/larder/protocol"
)

// Pickup codes.
//
// A code is CodeDigits random decimal digits from crypto/rand, drawn by rejection
// sampling so that every code is equally likely. It is unique among the live codes of its
// site (the codes index maps site/digest → order, and a draw that hits a live digest is
// drawn again), because the edge looks an order up by the digest of what was typed. The
// store keeps the keyed digest protocol.CodeDigest(siteKey, code), and the plain code
// only sealed, while it waits to be told (below); the second factor is the last 4 digits of the recipient's phone number, stored
// as protocol.SecondFactorDigest(siteKey, order, last4).
//
// The resident's code is drawn when the order is admitted, so that its digest reaches
// the edge with the reservation, before anyone can load the order: a resident who is
// told the code can always use it, even if the edge loses its link the moment the order
// is loaded. A platform that delivers codes itself gets the plain code in the create
// response, once. Otherwise the plain code is held on the order, sealed (see holdCode),
// until the resident may be told it:
//   - the code drawn at admission until the order is loaded: the arrival notice carries
//     it, in the transaction that records the loading, and the sealed copy is erased;
//   - a reissued code until the edge reports that it applied the desired version that
//     carries the new digest (its birth or its telemetry, protocol.Telemetry
//     DesiredVersion), so that the kiosk does not refuse a code the resident holds
//     because its delta is still on the way (refusals that would count toward the
//     keypad's throttle). A connected edge is trusted CodeWait after the reissue without
//     a report (one of protocol 1.0 reports applied versions only when it connects); an
//     edge out of reach is waited for, since it could not honour the code anyway. A
//     reissued code of an order not loaded yet then waits for the loading like the
//     first one. A platform that asks for the reissue of a code it delivers gets it in
//     the response at once.
//
// A sealed code therefore waits at most until the order ends: before loading, the
// delivery window's end plus LoadGrace (then the order lapses) or the hold time once
// partly loaded; after loading, CodeWait while the edge is connected and otherwise as
// long as it is out of reach. Every way an
// order's code dies (picked up, returned, cancelled, lapsed, expired, invalidated by a
// lockout, replaced) erases it. Only a holder of the code key (the cloud's notify key:
// notify_key or DATA/notify.key) can read it; the store alone, a backup of it, the API
// and the logs cannot.
//
// With 8 digits and 50 live codes at a site, a random guess hits some order with
// probability 5·10⁻⁷; with the second factor and the edge's lockout that is out of reach.

// CodeWait is how long a reissued code waits for a connected edge to report that it
// applied the code's delta before the resident is told it anyway (an edge of protocol
// 1.0 reports applied versions only when it connects).
const CodeWait = 5 * time.Minute

// heldAD binds a sealed code to its order and digest: a sealed code copied onto another
// order, or left behind by a later draw, does not open.
func heldAD(o *Order) []byte {
	return []byte("larder/v1/held-code\x00" + o.ID + "\x00" + o.CodeDigest)
}

// holdCode seals code on o (AES-256-GCM under the code key, a random nonce before the
// ciphertext); version is the desired version the edge must apply before the resident is
// told it (0: none, only the loading), and the order is indexed in bCodeWaits while it
// waits for one.
func (s *Service) holdCode(tx Tx, o *Order, code string, version uint64) error {
	nonce := make([]byte, s.seal.NonceSize())
	rand.Read(nonce)
	o.HeldCode = s.seal.Seal(nonce, nonce, []byte(code), heldAD(o))
	o.HeldVersion, o.HeldAt = version, s.now().UTC()
	if version == 0 {
		return tx.Delete(bCodeWaits, o.Site+"/"+o.ID)
	}
	return tx.Put(bCodeWaits, o.Site+"/"+o.ID, []byte{})
}

// openHeld unseals o's held code. It fails when the code key changed since it was
// sealed (or the record was tampered with).
func (s *Service) openHeld(o *Order) (string, error) {
	ns := s.seal.NonceSize()
	if len(o.HeldCode) < ns {
		return "", errors.New("sealed code too short")
	}
	code, err := s.seal.Open(nil, o.HeldCode[:ns], o.HeldCode[ns:], heldAD(o))
	return string(code), err
}

// eraseHeld forgets o's held code, told or dead.
func eraseHeld(tx Tx, o *Order) error {
	if o.HeldCode == nil && o.HeldVersion == 0 {
		return nil
	}
	o.HeldCode, o.HeldVersion, o.HeldAt = nil, 0, time.Time{}
	return tx.Delete(bCodeWaits, o.Site+"/"+o.ID)
}

// tellAppliedCodes tells the held codes of st's orders that waited for a desired
// version the edge has now applied (code_applied in the lifecycle table). The caller
// saves st.
func (s *Service) tellAppliedCodes(tx Tx, st *Site, applied uint64) error {
	ids, err := codeWaits(tx, st.ID+"/")
	if err != nil {
		return err
	}
	for _, id := range ids {
		o, err := loadOrder(tx, id)
		if err != nil {
			return err
		}
		if err := s.apply(tx, st, o, &step{on: onCodeApplied, by: System, applied: applied}); err != nil {
			return err
		}
	}
	return nil
}

// codesApplied is the edge's report (telemetry) that it applied desired version
// applied: the held codes of the site's orders that waited for it are told. A site with
// no code waiting costs one read.
func (s *Service) codesApplied(ctx context.Context, site string, applied uint64) error {
	var waiting bool
	err := s.store.View(ctx, func(tx Tx) error {
		ids, err := codeWaits(tx, site+"/")
		waiting = len(ids) > 0
		return err
	})
	if err != nil || !waiting {
		return internal("codes applied", err)
	}
	return internal("codes applied", s.store.Update(ctx, func(tx Tx) error {
		st, err := loadSite(tx, site)
		if err != nil {
			return err
		}
		if err := s.tellAppliedCodes(tx, st, applied); err != nil {
			return err
		}
		return putSite(tx, st)
	}))
}

// codeWaitsOver tells the held codes that waited CodeWait or longer for an edge that is
// connected (its site online): such an edge has had the delta for that long, and one of
// protocol 1.0 reports applied versions only when it connects. Codes of an edge out of
// reach keep waiting for its birth.
func (s *Service) codeWaitsOver(tx Tx, now time.Time) error {
	ids, err := codeWaits(tx, "")
	if err != nil {
		return err
	}
	for _, id := range ids {
		o, err := loadOrder(tx, id)
		if err != nil {
			return err
		}
		if o.HeldVersion == 0 || now.Sub(o.HeldAt) < CodeWait {
			continue
		}
		st, err := loadSite(tx, o.Site)
		if err != nil {
			return err
		}
		if !st.Online {
			continue
		}
		if err := s.apply(tx, st, o, &step{on: onCodeApplied, at: now, by: System, applied: o.HeldVersion}); err != nil {
			return err
		}
		if err := putSite(tx, st); err != nil {
			return err
		}
	}
	return nil
}

// codeWaits lists the orders under prefix (a site's "site/", or "" for all) whose held
// code waits for the edge.
func codeWaits(tx Tx, prefix string) ([]string, error) {
	var ids []string
	err := tx.Scan(bCodeWaits, prefix, func(k string, _ []byte) bool {
		_, id, _ := strings.Cut(k, "/")
		ids = append(ids, id)
		return true
	})
	return ids, err
}

// newCodeSeal is the AEAD of held codes: AES-256-GCM under key (32 bytes), or under a
// key drawn for this process when key is nil (tests: a held code does not survive a
// restart, and the order then gets a new code, see tellArrivalCode).
func newCodeSeal(key []byte) (cipher.AEAD, error) {
	if key == nil {
		key = make([]byte, 32)
		rand.Read(key)
	}
	if len(key) != 32 {
		return nil, errors.New("cloud: the code key must be 32 bytes")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

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

// dropCode removes o's code from the live codes of its site (if it is still o's); its
// held copy, if any, is the caller's (dropOrderCode erases it).
func dropCode(tx Tx, o *Order) error {
	k := o.Site + "/" + o.CodeDigest
	if string(tx.Get(bCodes, k)) == o.ID {
		return tx.Delete(bCodes, k)
	}
	return nil
}
