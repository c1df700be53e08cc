-- Nothing on SQLite: it keeps no dead row versions (postgres/00004 makes
-- autovacuum eager on the outbox). The number is taken so both engines stay
-- at the same version.

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;
