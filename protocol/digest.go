package protocol

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// Keyed digests of the secrets people type at a locker. The key is the site key, a random
// secret known to the cloud and provisioned to the edge at installation. It is provisioned
// as 64 lower-case hex characters (the cloud draws 32 random bytes) and used as the 32
// bytes they decode to, never as the characters: every function here takes the decoded
// bytes (the edge accepts a key of at least 32 bytes). A digest is lower-case hex of
// HMAC-SHA256 over a domain-separated message, so a digest of one kind can never be
// replayed as another. The cloud computes them when it issues a secret; the edge computes
// them over what a person types and compares with [DigestEqual]. Known answers with a key
// in the provisioned format are in testdata/digests/known-answers.json.

// The shape of the secrets a resident types: a pickup code of CodeDigits decimal digits
// and a second factor of FactorDigits (the last digits of the recipient's phone number).
// The cloud draws codes of exactly this length and the edge answers anything else as a
// bad request, never as a guess.
const (
	CodeDigits   = 8
	FactorDigits = 4
)

// CodeDigest is the digest of a pickup code. Codes are unique among the live codes of a
// site, so the digest is also the edge's lookup key.
func CodeDigest(siteKey []byte, code string) string {
	return digest(siteKey, "larder/v1/code", code)
}

// SecondFactorDigest is the digest of an order's second factor (the last 4 digits of the
// recipient's phone number), bound to the order so equal factors differ across orders.
func SecondFactorDigest(siteKey []byte, order, factor string) string {
	return digest(siteKey, "larder/v1/second-factor", order+"\x00"+factor)
}

// CredentialDigest is the digest of a driver's loading credential.
func CredentialDigest(siteKey []byte, credential string) string {
	return digest(siteKey, "larder/v1/credential", credential)
}

// QRTag is the tag of a device-bound QR payload, larder:v1:{site}:{code}:{expires}:{tag}:
// the QR code the resident page shows to whoever holds the order link. expires is in Unix
// seconds, and the tag is the first QRTagBytes bytes of the HMAC (2·QRTagBytes lower-case
// hex characters) over site, code and expires, under its own domain. The cloud makes it;
// the edge recomputes it offline and compares with [DigestEqual], and a payload whose tag
// matches opens the order without its second factor: only the site key makes a tag, and
// 80 bits cannot be guessed at a kiosk.
func QRTag(siteKey []byte, site, code string, expires time.Time) string {
	d := digest(siteKey, "larder/v1/qr-tag", site+"\x00"+code+"\x00"+strconv.FormatInt(expires.Unix(), 10))
	return d[:2*QRTagBytes]
}

// QRTagBytes is the length of a QR tag in bytes; QRTagLifetime is how long the cloud
// makes a tag valid. The edge refuses a tag that expires more than twice that far ahead
// (a clock that is far off, or a tag not made by the cloud's rule).
const (
	QRTagBytes    = 10
	QRTagLifetime = 30 * time.Minute
)

// DigestEqual compares two digests in constant time.
func DigestEqual(a, b string) bool { return hmac.Equal([]byte(a), []byte(b)) }

func digest(key []byte, domain, msg string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(domain))
	m.Write([]byte{0})
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

// NewID returns a fresh random message or command id: 16 random bytes in hex.
func NewID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand documents it)
	return hex.EncodeToString(b[:])
}

func validDigest(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}
