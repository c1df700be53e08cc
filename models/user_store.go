package models

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// AdminUsername is the name of the first account (interfaces.md).
const AdminUsername = "admin"

// ErrBadCredentials is returned for an unknown user or a wrong password; the
// two are not told apart.
var ErrBadCredentials = errors.New("invalid username or password")

// MinPasswordLen is the shortest password accepted for a new account.
const MinPasswordLen = 8

// HashToken returns the hex SHA-256 of a bearer or session token, the only
// form in which tokens are stored.
func HashToken(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// RandomToken returns n random bytes, URL-safe base64 encoded.
func RandomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// EnsureAdmin creates the admin account when no user exists. With an empty
// password it generates one; the generated password is returned (once) so
// the caller can print it. It returns "" when a user existed already.
func (s *Store) EnsureAdmin(ctx context.Context, password string) (generated string, err error) {
	var n int64
	if err := s.db.WithContext(ctx).Model(&User{}).Count(&n).Error; err != nil {
		return "", fmt.Errorf("store: count users: %w", err)
	}
	if n > 0 {
		return "", nil
	}
	if password == "" {
		password = RandomToken(12)
		generated = password
	}
	if _, err := s.CreateUser(ctx, AdminUsername, password, RoleAdmin); err != nil {
		if errors.Is(err, ErrAlreadyExists) {
			return "", nil // another instance starting at the same time made it
		}
		return "", err
	}
	return generated, nil
}

// ValidateUsername checks a new account name: 3-64 letters, digits, . _ -.
func ValidateUsername(name string) error {
	if len(name) < 3 || len(name) > 64 {
		return fmt.Errorf("username must be 3-64 characters")
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-", r)) {
			return fmt.Errorf("username may contain only letters, digits, '.', '_' and '-'")
		}
	}
	return nil
}

// CreateUser stores an account with a bcrypt hash of password.
func (s *Store) CreateUser(ctx context.Context, username, password, role string) (*User, error) {
	if err := ValidateUsername(username); err != nil {
		return nil, fmt.Errorf("store: create user: %w", err)
	}
	if len(password) < MinPasswordLen {
		return nil, fmt.Errorf("store: create user: password must be at least %d characters", MinPasswordLen)
	}
	if RoleRank(role) == 0 {
		return nil, fmt.Errorf("store: create user: role must be Reader, Contributor or Admin")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return nil, fmt.Errorf("store: create user: %w", err)
	}
	u := &User{Username: username, PasswordHash: string(hash), Role: role}
	if err := s.db.WithContext(ctx).Create(u).Error; err != nil {
		if isUnique(err) {
			return nil, fmt.Errorf("store: create user %q: %w", username, ErrAlreadyExists)
		}
		return nil, fmt.Errorf("store: create user %q: %w", username, err)
	}
	return u, nil
}

// Authenticate checks a username and password. A comparison runs even for
// an unknown user so the timing does not reveal which names exist.
func (s *Store) Authenticate(ctx context.Context, username, password string) (*User, error) {
	var u User
	err := s.db.WithContext(ctx).Where("username = ? COLLATE NOCASE", username).Take(&u).Error
	if err != nil {
		_ = bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
		return nil, ErrBadCredentials
	}
	if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(password)) != nil {
		return nil, ErrBadCredentials
	}
	return &u, nil
}

var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("registryhooks-dummy"), bcrypt.DefaultCost)

// ListUsers returns all accounts sorted by name.
func (s *Store) ListUsers(ctx context.Context) ([]User, error) {
	var out []User
	if err := s.db.WithContext(ctx).Order("username COLLATE NOCASE").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("store: list users: %w", err)
	}
	return out, nil
}

// GetUser finds an account by id.
func (s *Store) GetUser(ctx context.Context, id uint) (*User, error) {
	var u User
	if err := s.db.WithContext(ctx).Take(&u, id).Error; err != nil {
		return nil, notFound(err, fmt.Sprintf("get user %d", id))
	}
	return &u, nil
}

// SetUserRole changes an account's role. The last Admin cannot be demoted.
func (s *Store) SetUserRole(ctx context.Context, id uint, role string) error {
	if RoleRank(role) == 0 {
		return fmt.Errorf("store: set role: role must be Reader, Contributor or Admin")
	}
	u, err := s.GetUser(ctx, id)
	if err != nil {
		return err
	}
	if u.Role == RoleAdmin && role != RoleAdmin {
		if err := s.ensureAnotherAdmin(ctx, id); err != nil {
			return err
		}
	}
	if err := s.db.WithContext(ctx).Model(&User{}).Where("id = ?", id).Update("role", role).Error; err != nil {
		return fmt.Errorf("store: set role of %q: %w", u.Username, err)
	}
	return nil
}

