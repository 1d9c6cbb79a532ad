package protocol_test

import (
	"encoding/hex"
	"regexp"
	"testing"

	"github.com/larder-lockers/larder/protocol"
)

// TestDigestKnownAnswers pins the digests of the example secrets: they are published in
// asyncapi.yaml for implementers to check their HMAC construction against, and any change
// would invalidate every code a cloud has issued. (Computed independently as
// HMAC-SHA256(key, domain || 0x00 || message).) The vectors' key is in the provisioned
// format and is used hex-decoded; the golden examples' key is 40 raw ASCII bytes.
func TestDigestKnownAnswers(t *testing.T) {
	vkey, err := hex.DecodeString(vectorSiteKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, got, want string }{
		{"vector code", protocol.CodeDigest(vkey, vectorCode),
			"39ec1b24bd6fad1b3a216189a69846702ea3126038da13248a386ecda1effe8d"},
		{"vector second factor", protocol.SecondFactorDigest(vkey, vectorOrder, vectorFactor),
			"aa2c9d979d07cc14ae21a6238093c1def8c0482b302337b55cda6178bfa91d6c"},
		{"vector credential", protocol.CredentialDigest(vkey, vectorCredential),
			"10d8a2010bc8061441bb0ff85c1bd1b487e16151d8ddcf4804285132a8797f3e"},
		{"vector code keyed with the hex text (the mistake)", protocol.CodeDigest([]byte(vectorSiteKey), vectorCode),
			"8e154d7d910e16ac5a86b70cf782893f83b162e19bc43f347431bbe622ab938c"},
		{"code", protocol.CodeDigest(exampleSiteKey, exampleCode),
			"ed4aff8682e9ed16e10e6b0cdc3da5c29b411f3c97676bfa8d2490723cead5af"},
		{"second factor", protocol.SecondFactorDigest(exampleSiteKey, exampleOrder, exampleSecondFactor),
			"1aa72efbc24b5b9cde6398fc16189948fddf5eefa900970c7f7c23b047bd7741"},
		{"credential", protocol.CredentialDigest(exampleSiteKey, exampleCredential),
			"57b75f98a1831c330eceea136d57df2084419a965b9868978af5150aede276e9"},
		{"credential of the code", protocol.CredentialDigest(exampleSiteKey, exampleCode),
			"d9e8a4d1b91061467b9bc5cf860b2bace37179b909b741b20fca85e0349dd34e"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s digest = %s, want %s", tc.name, tc.got, tc.want)
		}
	}
}

func TestDigestDomainSeparation(t *testing.T) {
	key := []byte("another-site-key-of-at-least-32-bytes!!")
	secret := "123456"
	code := protocol.CodeDigest(key, secret)
	cred := protocol.CredentialDigest(key, secret)
	if code == cred {
		t.Errorf("code and credential digests of %q are equal", secret)
	}
	// The second factor is bound to its order, and order and factor cannot be shifted
	// into each other.
	if protocol.SecondFactorDigest(key, "ord-1", "4711") == protocol.SecondFactorDigest(key, "ord-2", "4711") {
		t.Error("equal second factors of two orders have equal digests")
	}
	if protocol.SecondFactorDigest(key, "ord-1", "4711") == protocol.SecondFactorDigest(key, "ord-14", "711") {
		t.Error("order/factor boundary is ambiguous")
	}
	if protocol.SecondFactorDigest(key, "", secret) == code {
		t.Error("second factor digest equals a code digest")
	}
	// The key matters.
	if protocol.CodeDigest([]byte("yet-another-key-of-at-least-32-bytes!!!"), secret) == code {
		t.Error("code digests under two keys are equal")
	}
	hex64 := regexp.MustCompile(`^[0-9a-f]{64}$`)
	for _, d := range []string{code, cred, protocol.SecondFactorDigest(key, "o", "1")} {
		if !hex64.MatchString(d) {
			t.Errorf("digest %q is not 64 lower-case hex characters", d)
		}
	}
}

func TestDigestEqual(t *testing.T) {
	d := protocol.CodeDigest(exampleSiteKey, exampleCode)
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{d, d, true},
		{d, protocol.CodeDigest(exampleSiteKey, exampleCode), true},
		{d, protocol.CodeDigest(exampleSiteKey, "482916"), false},
		{d, d[:63], false},
		{d, "", false},
		{"", "", true},
	} {
		if got := protocol.DigestEqual(tc.a, tc.b); got != tc.want {
			t.Errorf("DigestEqual(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestNewID(t *testing.T) {
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
	seen := map[string]bool{}
	for range 100 {
		id := protocol.NewID()
		if !hex32.MatchString(id) {
			t.Fatalf("NewID() = %q, want 32 hex characters", id)
		}
		if seen[id] {
			t.Fatalf("NewID() repeated %q", id)
		}
		seen[id] = true
	}
}
