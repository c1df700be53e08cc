-- Event ids become unique per registry, not across all of them: events get
-- a surrogate key (seq) that deliveries reference, and (registry_id, id) is
-- unique. Deliveries get lease_owner (the claiming instance) and
-- lease_token (incremented by every claim; results are written only while
-- the token still matches). Attempts get superseded: a result that came
-- back after its lease was lost is kept as history, marked so.
--
-- SQLite cannot change a primary key in place, so events and deliveries
-- are rebuilt, with foreign keys off (else dropping the old tables would
-- cascade) and the rebuild in one transaction of its own.

-- +goose NO TRANSACTION
-- +goose Up
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;
CREATE TABLE `events_new` (`seq` integer PRIMARY KEY,`id` text NOT NULL,`registry_id` integer NOT NULL,`action` text NOT NULL,`repository` text NOT NULL DEFAULT "",`tag` text NOT NULL DEFAULT "",`digest` text NOT NULL DEFAULT "",`source` text NOT NULL,`payload` blob NOT NULL,`created_at` integer NOT NULL);
INSERT INTO `events_new` (`id`,`registry_id`,`action`,`repository`,`tag`,`digest`,`source`,`payload`,`created_at`)
  SELECT `id`,`registry_id`,`action`,`repository`,`tag`,`digest`,`source`,`payload`,`created_at` FROM `events` ORDER BY `created_at`, `id`;
CREATE TABLE `deliveries_new` (`id` integer PRIMARY KEY AUTOINCREMENT,`event_seq` integer NOT NULL,`event_id` text NOT NULL,`webhook_id` integer NOT NULL,`state` integer NOT NULL DEFAULT 0,`attempts` integer NOT NULL DEFAULT 0,`available_at` integer NOT NULL,`lease_owner` text NOT NULL DEFAULT "",`lease_token` integer NOT NULL DEFAULT 0,`last_status_code` integer NOT NULL DEFAULT 0,`last_reason` text NOT NULL DEFAULT "",`last_error` text NOT NULL DEFAULT "",`last_duration_ms` integer NOT NULL DEFAULT 0,`created_at` integer NOT NULL,`updated_at` integer NOT NULL,CONSTRAINT `fk_deliveries_event` FOREIGN KEY (`event_seq`) REFERENCES `events`(`seq`) ON DELETE CASCADE,CONSTRAINT `fk_deliveries_webhook` FOREIGN KEY (`webhook_id`) REFERENCES `webhooks`(`id`) ON DELETE CASCADE);
INSERT INTO `deliveries_new` (`id`,`event_seq`,`event_id`,`webhook_id`,`state`,`attempts`,`available_at`,`last_status_code`,`last_reason`,`last_error`,`last_duration_ms`,`created_at`,`updated_at`)
  SELECT d.`id`, e.`seq`, d.`event_id`, d.`webhook_id`, d.`state`, d.`attempts`, d.`available_at`, d.`last_status_code`, d.`last_reason`, d.`last_error`, d.`last_duration_ms`, d.`created_at`, d.`updated_at`
  FROM `deliveries` d JOIN `events_new` e ON e.`id` = d.`event_id`;
DROP TABLE `deliveries`;
DROP TABLE `events`;
ALTER TABLE `events_new` RENAME TO `events`;
ALTER TABLE `deliveries_new` RENAME TO `deliveries`;
CREATE UNIQUE INDEX `idx_events_registry_event` ON `events`(`registry_id`,`id`);
CREATE INDEX `idx_events_created_at` ON `events`(`created_at`);
CREATE INDEX `idx_delivery_due` ON `deliveries`(`state`,`available_at`);
CREATE INDEX `idx_delivery_webhook` ON `deliveries`(`webhook_id`,`created_at`);
CREATE INDEX `idx_deliveries_event_seq` ON `deliveries`(`event_seq`);
ALTER TABLE `attempts` ADD COLUMN `superseded` numeric NOT NULL DEFAULT false;
COMMIT;
PRAGMA foreign_keys = ON;

-- +goose Down
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;
CREATE TABLE `events_old` (`id` text,`registry_id` integer NOT NULL,`action` text NOT NULL,`repository` text NOT NULL DEFAULT "",`tag` text NOT NULL DEFAULT "",`digest` text NOT NULL DEFAULT "",`source` text NOT NULL,`payload` blob NOT NULL,`created_at` integer NOT NULL,PRIMARY KEY (`id`));
INSERT OR IGNORE INTO `events_old` SELECT `id`,`registry_id`,`action`,`repository`,`tag`,`digest`,`source`,`payload`,`created_at` FROM `events` ORDER BY `seq`;
CREATE TABLE `deliveries_old` (`id` integer PRIMARY KEY AUTOINCREMENT,`event_id` text NOT NULL,`webhook_id` integer NOT NULL,`state` integer NOT NULL DEFAULT 0,`attempts` integer NOT NULL DEFAULT 0,`available_at` integer NOT NULL,`last_status_code` integer NOT NULL DEFAULT 0,`last_reason` text NOT NULL DEFAULT "",`last_error` text NOT NULL DEFAULT "",`last_duration_ms` integer NOT NULL DEFAULT 0,`created_at` integer NOT NULL,`updated_at` integer NOT NULL,CONSTRAINT `fk_deliveries_event` FOREIGN KEY (`event_id`) REFERENCES `events`(`id`) ON DELETE CASCADE,CONSTRAINT `fk_deliveries_webhook` FOREIGN KEY (`webhook_id`) REFERENCES `webhooks`(`id`) ON DELETE CASCADE);
INSERT INTO `deliveries_old` SELECT `id`,`event_id`,`webhook_id`,`state`,`attempts`,`available_at`,`last_status_code`,`last_reason`,`last_error`,`last_duration_ms`,`created_at`,`updated_at` FROM `deliveries`;
DROP TABLE `deliveries`;
DROP TABLE `events`;
ALTER TABLE `events_old` RENAME TO `events`;
ALTER TABLE `deliveries_old` RENAME TO `deliveries`;
CREATE INDEX `idx_events_created_at` ON `events`(`created_at`);
CREATE INDEX `idx_delivery_due` ON `deliveries`(`state`,`available_at`);
CREATE INDEX `idx_delivery_webhook` ON `deliveries`(`webhook_id`,`created_at`);
CREATE INDEX `idx_deliveries_event_id` ON `deliveries`(`event_id`);
ALTER TABLE `attempts` DROP COLUMN `superseded`;
COMMIT;
PRAGMA foreign_keys = ON;