// ErrLastAdmin is returned when a change would leave no Admin.
var ErrLastAdmin = errors.New("the last Admin cannot be removed or demoted")

func (s *Store) ensureAnotherAdmin(ctx context.Context, id uint) error {
	var n int64
	if err := s.db.WithContext(ctx).Model(&User{}).Where("role = ? AND id <> ?", RoleAdmin, id).Count(&n).Error; err != nil {
		return fmt.Errorf("store: count admins: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("store: %w", ErrLastAdmin)
	}
	return nil
}

// DeleteUser removes an account and its sessions. The last Admin stays.
func (s *Store) DeleteUser(ctx context.Context, id uint) error {
	u, err := s.GetUser(ctx, id)
	if err != nil {
		return err
	}
	if u.Role == RoleAdmin {
		if err := s.ensureAnotherAdmin(ctx, id); err != nil {
			return err
		}
	}
	if err := s.db.WithContext(ctx).Where("user_id = ?", id).Delete(&Session{}).Error; err != nil {
		return fmt.Errorf("store: delete sessions of %q: %w", u.Username, err)
	}
	if err := s.db.WithContext(ctx).Delete(&User{}, id).Error; err != nil {
		return fmt.Errorf("store: delete user %q: %w", u.Username, err)
	}
	return nil
}

// CreateSession starts a session for u lasting ttl and returns the cookie
// value; only its hash is stored.
func (s *Store) CreateSession(ctx context.Context, u *User, ttl time.Duration) (token string, sess *Session, err error) {
	token = RandomToken(32)
	sess = &Session{ID: HashToken(token), UserID: u.ID, CSRFToken: RandomToken(24), ExpiresAt: s.now().Add(ttl)}
	if err := s.db.WithContext(ctx).Create(sess).Error; err != nil {
		return "", nil, fmt.Errorf("store: create session: %w", err)
	}
	sess.User = u
	return token, sess, nil
}

// GetSession returns the live session for a cookie value, with its user.
// Expired sessions are ErrNotFound.
func (s *Store) GetSession(ctx context.Context, token string) (*Session, error) {
	var sess Session
	err := s.rdb.WithContext(ctx).Preload("User").Where("id = ? AND expires_at > ?", HashToken(token), s.now()).Take(&sess).Error
	if err != nil {
		return nil, notFound(err, "get session")
	}
	if sess.User == nil {
		return nil, fmt.Errorf("store: get session: %w", ErrNotFound)
	}
	return &sess, nil
}

// DeleteSession ends a session (sign-out).
func (s *Store) DeleteSession(ctx context.Context, token string) error {
	if err := s.db.WithContext(ctx).Where("id = ?", HashToken(token)).Delete(&Session{}).Error; err != nil {
		return fmt.Errorf("store: delete session: %w", err)
	}
	return nil
}

// PruneSessions removes expired sessions.
func (s *Store) PruneSessions(ctx context.Context) error {
	if err := s.db.WithContext(ctx).Where("expires_at <= ?", s.now()).Delete(&Session{}).Error; err != nil {
		return fmt.Errorf("store: prune sessions: %w", err)
	}
	return nil
}

// Audit records who did what to which resource. Failures are returned but
// callers typically only log them: the action itself has happened.
func (s *Store) Audit(ctx context.Context, actor, action, target, detail string) error {
	e := AuditEntry{At: s.now(), Actor: actor, Action: action, Target: target, Detail: detail}
	if err := s.db.WithContext(ctx).Create(&e).Error; err != nil {
		return fmt.Errorf("store: audit %s %s: %w", action, target, err)
	}
	return nil
}

// ListAudit returns a page of the audit trail, newest first.
func (s *Store) ListAudit(ctx context.Context, offset, limit int) ([]AuditEntry, int64, error) {
	var total int64
	if err := s.db.WithContext(ctx).Model(&AuditEntry{}).Count(&total).Error; err != nil {
		return nil, 0, fmt.Errorf("store: count audit: %w", err)
	}
	var out []AuditEntry
	if err := s.db.WithContext(ctx).Order("id DESC").Offset(offset).Limit(limit).Find(&out).Error; err != nil {
		return nil, 0, fmt.Errorf("store: list audit: %w", err)
	}
	return out, total, nil
}
