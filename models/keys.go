package models

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/scrypt"
)

// The key that seals secrets at rest is checked against the database before
// the server uses it: a missing or different key must not quietly seal new
// secrets with a fresh key while the old ones become unreadable.

// Sentinels of UnlockSecrets. Both come wrapped in a *KeyError that names
// where the key came from.
var (
	// ErrWrongKey: the database holds sealed secrets this key cannot open.
	ErrWrongKey = errors.New("the key cannot open the secrets sealed in this database")
	// ErrKeyMissing: the key file does not exist, yet the database holds
	// sealed secrets, so a new key would be the wrong one.
	ErrKeyMissing = errors.New("the key file does not exist, but the database holds secrets sealed with a key")
)

// KeyError says which key source failed and why (ErrWrongKey,
// ErrKeyMissing, or an I/O or format error).
type KeyError struct {
	Source string // "key file /path/to/registryhooks.db.key" or "REGISTRYHOOKS_SECRET_KEY"
	Err    error
}

func (e *KeyError) Error() string {
	hint := ""
	switch {
	case errors.Is(e.Err, ErrKeyMissing), errors.Is(e.Err, ErrWrongKey):
		hint = "; start with the key these secrets were sealed with (restore the key file, or set REGISTRYHOOKS_SECRET_KEY / --key-file)"
	}
	return fmt.Sprintf("secret: %s: %v%s", e.Source, e.Err, hint)
}

func (e *KeyError) Unwrap() error { return e.Err }

// KeySource says where the key that seals secrets comes from.
type KeySource struct {
	// Setting is REGISTRYHOOKS_SECRET_KEY: 64 hex characters are the key
	// itself; anything else is a passphrase, stretched into the key with
	// scrypt (N=2^15, r=8, p=1) and a random salt kept in the database.
	// Empty: File is used.
	Setting string
	// File holds the key as 64 hex characters. It is created (mode 0600)
	// only while the database holds no sealed secret.
	File string
}

func (k KeySource) String() string {
	if k.Setting != "" {
		return "REGISTRYHOOKS_SECRET_KEY"
	}
	return "key file " + k.File
}

// UnlockReport says what UnlockSecrets found.
type UnlockReport struct {
	// Sealed counts the sealed values in the database.
	Sealed int
	// Resealed counts values sealed with the pre-scrypt derivation of the
	// passphrase (one SHA-256) that were sealed again with the new key.
	Resealed int
	// Unreadable names the values that opened with neither key (damaged
	// rows, or rows copied from another database): "webhook team/hook
	// service URI". Their webhooks fail alone, with the reason recorded.
	Unreadable []string
	// CreatedKeyFile is set when a new key file was written.
	CreatedKeyFile bool
}

const (
	settingKDFSalt  = "secret_kdf_salt"
	settingKeyCheck = "secret_key_check"
	keyCheckText    = "registryhooks key check"
)

// sealedValue is one sealed column value of one row.
type sealedValue struct {
	table, column, what string
	id                  uint
	value               string
}

// UnlockSecrets resolves the key from src, checks it against the database
// and makes the store seal and open with it. It refuses (a *KeyError) when
// the key file is missing while sealed secrets exist, and when the key
// opens none of them (a key check value sealed on first use makes this one
// decryption). Values sealed with the earlier passphrase derivation (one
// SHA-256) are sealed again with the scrypt key, in one transaction.
// Values that open with no key are reported, not fatal.
//
// It must run before the store is used concurrently (it sets the cipher).
func (s *Store) UnlockSecrets(ctx context.Context, src KeySource) (UnlockReport, error) {
	var rep UnlockReport
	fail := func(err error) (UnlockReport, error) { return rep, &KeyError{Source: src.String(), Err: err} }
	values, err := s.sealedValues(ctx)
	if err != nil {
		return rep, err
	}
	rep.Sealed = len(values)
	check, err := s.setting(ctx, settingKeyCheck)
	if err != nil {
		return rep, err
	}
	var key, legacy []byte
	var salt string
	switch {
	case src.Setting != "":
		if b, err := hex.DecodeString(src.Setting); err == nil && len(b) == 32 {
			key = b
			break
		}
		if salt, err = s.setting(ctx, settingKDFSalt); err != nil {
			return rep, err
		}
		if salt == "" {
			b := make([]byte, 16)
			if _, err := rand.Read(b); err != nil {
				return rep, fmt.Errorf("secret: %w", err)
			}
			salt = base64.StdEncoding.EncodeToString(b)
		}
		if key, err = DeriveKey(src.Setting, salt); err != nil {
			return fail(err)
		}
		sum := sha256.Sum256([]byte(src.Setting))
		legacy = sum[:]
	default:
		key, err = readKeyFile(src.File)
		if errors.Is(err, os.ErrNotExist) {
			if len(values) > 0 || check != "" {
				return fail(ErrKeyMissing)
			}
			if key, err = createKeyFile(src.File); err != nil {
				return fail(err)
			}
			rep.CreatedKeyFile = true
		} else if err != nil {
			return fail(err)
		}
	}
	c, err := NewCipher(key)
	if err != nil {
		return fail(err)
	}
	if check != "" {
		if pt, err := c.Open(check); err != nil || pt != keyCheckText {
			return fail(ErrWrongKey)
		}
	}
	var old *Cipher
	if legacy != nil {
		old, _ = NewCipher(legacy)
	}
	opened := 0
	var reseal []sealedValue
	for _, v := range values {
		if _, err := c.Open(v.value); err == nil {
			opened++
			continue
		}
		if old != nil {
			if pt, err := old.Open(v.value); err == nil {
				v.value = c.Seal(pt)
				reseal = append(reseal, v)
				continue
			}
		}
		rep.Unreadable = append(rep.Unreadable, v.what)
	}
	if check == "" && len(values) > 0 && opened == 0 && len(reseal) == 0 {
		return fail(ErrWrongKey)
	}
	if err := s.writeUnlock(ctx, reseal, check == "", c, salt); err != nil {
		return rep, err
	}
	rep.Resealed = len(reseal)
	if len(reseal) > 0 {
		s.hookGen.Add(1)
		s.forgetRegistries()
	}
	s.cipher = c
	return rep, nil
}

