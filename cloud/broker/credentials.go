package broker

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
)

// Credentials checks an edge's MQTT password. The cloud's domain implements it over its
// store (cloud/cloudd wires it); [StaticCredentials] is a fixed table for tests and demos.
type Credentials interface {
	// CheckEdge reports whether password is the current MQTT password of site. site has
	// already been checked with protocol.ValidSite. Implementations store only
	// [PasswordDigest] of each password and compare with [PasswordMatches]; an unknown
	// site is (false, nil). An error refuses the connection and is logged.
	CheckEdge(ctx context.Context, site, password string) (bool, error)
}

// PasswordDigest is the digest under which an edge's MQTT password is stored: lower-case
// hex SHA-256. A fast hash is deliberate and sufficient because edge passwords are
// machine-generated random tokens of at least 128 bits (never chosen by people), so
// there is nothing to brute-force; the broker checks a password on every connect,
// including the reconnect storm after a regional outage, where a slow hash would hurt.
func PasswordDigest(password string) string {
	sum := sha256.Sum256([]byte(password))
	return hex.EncodeToString(sum[:])
}

// PasswordMatches reports, in constant time, whether password has the given digest.
func PasswordMatches(digest, password string) bool {
	want := PasswordDigest(password)
	return subtle.ConstantTimeCompare([]byte(digest), []byte(want)) == 1
}

// StaticCredentials maps a site id to the [PasswordDigest] of its password.
type StaticCredentials map[string]string

// CheckEdge implements [Credentials].
func (s StaticCredentials) CheckEdge(_ context.Context, site, password string) (bool, error) {
	d, ok := s[site]
	if !ok {
		// Compare anyway so an unknown site costs what a known one does.
		PasswordMatches(PasswordDigest(""), password)
		return false, nil
	}
	return PasswordMatches(d, password), nil
}
