-- Auto-disable (issue 11): see sqlite/00012.

-- +goose Up
ALTER TABLE webhooks ADD COLUMN enabled_at bigint NOT NULL DEFAULT 0,
  ADD COLUMN auto_disabled_at bigint NOT NULL DEFAULT 0,
  ADD COLUMN auto_disabled_reason text NOT NULL DEFAULT '';
UPDATE webhooks SET enabled_at = COALESCE((EXTRACT(EPOCH FROM created_at) * 1000000000)::bigint, 0);
CREATE INDEX idx_delivery_webhook_state ON deliveries (webhook_id, state, updated_at) WHERE state >= 2;

-- +goose Down
DROP INDEX idx_delivery_webhook_state;
ALTER TABLE webhooks DROP COLUMN auto_disabled_reason, DROP COLUMN auto_disabled_at, DROP COLUMN enabled_at;
