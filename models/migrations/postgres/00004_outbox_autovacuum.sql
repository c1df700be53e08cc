-- Every claim and result leaves a dead row version in deliveries, and the
-- claims' index scans wade through them until the table is vacuumed: after
-- a burst of 40,000 deliveries (84,000 dead versions, no vacuum yet), the
-- first statement of a claim took 4 ms; after a VACUUM, 0.3 ms. By default
-- autovacuum waits until a fifth of the table is dead; on the outbox it
-- starts after 1,000 dead rows plus 1 % of the table. (The dispatcher also
-- vacuums it when it falls idle after a burst: web/dispatch/vacuum.go.)

-- +goose Up
ALTER TABLE deliveries SET (autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_scale_factor = 0.01);

-- +goose Down
ALTER TABLE deliveries RESET (autovacuum_vacuum_threshold, autovacuum_vacuum_scale_factor);
