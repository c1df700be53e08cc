package models

import (
	"context"
	"fmt"
	"time"
)

// OutboxBacklog returns how many deliveries are open (pending or in
// flight) and when the oldest of them was queued; ok is false when none is
// open. It is what the metrics endpoint reads at every scrape, so it stays
// cheap with a large backlog: the count and MIN(id) come from
// idx_delivery_due alone (ids grow with created_at), then one primary-key
// lookup.
func (s *Store) OutboxBacklog(ctx context.Context) (open int64, oldest time.Time, ok bool, err error) {
	var row struct {
		N     int64
		First *int64
	}
	if err := s.rdb.WithContext(ctx).Raw(`SELECT COUNT(*) AS n, MIN(id) AS first FROM deliveries WHERE state IN (?, ?)`,
		DeliveryPending, DeliveryInFlight).Scan(&row).Error; err != nil {
		return 0, time.Time{}, false, fmt.Errorf("store: outbox backlog: %w", err)
	}
	if row.First == nil {
		return row.N, time.Time{}, false, nil
	}
	var at []int64
	if err := s.rdb.WithContext(ctx).Raw(`SELECT created_at FROM deliveries WHERE id = ?`, *row.First).Scan(&at).Error; err != nil {
		return 0, time.Time{}, false, fmt.Errorf("store: outbox backlog: %w", err)
	}
	if len(at) == 0 {
		// Finished and pruned between the two reads: the next scrape sees it.
		return row.N, time.Time{}, false, nil
	}
	return row.N, time.Unix(0, at[0]), true, nil
}
