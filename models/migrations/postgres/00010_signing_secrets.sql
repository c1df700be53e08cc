-- Signing secrets (Standard Webhooks): the webhook's current secret and,
-- for 24 hours after a rotation, the one it replaced, both sealed like the
-- other secrets; signing_rotated_at is unix nanoseconds (0: never rotated).
-- settings keeps what the server needs about itself: the key check value
-- and the passphrase's scrypt salt.

-- +goose Up
ALTER TABLE webhooks ADD COLUMN signing_secret text NOT NULL DEFAULT '';
ALTER TABLE webhooks ADD COLUMN previous_signing_secret text NOT NULL DEFAULT '';
ALTER TABLE webhooks ADD COLUMN signing_rotated_at bigint NOT NULL DEFAULT 0;
CREATE TABLE IF NOT EXISTS settings (name text PRIMARY KEY, value text NOT NULL);

-- +goose Down
DROP TABLE IF EXISTS settings;
ALTER TABLE webhooks DROP COLUMN signing_rotated_at;
ALTER TABLE webhooks DROP COLUMN previous_signing_secret;
ALTER TABLE webhooks DROP COLUMN signing_secret;
