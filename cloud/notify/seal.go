package notify

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// sealer seals queue records with AES-256-GCM (a random nonce before the ciphertext),
// binding each to what it belongs to (the associated data, e.g. its id) so that a
// sealed value cannot be moved to another record. The zero sealer (no key) leaves
// values in clear.
type sealer struct {
	aead cipher.AEAD // nil: clear
}

// newSealer returns the sealer of key: nil, or 32 bytes.
func newSealer(key []byte) (sealer, error) {
	if key == nil {
		return sealer{}, nil
	}
	if len(key) != 32 {
		return sealer{}, errors.New("notify: queue key must be 32 bytes")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return sealer{}, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return sealer{}, err
	}
	return sealer{aead: aead}, nil
}

func (s sealer) seal(v []byte, ad string) []byte {
	if s.aead == nil {
		return v
	}
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, v, []byte(ad))
}

func (s sealer) open(v []byte, ad string) ([]byte, error) {
	if s.aead == nil {
		return v, nil
	}
	ns := s.aead.NonceSize()
	if len(v) < ns {
		return nil, errors.New("sealed record too short")
	}
	out, err := s.aead.Open(nil, v[:ns], v[ns:], []byte(ad))
	if err != nil {
		return nil, fmt.Errorf("unseal: %w", err)
	}
	return out, nil
}
