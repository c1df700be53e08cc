-- Event ids unique per registry (events.seq is the key deliveries
-- reference), lease owner and token on deliveries, superseded attempts:
-- see sqlite/00002.

-- +goose Up
ALTER TABLE deliveries DROP CONSTRAINT deliveries_event_id_fkey;
ALTER TABLE events DROP CONSTRAINT events_pkey;
ALTER TABLE events ADD COLUMN seq bigserial PRIMARY KEY;
CREATE UNIQUE INDEX idx_events_registry_event ON events (registry_id, id);
ALTER TABLE deliveries ADD COLUMN event_seq bigint;
UPDATE deliveries d SET event_seq = e.seq FROM events e WHERE e.id = d.event_id;
ALTER TABLE deliveries ALTER COLUMN event_seq SET NOT NULL,
  ADD CONSTRAINT fk_deliveries_event FOREIGN KEY (event_seq) REFERENCES events (seq) ON DELETE CASCADE,
  ADD COLUMN lease_owner text NOT NULL DEFAULT '',
  ADD COLUMN lease_token bigint NOT NULL DEFAULT 0;
DROP INDEX idx_deliveries_event_id;
CREATE INDEX idx_deliveries_event_seq ON deliveries (event_seq);
ALTER TABLE attempts ADD COLUMN superseded boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE attempts DROP COLUMN superseded;
DROP INDEX idx_deliveries_event_seq;
CREATE INDEX idx_deliveries_event_id ON deliveries (event_id);
ALTER TABLE deliveries DROP CONSTRAINT fk_deliveries_event, DROP COLUMN event_seq, DROP COLUMN lease_owner, DROP COLUMN lease_token;
DROP INDEX idx_events_registry_event;
ALTER TABLE events DROP COLUMN seq;
ALTER TABLE events ADD PRIMARY KEY (id);
ALTER TABLE deliveries ADD CONSTRAINT deliveries_event_id_fkey FOREIGN KEY (event_id) REFERENCES events (id) ON DELETE CASCADE;
