package models

import (
	"context"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// IngestResult says what became of one ingested event.
type IngestResult struct {
	EventID    string
	Duplicate  bool // an event with this id was ingested before; nothing new was queued
	Deliveries int  // deliveries queued
}

// IngestEvents writes events and, for each, one delivery per enabled webhook
// of its registry whose actions and scope match, all in one transaction: when
// it returns nil, every event and delivery is committed; otherwise none is.
// An event whose id exists already is skipped (Duplicate), so a registry
// retrying a notification does not cause a second delivery.
func (s *Store) IngestEvents(ctx context.Context, events []*Event) ([]IngestResult, error) {
	out := make([]IngestResult, len(events))
	now := s.now().UnixNano()
	hooks := map[uint][]Webhook{}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var dels []Delivery
		for i, ev := range events {
			out[i].EventID = ev.ID
			if ev.CreatedAt == 0 {
				ev.CreatedAt = now
			}
			res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(ev)
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected == 0 {
				out[i].Duplicate = true
				continue
			}
			ws, ok := hooks[ev.RegistryID]
			if !ok {
				if err := tx.Select("id", "actions", "scope", "status").
					Where("registry_id = ? AND status = ?", ev.RegistryID, StatusEnabled).Find(&ws).Error; err != nil {
					return err
				}
				hooks[ev.RegistryID] = ws
			}
			for j := range ws {
				w := &ws[j]
				if !w.HasAction(ev.Action) {
					continue
				}
				sc, ok := w.ParsedScope()
				if !ok || !sc.Matches(ev.Repository, ev.Tag) {
					continue
				}
				dels = append(dels, Delivery{EventID: ev.ID, WebhookID: w.ID, AvailableAt: now, CreatedAt: now, UpdatedAt: now})
				out[i].Deliveries++
			}
		}
		if len(dels) > 0 {
			return tx.CreateInBatches(dels, 500).Error
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: ingest %d events: %w", len(events), err)
	}
	return out, nil
}

// QueuePing writes a ping event for webhook w and its delivery in one
// transaction. A ping is delivered whatever the webhook's status and scope.
func (s *Store) QueuePing(ctx context.Context, w *Webhook, ev *Event) (*Delivery, error) {
	now := s.now().UnixNano()
	ev.CreatedAt = now
	d := &Delivery{EventID: ev.ID, WebhookID: w.ID, AvailableAt: now, CreatedAt: now, UpdatedAt: now}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(ev).Error; err != nil {
			return err
		}
		return tx.Create(d).Error
	})
	if err != nil {
		return nil, fmt.Errorf("store: queue ping for webhook %q: %w", w.Name, err)
	}
	return d, nil
}

// DeliveryRow is a delivery with its event, for the webhook's events table.
type DeliveryRow struct {
	Delivery
	Action     string
	Repository string
	Tag        string
	Digest     string
	Timestamp  int64 // event created_at, unix ns
}

// Image mirrors Event.Image.
func (r *DeliveryRow) Image() string {
	e := Event{Repository: r.Repository, Tag: r.Tag, Digest: r.Digest}
	return e.Image()
}

// ListDeliveries returns one page of a webhook's deliveries, newest first,
// and the total count.
func (s *Store) ListDeliveries(ctx context.Context, webhookID uint, offset, limit int) ([]DeliveryRow, int64, error) {
	var total int64
	if err := s.db.WithContext(ctx).Model(&Delivery{}).Where("webhook_id = ?", webhookID).Count(&total).Error; err != nil {
		return nil, 0, fmt.Errorf("store: count deliveries: %w", err)
	}
	var rows []DeliveryRow
	err := s.db.WithContext(ctx).Table("deliveries d").
		Select("d.*, e.action, e.repository, e.tag, e.digest, e.created_at AS timestamp").
		Joins("JOIN events e ON e.id = d.event_id").
		Where("d.webhook_id = ?", webhookID).
		Order("d.created_at DESC, d.id DESC").Offset(offset).Limit(limit).Scan(&rows).Error
	if err != nil {
		return nil, 0, fmt.Errorf("store: list deliveries: %w", err)
	}
	return rows, total, nil
}

// GetDelivery returns a delivery of a webhook with its event.
func (s *Store) GetDelivery(ctx context.Context, webhookID, id uint) (*Delivery, error) {
	var d Delivery
	if err := s.db.WithContext(ctx).Preload("Event").Where("webhook_id = ?", webhookID).Take(&d, id).Error; err != nil {
		return nil, notFound(err, fmt.Sprintf("get delivery %d", id))
	}
	return &d, nil
}

// ListAttempts returns the attempts of a delivery, oldest first.
func (s *Store) ListAttempts(ctx context.Context, deliveryID uint) ([]Attempt, error) {
	var out []Attempt
	if err := s.db.WithContext(ctx).Where("delivery_id = ?", deliveryID).Order("number").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("store: list attempts: %w", err)
	}
	return out, nil
}

// AttemptWithEvent is an attempt joined with its event's payload, the shape
// ARM's listEvents needs.
type AttemptWithEvent struct {
	Attempt
	Payload []byte
}

// ListWebhookAttempts returns a page of a webhook's attempts, newest first.
func (s *Store) ListWebhookAttempts(ctx context.Context, webhookID uint, offset, limit int) ([]AttemptWithEvent, error) {
	var rows []AttemptWithEvent
	err := s.db.WithContext(ctx).Table("attempts a").Select("a.*, e.payload").
		Joins("JOIN events e ON e.id = a.event_id").Where("a.webhook_id = ?", webhookID).
		Order("a.started_at DESC, a.id DESC").Offset(offset).Limit(limit).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("store: list attempts of webhook %d: %w", webhookID, err)
	}
	return rows, nil
}
