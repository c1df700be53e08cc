package models

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Throttle bucket kinds of the sign-in throttle (table sign_in_throttle).
const (
	ThrottlePair    = "pair"    // a user name from one client address
	ThrottleAddress = "address" // one client address, whatever the name
	ThrottleName    = "name"    // one user name, whatever the address
)

// ThrottleKey names one token bucket of the sign-in throttle. Name is ""
// for ThrottleAddress buckets, Address "" for ThrottleName buckets.
//
// A name or address longer than 200 bytes, or not valid UTF-8, or holding
// NUL (none of which a real user name or client address is; PostgreSQL
// would refuse the last two and cannot index very long keys) is kept as
// "sha256:" and its hash, so it still has a bucket of its own.
type ThrottleKey struct {
	Kind, Name, Address string
}

// ThrottleTake takes one token from a bucket of Burst tokens refilled one
// per Every (burst and interval are the caller's rules, not the table's).
type ThrottleTake struct {
	Key   ThrottleKey
	Every time.Duration
	Burst int
}

// throttleText makes a key part storable on both engines (see ThrottleKey).
func throttleText(s string) string {
	if len(s) <= 200 && utf8.ValidString(s) && !strings.ContainsRune(s, 0) {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

func (k ThrottleKey) stored() ThrottleKey {
	return ThrottleKey{Kind: k.Kind, Name: throttleText(k.Name), Address: throttleText(k.Address)}
}

// ThrottleFullAt returns, for each key, when its bucket will be full again
// (every failure forgotten); the zero time for a bucket without a row,
// which is full. Tokens taken at now are (fullAt - now) / every. One query.
func (s *Store) ThrottleFullAt(ctx context.Context, keys ...ThrottleKey) ([]time.Time, error) {
	out := make([]time.Time, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	var where []string
	var args []any
	idx := map[ThrottleKey][]int{}
	for i, k := range keys {
		k = k.stored()
		idx[k] = append(idx[k], i)
		where = append(where, "(kind = ? AND name = ? AND address = ?)")
		args = append(args, k.Kind, k.Name, k.Address)
	}
	var rows []struct {
		Kind, Name, Address string
		FullAt              int64
	}
	err := s.rdb.WithContext(ctx).
		Raw("SELECT kind, name, address, full_at FROM sign_in_throttle WHERE "+strings.Join(where, " OR "), args...).
		Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("store: read sign-in throttle: %w", err)
	}
	for _, r := range rows {
		for _, i := range idx[ThrottleKey{Kind: r.Kind, Name: r.Name, Address: r.Address}] {
			out[i] = time.Unix(0, r.FullAt)
		}
	}
	return out, nil
}

// ThrottleTakeTokens takes one token at now from each bucket, in one
// transaction, each with one atomic upsert, so instances failing at the
// same moment on one database never lose a failure: a missing bucket is
// created full with one token taken (full_at = now + every); an existing one
// gives a token only if it has one (full_at - now <= (burst-1) * every),
// moving full_at to max(full_at, now) + every; an empty one is left as it is
// (a failure while locked does not lengthen the lockout).
func (s *Store) ThrottleTakeTokens(ctx context.Context, now time.Time, takes ...ThrottleTake) error {
	const q = `INSERT INTO sign_in_throttle (kind, name, address, full_at) VALUES (?, ?, ?, ?)
ON CONFLICT (kind, name, address) DO UPDATE
SET full_at = (CASE WHEN sign_in_throttle.full_at < ? THEN ? ELSE sign_in_throttle.full_at END) + ?
WHERE sign_in_throttle.full_at <= ?`
	n := now.UnixNano()
	tx := s.db.WithContext(ctx).Begin()
	if tx.Error != nil {
		return fmt.Errorf("store: record sign-in failure: %w", tx.Error)
	}
	defer tx.Rollback()
	for _, t := range takes {
		if t.Every <= 0 || t.Burst < 1 {
			return fmt.Errorf("store: record sign-in failure: bucket %s needs a positive interval and burst", t.Key.Kind)
		}
		k := t.Key.stored()
		every := int64(t.Every)
		if err := tx.Exec(q, k.Kind, k.Name, k.Address, n+every, n, n, every, n+int64(t.Burst-1)*every).Error; err != nil {
			return fmt.Errorf("store: record sign-in failure (%s): %w", k.Kind, err)
		}
	}
	if err := tx.Commit().Error; err != nil {
		return fmt.Errorf("store: record sign-in failure: %w", err)
	}
	return nil
}

// ThrottleForget empties the buckets named: their failures are forgotten.
func (s *Store) ThrottleForget(ctx context.Context, keys ...ThrottleKey) error {
	for _, k := range keys {
		k = k.stored()
		err := s.db.WithContext(ctx).
			Exec("DELETE FROM sign_in_throttle WHERE kind = ? AND name = ? AND address = ?", k.Kind, k.Name, k.Address).Error
		if err != nil {
			return fmt.Errorf("store: forget sign-in failures: %w", err)
		}
	}
	return nil
}

// PruneThrottle deletes the buckets that are full again at now (a full
// bucket and no row mean the same), so the table holds only the failures
// that still count. It returns how many rows went.
func (s *Store) PruneThrottle(ctx context.Context, now time.Time) (int64, error) {
	res := s.db.WithContext(ctx).Exec("DELETE FROM sign_in_throttle WHERE full_at <= ?", now.UnixNano())
	if res.Error != nil {
		return 0, fmt.Errorf("store: prune sign-in throttle: %w", res.Error)
	}
	return res.RowsAffected, nil
}
