package models

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Cipher seals secrets (custom header values, service URIs, ingest tokens)
// before they reach the database, with AES-256-GCM. Sealed values carry the
// prefix "v1:" so plaintext rows written before sealing are still readable.
type Cipher struct {
	aead cipher.AEAD
}

// sealedPrefix marks a sealed value.
const sealedPrefix = "v1:"

// NewCipher builds a Cipher from a 32-byte key.
func NewCipher(key []byte) (*Cipher, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("secret: key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	return &Cipher{aead: aead}, nil
}

// Seal encrypts s. The empty string stays empty.
func (c *Cipher) Seal(s string) string {
	if s == "" || c == nil {
		return s
	}
	nonce := make([]byte, c.aead.NonceSize())
	_, _ = rand.Read(nonce)
	out := c.aead.Seal(nonce, nonce, []byte(s), nil)
	return sealedPrefix + base64.RawStdEncoding.EncodeToString(out)
}

// ErrSealed is returned when a sealed value cannot be opened (wrong key or
// damaged data).
var ErrSealed = errors.New("secret: cannot decrypt value (wrong key?)")

// Open decrypts a value made by Seal; a value without the "v1:" prefix is
// returned as it is.
func (c *Cipher) Open(s string) (string, error) {
	if !strings.HasPrefix(s, sealedPrefix) || c == nil {
		return s, nil
	}
	raw, err := base64.RawStdEncoding.DecodeString(s[len(sealedPrefix):])
	ns := c.aead.NonceSize()
	if err != nil || len(raw) < ns {
		return "", ErrSealed
	}
	pt, err := c.aead.Open(nil, raw[:ns], raw[ns:], nil)
	if err != nil {
		return "", ErrSealed
	}
	return string(pt), nil
}

// Mask is what a secret value looks like where it must not be shown.
const Mask = "******"

// MaskURI keeps the scheme and host of a service URI and hides the rest,
// where tokens often hide (paths, query strings, user info): pages, logs
// and recorded attempts show this; only the callback configuration shows
// the URI itself.
func MaskURI(s string) string {
	i := strings.Index(s, "://")
	if i < 0 {
		return Mask
	}
	rest := s[i+3:]
	host := rest
	if j := strings.IndexAny(rest, "/?#"); j >= 0 {
		host = rest[:j]
	}
	if at := strings.LastIndex(host, "@"); at >= 0 {
		host = host[at+1:]
	}
	if len(rest) > len(host) {
		return s[:i+3] + host + "/" + Mask
	}
	return s[:i+3] + host
}