// DeriveKey stretches a passphrase into a 32-byte key with scrypt (N=2^15,
// r=8, p=1, about 32 MiB and tens of milliseconds) and the base64 salt.
func DeriveKey(passphrase, salt string) ([]byte, error) {
	sb, err := base64.StdEncoding.DecodeString(salt)
	if err != nil || len(sb) < 8 {
		return nil, errors.New("the stored key derivation salt is damaged")
	}
	k, err := scrypt.Key([]byte(passphrase), sb, 1<<15, 8, 1, 32)
	if err != nil {
		return nil, fmt.Errorf("derive key: %w", err)
	}
	return k, nil
}

func readKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(k) != 32 {
		return nil, errors.New("the key file does not hold 64 hex characters")
	}
	return k, nil
}

func createKeyFile(path string) ([]byte, error) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	if dir := filepath.Dir(path); dir != "" {
		_ = os.MkdirAll(dir, 0o700)
	}
	// O_EXCL: never overwrite a key file that appeared meanwhile.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create key file: %w", err)
	}
	if _, err := f.WriteString(hex.EncodeToString(k) + "\n"); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("write key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("write key file: %w", err)
	}
	return k, f.Close()
}

// setting returns a setting's value, "" when unset.
func (s *Store) setting(ctx context.Context, name string) (string, error) {
	var v string
	err := s.wsql.QueryRowContext(ctx, s.rebind(`SELECT value FROM settings WHERE name = ?`), name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("store: read setting %s: %w", name, err)
	}
	return v, nil
}

// sealedValues reads every sealed column value.
func (s *Store) sealedValues(ctx context.Context) ([]sealedValue, error) {
	var out []sealedValue
	rows, err := s.wsql.QueryContext(ctx, `SELECT w.id, r.name || '/' || w.name, w.service_uri, w.custom_headers,
		w.signing_secret, w.previous_signing_secret FROM webhooks w JOIN registries r ON r.id = w.registry_id`)
	if err != nil {
		return nil, fmt.Errorf("store: read sealed secrets: %w", err)
	}
	for rows.Next() {
		var id uint
		var name, uri, hdr, sig, prev string
		if err := rows.Scan(&id, &name, &uri, &hdr, &sig, &prev); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: read sealed secrets: %w", err)
		}
		if isSealed(uri) {
			out = append(out, sealedValue{"webhooks", "service_uri", "webhook " + name + " service URI", id, uri})
		}
		if isSealed(hdr) {
			out = append(out, sealedValue{"webhooks", "custom_headers", "webhook " + name + " custom headers", id, hdr})
		}
		if isSealed(sig) {
			out = append(out, sealedValue{"webhooks", "signing_secret", "webhook " + name + " signing secret", id, sig})
		}
		if isSealed(prev) {
			out = append(out, sealedValue{"webhooks", "previous_signing_secret", "webhook " + name + " previous signing secret", id, prev})
		}
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("store: read sealed secrets: %w", err)
	}
	rows, err = s.wsql.QueryContext(ctx, `SELECT id, name, ingest_token FROM registries`)
	if err != nil {
		return nil, fmt.Errorf("store: read sealed secrets: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id uint
		var name, tok string
		if err := rows.Scan(&id, &name, &tok); err != nil {
			return nil, fmt.Errorf("store: read sealed secrets: %w", err)
		}
		if isSealed(tok) {
			out = append(out, sealedValue{"registries", "ingest_token", "registry " + name + " ingest token", id, tok})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: read sealed secrets: %w", err)
	}
	return out, nil
}

func isSealed(s string) bool { return strings.HasPrefix(s, sealedPrefix) }

// writeUnlock stores the resealed values, and on first use the key check
// value and the passphrase's salt, in one transaction.
func (s *Store) writeUnlock(ctx context.Context, reseal []sealedValue, newCheck bool, c *Cipher, salt string) error {
	if len(reseal) == 0 && !newCheck {
		return nil
	}
	tx, err := s.wsql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: reseal secrets: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, v := range reseal {
		// Table and column names come from sealedValues, never from input.
		if _, err := tx.ExecContext(ctx, s.rebind("UPDATE "+v.table+" SET "+v.column+" = ? WHERE id = ?"), v.value, int64(v.id)); err != nil {
			return fmt.Errorf("store: reseal %s: %w", v.what, err)
		}
	}
	if newCheck {
		if _, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO settings (name, value) VALUES (?, ?)`), settingKeyCheck, c.Seal(keyCheckText)); err != nil {
			return fmt.Errorf("store: write key check: %w", err)
		}
	}
	if salt != "" {
		if _, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`), settingKDFSalt, salt); err != nil {
			return fmt.Errorf("store: write key salt: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: reseal secrets: commit: %w", err)
	}
	return nil
}
