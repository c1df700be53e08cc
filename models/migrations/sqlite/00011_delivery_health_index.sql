-- The webhook health charts and the events table's result filter:
-- (webhook_id, state, created_at) answers the charts' counts from the
-- index alone (one range per state) and a result filter in keyset order.
-- +goose Up
CREATE INDEX idx_delivery_health ON deliveries (webhook_id, state, created_at);

-- +goose Down
DROP INDEX idx_delivery_health;
