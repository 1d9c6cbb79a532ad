package cloud

import (
	"context"
	"encoding/json"
	"strings"
)

// API keys.
//
// A key is "lk_" + 32 random bytes in hex, shown once when created; the store keeps its
// SHA-256 (a key has 256 bits of entropy, so an unkeyed hash cannot be reversed) indexed
// by digest, so authentication is one lookup.

// KeyPrefix starts every API key, so that leaked keys are easy to find by scanners.
const KeyPrefix = "lk_"

// Authenticate returns the principal of an API key, or EUnauthorized.
func (s *Service) Authenticate(ctx context.Context, key string) (Principal, error) {
	if !strings.HasPrefix(key, KeyPrefix) || len(key) > 200 {
		return Principal{}, Errorf(EUnauthorized, "unknown API key")
	}
	var k APIKey
	var ok bool
	err := s.store.View(ctx, func(tx Tx) error {
		var err error
		ok, err = getJSON(tx, bKeys, sha256Hex(key), &k)
		return err
	})
	if err != nil {
		return Principal{}, internal("authenticate", err)
	}
	if !ok {
		return Principal{}, Errorf(EUnauthorized, "unknown API key")
	}
	return Principal{KeyID: k.ID, Role: k.Role, Subject: k.Subject}, nil
}

// KeyInput describes a new API key.
type KeyInput struct {
	Role    Role   `json:"role"`
	Subject string `json:"subject"`
}

// CreateKey creates an API key (admin) and returns it with the plain key, shown once.
func (s *Service) CreateKey(ctx context.Context, p Principal, in KeyInput) (APIKey, string, error) {
	if err := require(p, RoleAdmin); err != nil {
		return APIKey{}, "", err
	}
	if !in.Role.Valid() {
		return APIKey{}, "", Invalid("role", "want platform, driver, ops or admin")
	}
	if in.Subject == "" || len(in.Subject) > 64 || !validSubject(in.Subject) {
		return APIKey{}, "", Invalid("subject", "want 1 to 64 letters, digits, '-', '_' or '.'")
	}
	plain := KeyPrefix + randomToken(32)
	k := APIKey{ID: newID("key_"), Digest: sha256Hex(plain), Role: in.Role, Subject: in.Subject, Created: s.now().UTC()}
	err := s.store.Update(ctx, func(tx Tx) error { return s.putKey(tx, p, k) })
	if err != nil {
		return APIKey{}, "", internal("create key", err)
	}
	return k, plain, nil
}

func (s *Service) putKey(tx Tx, p Principal, k APIKey) error {
	if err := putJSON(tx, bKeys, k.Digest, k); err != nil {
		return err
	}
	audit(tx, s.now(), AuditEntry{Actor: p.Subject, Role: p.Role, Action: "key_created:" + string(k.Role) + ":" + k.Subject})
	return tx.Put(bKeyIDs, k.ID, []byte(k.Digest))
}

// EnsureKey installs a key given in clear (a bootstrap admin key from the configuration)
// if it is not there yet. It is idempotent.
func (s *Service) EnsureKey(ctx context.Context, plain string, role Role, subject string) error {
	if !strings.HasPrefix(plain, KeyPrefix) || len(plain) < len(KeyPrefix)+32 {
		return Invalid("key", "a key starts with %q and has at least 32 more characters", KeyPrefix)
	}
	k := APIKey{ID: "key_bootstrap_" + string(role), Digest: sha256Hex(plain), Role: role, Subject: subject, Created: s.now().UTC()}
	return internal("ensure key", s.store.Update(ctx, func(tx Tx) error {
		if tx.Get(bKeys, k.Digest) != nil {
			return nil
		}
		return s.putKey(tx, System, k)
	}))
}

// HasKeys reports whether any API key exists (a fresh store needs a bootstrap key).
func (s *Service) HasKeys(ctx context.Context) (bool, error) {
	has := false
	err := s.store.View(ctx, func(tx Tx) error {
		return tx.Scan(bKeyIDs, "", func(string, []byte) bool { has = true; return false })
	})
	return has, err
}

// ListKeys lists API keys without their digests (admin).
func (s *Service) ListKeys(ctx context.Context, p Principal) ([]APIKey, error) {
	if err := require(p, RoleAdmin); err != nil {
		return nil, err
	}
	out := []APIKey{}
	err := s.store.View(ctx, func(tx Tx) error {
		var derr error
		tx.Scan(bKeys, "", func(_ string, v []byte) bool {
			var k APIKey
			if derr = json.Unmarshal(v, &k); derr != nil {
				return false
			}
			k.Digest = ""
			out = append(out, k)
			return true
		})
		return derr
	})
	return out, internal("list keys", err)
}

// RevokeKey deletes an API key (admin).
func (s *Service) RevokeKey(ctx context.Context, p Principal, id string) error {
	if err := require(p, RoleAdmin); err != nil {
		return err
	}
	return internal("revoke key", s.store.Update(ctx, func(tx Tx) error {
		d := tx.Get(bKeyIDs, id)
		if d == nil {
			return &Error{Code: ENotFound, Message: "no such key: " + id}
		}
		if err := tx.Delete(bKeys, string(d)); err != nil {
			return err
		}
		audit(tx, s.now(), AuditEntry{Actor: p.Subject, Role: p.Role, Action: "key_revoked:" + id})
		return tx.Delete(bKeyIDs, id)
	}))
}

func validSubject(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// require checks that p has one of roles.
func require(p Principal, roles ...Role) error {
	for _, r := range roles {
		if p.Role == r {
			return nil
		}
	}
	return Errorf(EForbidden, "the %s role may not do this", p.Role)
}
