-- The PostgreSQL claim walks one webhook's due deliveries and counts its
-- live leases (state, available_at) under that webhook's row lock.

-- +goose Up
CREATE INDEX idx_delivery_webhook_due ON deliveries (webhook_id, state, available_at);

-- +goose Down
DROP INDEX idx_delivery_webhook_due;
