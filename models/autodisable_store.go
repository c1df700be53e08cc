package models

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
)

// The queries of auto-disable (issue 11): which webhooks have failed long
// enough, disabling one on the system's behalf with its pending deliveries
// held, and giving them back when a person enables it again. Every query
// is portable SQL with ? placeholders through GORM, and walks
// idx_delivery_webhook_state (webhook_id, state, updated_at) by seeks, so
// its cost does not grow with a webhook's deliveries.

// AutoDisableMinFailures is how many deliveries must have finished failed
// within the window before a webhook is disabled: one or two failures say
// little about an endpoint that simply gets few events.
const AutoDisableMinFailures = 3

// HeldAvailableAt is the available_at of a pending delivery held while its
// webhook is auto-disabled. It lies beyond any clock, so no claim ever finds
// the delivery due, while its state stays DeliveryPending (code that counts
// state >= DeliverySucceeded as finished, retention for one, leaves it be).
// Enabling the webhook makes its held deliveries due at once.
const HeldAvailableAt int64 = math.MaxInt64

// AutoDisableAudit is the audit action recorded, with actor
// AutoDisableActor, when the system disables a webhook.
const (
	AutoDisableAudit = "webhook.auto_disable"
	AutoDisableActor = "system"
)

// failingSQL is the auto-disable rule for the webhook %[1]s.id, with two
// placeholders, both the window's start (unix ns): no delivery finished
// succeeded after it, and at least AutoDisableMinFailures finished failed
// after it (the EXISTS with OFFSET stops at the third row instead of
// counting them all). A delivery's finish time is its updated_at. The
// "state >= 2" terms repeat the condition of the partial index
// idx_delivery_webhook_state, so SQLite's planner knows it may use it.
var failingSQL = fmt.Sprintf(`NOT EXISTS (SELECT 1 FROM deliveries s WHERE s.webhook_id = %%[1]s.id AND s.state >= %[1]d AND s.state = %[1]d AND s.updated_at > ?)
  AND EXISTS (SELECT 1 FROM deliveries f WHERE f.webhook_id = %%[1]s.id AND f.state >= %[1]d AND f.state = %[2]d AND f.updated_at > ?
    ORDER BY f.updated_at LIMIT 1 OFFSET %[3]d)`, DeliverySucceeded, DeliveryFailed, AutoDisableMinFailures-1)

// failingWebhooksSQL lists the enabled webhooks that meet the rule:
// placeholders status, then the window's start three times.
var failingWebhooksSQL = `SELECT w.id, w.name, r.name AS registry FROM webhooks w
  JOIN registries r ON r.id = w.registry_id
  WHERE w.status = ? AND w.enabled_at <= ? AND ` + fmt.Sprintf(failingSQL, "w") + `
  ORDER BY w.id`

// FailingWebhook is a webhook that meets the auto-disable rule.
type FailingWebhook struct {
	ID       uint
	Name     string
	Registry string
}

// FailingWebhooks returns the enabled webhooks that meet the auto-disable
// rule at now for window: the webhook has been enabled for the whole
// window (created or last enabled at now-window or earlier), none of its
// deliveries finished succeeded within the window, and at least
// AutoDisableMinFailures finished failed within it (out of attempts, or
// refused with a 4xx that is not retried). Deliveries still being retried
// count for neither side; pings count like any delivery. A window <= 0
// finds nothing.
func (s *Store) FailingWebhooks(ctx context.Context, now time.Time, window time.Duration) ([]FailingWebhook, error) {
	if window <= 0 {
		return nil, nil
	}
	cutoff := now.Add(-window).UnixNano()
	var out []FailingWebhook
	err := s.rdb.WithContext(ctx).Raw(failingWebhooksSQL, StatusEnabled, cutoff, cutoff, cutoff).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("store: failing webhooks: %w", err)
	}
	return out, nil
}

// AutoDisabled describes a webhook the system disabled.
type AutoDisabled struct {
	ID       uint
	Name     string
	Registry string
	// Failed counts the deliveries that finished failed within the window.
	Failed int64
	// Held counts the deliveries held until the webhook is enabled again.
	Held int64
	// Reason is what the portal shows and the audit trail records. It
	// names no secret: the last failure is given by its HTTP status only.
	Reason string
}

