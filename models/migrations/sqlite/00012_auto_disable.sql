-- Auto-disable (issue 11). Webhooks get enabled_at (unix ns: when the
-- webhook was created or last enabled; the auto-disable window never
-- reaches back past it), auto_disabled_at (unix ns, 0 = not disabled by the
-- system) and auto_disabled_reason. Existing webhooks count as enabled since
-- their creation. idx_delivery_webhook_state answers "did this webhook's
-- deliveries succeed or fail since T" with index seeks, however many
-- deliveries there are. It is partial, on finished rows only: a delivery
-- enters it once, when it finishes, so claims and retries (the hot path,
-- which changes state on every attempt) never touch it. Queries that use
-- it repeat its condition (state >= 2) for the planner.

-- +goose Up
ALTER TABLE `webhooks` ADD COLUMN `enabled_at` integer NOT NULL DEFAULT 0;
ALTER TABLE `webhooks` ADD COLUMN `auto_disabled_at` integer NOT NULL DEFAULT 0;
ALTER TABLE `webhooks` ADD COLUMN `auto_disabled_reason` text NOT NULL DEFAULT "";
UPDATE `webhooks` SET `enabled_at` = COALESCE(CAST((julianday(`created_at`) - 2440587.5) * 86400000000000 AS INTEGER), 0);
CREATE INDEX `idx_delivery_webhook_state` ON `deliveries`(`webhook_id`,`state`,`updated_at`) WHERE `state` >= 2;

-- +goose Down
DROP INDEX `idx_delivery_webhook_state`;
ALTER TABLE `webhooks` DROP COLUMN `auto_disabled_reason`;
ALTER TABLE `webhooks` DROP COLUMN `auto_disabled_at`;
ALTER TABLE `webhooks` DROP COLUMN `enabled_at`;
