-- The schema as GORM's AutoMigrate created it before versioned migrations
-- (column for column, index for index), so a database made by that code is
-- baselined at this version without change. IF NOT EXISTS keeps it a no-op
-- there; the two DROPs are the hand-written index drops of those releases.

-- +goose Up
CREATE TABLE IF NOT EXISTS `registries` (`id` integer PRIMARY KEY AUTOINCREMENT,`name` text NOT NULL,`subscription_id` text NOT NULL,`resource_group` text NOT NULL,`location` text NOT NULL,`sku` text NOT NULL,`login_server` text NOT NULL,`tags` text NOT NULL DEFAULT "{}",`ingest_token` text NOT NULL DEFAULT "",`created_at` datetime,`updated_at` datetime);
CREATE UNIQUE INDEX IF NOT EXISTS `idx_registry_name` ON `registries`(`name` COLLATE nocase);
CREATE TABLE IF NOT EXISTS `webhooks` (`id` integer PRIMARY KEY AUTOINCREMENT,`registry_id` integer NOT NULL,`name` text NOT NULL,`service_uri` text NOT NULL,`custom_headers` text NOT NULL DEFAULT "",`actions` text NOT NULL,`status` text NOT NULL,`scope` text NOT NULL DEFAULT "",`location` text NOT NULL,`tags` text NOT NULL DEFAULT "{}",`created_by` text NOT NULL DEFAULT "",`created_at` datetime,`updated_at` datetime,CONSTRAINT `fk_webhooks_registry` FOREIGN KEY (`registry_id`) REFERENCES `registries`(`id`) ON DELETE CASCADE);
CREATE UNIQUE INDEX IF NOT EXISTS `idx_webhook_name` ON `webhooks`(`registry_id`,`name` COLLATE nocase);
CREATE TABLE IF NOT EXISTS `events` (`id` text,`registry_id` integer NOT NULL,`action` text NOT NULL,`repository` text NOT NULL DEFAULT "",`tag` text NOT NULL DEFAULT "",`digest` text NOT NULL DEFAULT "",`source` text NOT NULL,`payload` blob NOT NULL,`created_at` integer NOT NULL,PRIMARY KEY (`id`));
CREATE INDEX IF NOT EXISTS `idx_events_created_at` ON `events`(`created_at`);
CREATE TABLE IF NOT EXISTS `deliveries` (`id` integer PRIMARY KEY AUTOINCREMENT,`event_id` text NOT NULL,`webhook_id` integer NOT NULL,`state` integer NOT NULL DEFAULT 0,`attempts` integer NOT NULL DEFAULT 0,`available_at` integer NOT NULL,`last_status_code` integer NOT NULL DEFAULT 0,`last_reason` text NOT NULL DEFAULT "",`last_error` text NOT NULL DEFAULT "",`last_duration_ms` integer NOT NULL DEFAULT 0,`created_at` integer NOT NULL,`updated_at` integer NOT NULL,CONSTRAINT `fk_deliveries_event` FOREIGN KEY (`event_id`) REFERENCES `events`(`id`) ON DELETE CASCADE,CONSTRAINT `fk_deliveries_webhook` FOREIGN KEY (`webhook_id`) REFERENCES `webhooks`(`id`) ON DELETE CASCADE);
CREATE INDEX IF NOT EXISTS `idx_delivery_due` ON `deliveries`(`state`,`available_at`);
CREATE INDEX IF NOT EXISTS `idx_delivery_webhook` ON `deliveries`(`webhook_id`,`created_at`);
CREATE INDEX IF NOT EXISTS `idx_deliveries_event_id` ON `deliveries`(`event_id`);
CREATE TABLE IF NOT EXISTS `attempts` (`id` integer PRIMARY KEY AUTOINCREMENT,`delivery_id` integer NOT NULL,`webhook_id` integer NOT NULL,`event_id` text NOT NULL,`number` integer NOT NULL,`request_uri` text NOT NULL,`request_headers` text NOT NULL DEFAULT "{}",`status_code` integer NOT NULL DEFAULT 0,`reason_phrase` text NOT NULL DEFAULT "",`response_headers` text NOT NULL DEFAULT "{}",`response_body` text NOT NULL DEFAULT "",`truncated` numeric NOT NULL DEFAULT false,`error` text NOT NULL DEFAULT "",`duration_ms` integer NOT NULL DEFAULT 0,`started_at` integer NOT NULL,CONSTRAINT `fk_attempts_delivery` FOREIGN KEY (`delivery_id`) REFERENCES `deliveries`(`id`) ON DELETE CASCADE);
CREATE INDEX IF NOT EXISTS `idx_attempt_webhook` ON `attempts`(`webhook_id`,`started_at`);
CREATE INDEX IF NOT EXISTS `idx_attempts_delivery_id` ON `attempts`(`delivery_id`);
CREATE TABLE IF NOT EXISTS `users` (`id` integer PRIMARY KEY AUTOINCREMENT,`username` text NOT NULL,`password_hash` text NOT NULL,`role` text NOT NULL,`created_at` datetime,`updated_at` datetime);
CREATE UNIQUE INDEX IF NOT EXISTS `idx_username` ON `users`(`username` COLLATE nocase);
CREATE TABLE IF NOT EXISTS `sessions` (`id` text,`user_id` integer NOT NULL,`csrf_token` text NOT NULL,`expires_at` datetime,`created_at` datetime,PRIMARY KEY (`id`),CONSTRAINT `fk_sessions_user` FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON DELETE CASCADE);
CREATE INDEX IF NOT EXISTS `idx_sessions_user_id` ON `sessions`(`user_id`);
CREATE TABLE IF NOT EXISTS `api_tokens` (`id` integer PRIMARY KEY AUTOINCREMENT,`name` text NOT NULL,`hash` text NOT NULL,`prefix` text NOT NULL,`role` text NOT NULL DEFAULT "Contributor",`created_by` text NOT NULL DEFAULT "",`created_at` datetime,`last_used_at` datetime,`revoked_at` datetime);
CREATE UNIQUE INDEX IF NOT EXISTS `idx_api_tokens_hash` ON `api_tokens`(`hash`);
CREATE TABLE IF NOT EXISTS `audit_entries` (`id` integer PRIMARY KEY AUTOINCREMENT,`at` datetime,`actor` text NOT NULL,`action` text NOT NULL,`target` text NOT NULL,`detail` text NOT NULL DEFAULT "");
CREATE INDEX IF NOT EXISTS `idx_audit_entries_at` ON `audit_entries`(`at`);
DROP INDEX IF EXISTS `idx_delivery_open`;
DROP INDEX IF EXISTS `idx_events_registry_id`;

-- +goose Down
DROP TABLE `audit_entries`;
DROP TABLE `api_tokens`;
DROP TABLE `sessions`;
DROP TABLE `users`;
DROP TABLE `attempts`;
DROP TABLE `deliveries`;
DROP TABLE `events`;
DROP TABLE `webhooks`;
DROP TABLE `registries`;
