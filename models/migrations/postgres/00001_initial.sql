-- The same schema as sqlite/00001 in PostgreSQL's types. Names compared
-- case-insensitively in SQLite (COLLATE NOCASE) use the ICU collation
-- "nocase" made here, so the store's queries say COLLATE NOCASE on both
-- engines (PostgreSQL folds the unquoted name to nocase).

-- +goose Up
CREATE COLLATION IF NOT EXISTS nocase (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE TABLE registries (id bigserial PRIMARY KEY, name text NOT NULL, subscription_id text NOT NULL, resource_group text NOT NULL, location text NOT NULL, sku text NOT NULL, login_server text NOT NULL, tags text NOT NULL DEFAULT '{}', ingest_token text NOT NULL DEFAULT '', created_at timestamptz, updated_at timestamptz);
CREATE UNIQUE INDEX idx_registry_name ON registries (name COLLATE nocase);
CREATE TABLE webhooks (id bigserial PRIMARY KEY, registry_id bigint NOT NULL REFERENCES registries (id) ON DELETE CASCADE, name text NOT NULL, service_uri text NOT NULL, custom_headers text NOT NULL DEFAULT '', actions text NOT NULL, status text NOT NULL, scope text NOT NULL DEFAULT '', location text NOT NULL, tags text NOT NULL DEFAULT '{}', created_by text NOT NULL DEFAULT '', created_at timestamptz, updated_at timestamptz);
CREATE UNIQUE INDEX idx_webhook_name ON webhooks (registry_id, name COLLATE nocase);
CREATE TABLE events (id text PRIMARY KEY, registry_id bigint NOT NULL, action text NOT NULL, repository text NOT NULL DEFAULT '', tag text NOT NULL DEFAULT '', digest text NOT NULL DEFAULT '', source text NOT NULL, payload bytea NOT NULL, created_at bigint NOT NULL);
CREATE INDEX idx_events_created_at ON events (created_at);
CREATE TABLE deliveries (id bigserial PRIMARY KEY, event_id text NOT NULL REFERENCES events (id) ON DELETE CASCADE, webhook_id bigint NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE, state integer NOT NULL DEFAULT 0, attempts integer NOT NULL DEFAULT 0, available_at bigint NOT NULL, last_status_code integer NOT NULL DEFAULT 0, last_reason text NOT NULL DEFAULT '', last_error text NOT NULL DEFAULT '', last_duration_ms bigint NOT NULL DEFAULT 0, created_at bigint NOT NULL, updated_at bigint NOT NULL);
CREATE INDEX idx_delivery_due ON deliveries (state, available_at);
CREATE INDEX idx_delivery_webhook ON deliveries (webhook_id, created_at);
CREATE INDEX idx_deliveries_event_id ON deliveries (event_id);
CREATE TABLE attempts (id bigserial PRIMARY KEY, delivery_id bigint NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE, webhook_id bigint NOT NULL, event_id text NOT NULL, number integer NOT NULL, request_uri text NOT NULL, request_headers text NOT NULL DEFAULT '{}', status_code integer NOT NULL DEFAULT 0, reason_phrase text NOT NULL DEFAULT '', response_headers text NOT NULL DEFAULT '{}', response_body text NOT NULL DEFAULT '', truncated boolean NOT NULL DEFAULT false, error text NOT NULL DEFAULT '', duration_ms bigint NOT NULL DEFAULT 0, started_at bigint NOT NULL);
CREATE INDEX idx_attempt_webhook ON attempts (webhook_id, started_at);
CREATE INDEX idx_attempts_delivery_id ON attempts (delivery_id);
CREATE TABLE users (id bigserial PRIMARY KEY, username text NOT NULL, password_hash text NOT NULL, role text NOT NULL, created_at timestamptz, updated_at timestamptz);
CREATE UNIQUE INDEX idx_username ON users (username COLLATE nocase);
CREATE TABLE sessions (id text PRIMARY KEY, user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE, csrf_token text NOT NULL, expires_at timestamptz, created_at timestamptz);
CREATE INDEX idx_sessions_user_id ON sessions (user_id);
CREATE TABLE api_tokens (id bigserial PRIMARY KEY, name text NOT NULL, hash text NOT NULL, prefix text NOT NULL, role text NOT NULL DEFAULT 'Contributor', created_by text NOT NULL DEFAULT '', created_at timestamptz, last_used_at timestamptz, revoked_at timestamptz);
CREATE UNIQUE INDEX idx_api_tokens_hash ON api_tokens (hash);
CREATE TABLE audit_entries (id bigserial PRIMARY KEY, at timestamptz, actor text NOT NULL, action text NOT NULL, target text NOT NULL, detail text NOT NULL DEFAULT '');
CREATE INDEX idx_audit_entries_at ON audit_entries (at);

-- +goose Down
DROP TABLE audit_entries, api_tokens, sessions, users, attempts, deliveries, events, webhooks, registries;
DROP COLLATION nocase;