// AutoDisableWebhook disables webhook id on the system's behalf if it still
// meets the rule of FailingWebhooks at now, all in one transaction: status
// disabled with AutoDisabledAt and AutoDisabledReason set, its pending
// deliveries held (HeldAvailableAt), its in-flight deliveries taken back
// from their lease (pending and held, lease token moved on, so an attempt
// still running records its result as superseded and schedules no retry;
// the request may still go out, and the delivery is sent again after the
// webhook is enabled: at least once, as always), and an audit entry by
// AutoDisableActor. ok is false, with nothing changed, when the webhook is
// gone or no longer meets the rule (a person enabled, disabled or fixed it
// meanwhile, or a delivery succeeded).
func (s *Store) AutoDisableWebhook(ctx context.Context, id uint, now time.Time, window time.Duration) (AutoDisabled, bool, error) {
	var out AutoDisabled
	if window <= 0 {
		return out, false, nil
	}
	cutoff := now.Add(-window).UnixNano()
	var ok bool
	defer func() {
		if ok {
			s.webhooksChanged(ctx)
		}
	}()
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var w struct {
			ID       uint
			Name     string
			Registry string
		}
		if err := tx.Raw(`SELECT w.id, w.name, r.name AS registry FROM webhooks w JOIN registries r ON r.id = w.registry_id
			WHERE w.id = ?`, id).Scan(&w).Error; err != nil {
			return err
		}
		if w.ID == 0 {
			return nil
		}
		var failed int64
		if err := tx.Raw(`SELECT COUNT(*) FROM deliveries WHERE webhook_id = ? AND state >= ? AND state = ? AND updated_at > ?`,
			id, DeliverySucceeded, DeliveryFailed, cutoff).Scan(&failed).Error; err != nil {
			return err
		}
		var last struct {
			LastStatusCode int
			LastReason     string
		}
		if err := tx.Raw(`SELECT last_status_code, last_reason FROM deliveries WHERE webhook_id = ? AND state >= ? AND state = ?
			ORDER BY updated_at DESC LIMIT 1`, id, DeliverySucceeded, DeliveryFailed).Scan(&last).Error; err != nil {
			return err
		}
		reason := fmt.Sprintf("No delivery succeeded for %s and %d failed (the last: %s).",
			FormatWindow(window), failed, statusText(last.LastStatusCode, last.LastReason))
		res := tx.Exec(`UPDATE webhooks SET status = ?, auto_disabled_at = ?, auto_disabled_reason = ?, updated_at = ?
			WHERE id = ? AND status = ? AND enabled_at <= ? AND `+fmt.Sprintf(failingSQL, "webhooks"),
			StatusDisabled, now.UnixNano(), reason, now, id, StatusEnabled, cutoff, cutoff, cutoff)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return nil
		}
		held := tx.Exec(`UPDATE deliveries SET available_at = ? WHERE webhook_id = ? AND state = ? AND available_at < ?`,
			HeldAvailableAt, id, DeliveryPending, HeldAvailableAt)
		if held.Error != nil {
			return held.Error
		}
		taken := tx.Exec(`UPDATE deliveries SET state = ?, available_at = ?, lease_owner = '', lease_token = lease_token + 1
			WHERE webhook_id = ? AND state = ?`, DeliveryPending, HeldAvailableAt, id, DeliveryInFlight)
		if taken.Error != nil {
			return taken.Error
		}
		target := w.Registry + "/" + w.Name
		if err := tx.Create(&AuditEntry{At: now, Actor: AutoDisableActor, Action: AutoDisableAudit, Target: target, Detail: reason}).Error; err != nil {
			return err
		}
		ok = true
		out = AutoDisabled{ID: id, Name: w.Name, Registry: w.Registry, Failed: failed,
			Held: held.RowsAffected + taken.RowsAffected, Reason: reason}
		return nil
	})
	if err != nil {
		return AutoDisabled{}, false, fmt.Errorf("store: auto-disable webhook %d: %w", id, err)
	}
	return out, ok, nil
}

// enableTx runs inside the transaction that sets a webhook's status to
// enabled: when the webhook was not enabled, its window starts now; when
// the system had disabled it, the marks go and its held deliveries become
// due now. Updates of a webhook that stays enabled change nothing here.
func enableTx(tx *gorm.DB, id uint, now time.Time) error {
	var auto int64
	if err := tx.Raw(`SELECT auto_disabled_at FROM webhooks WHERE id = ?`, id).Scan(&auto).Error; err != nil {
		return err
	}
	if err := tx.Exec(`UPDATE webhooks SET enabled_at = ?, auto_disabled_at = 0, auto_disabled_reason = ''
		WHERE id = ? AND status <> ?`, now.UnixNano(), id, StatusEnabled).Error; err != nil {
		return err
	}
	if auto == 0 {
		return nil
	}
	return tx.Exec(`UPDATE deliveries SET available_at = ? WHERE webhook_id = ? AND state = ? AND available_at = ?`,
		now.UnixNano(), id, DeliveryPending, HeldAvailableAt).Error
}

// HeldDeliveries counts the deliveries of a webhook held while it is
// auto-disabled.
func (s *Store) HeldDeliveries(ctx context.Context, webhookID uint) (int64, error) {
	var n int64
	if err := s.rdb.WithContext(ctx).Raw(`SELECT COUNT(*) FROM deliveries WHERE webhook_id = ? AND state = ? AND available_at = ?`,
		webhookID, DeliveryPending, HeldAvailableAt).Scan(&n).Error; err != nil {
		return 0, fmt.Errorf("store: held deliveries of webhook %d: %w", webhookID, err)
	}
	return n, nil
}

// FormatWindow writes a duration the way people set it: 72h, 90m, 2s,
// 1h30m (time.Duration's String would say 72h0m0s).
func FormatWindow(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func statusText(code int, reason string) string {
	if code == 0 {
		return "no HTTP response"
	}
	if reason == "" {
		reason = http.StatusText(code)
	}
	return strings.TrimSpace(strconv.Itoa(code) + " " + reason)
}
