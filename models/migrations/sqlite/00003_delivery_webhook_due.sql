-- Nothing on SQLite: its claim walks idx_delivery_due in one statement, and
-- one more index on deliveries would slow every state change. The number is
-- taken so both engines stay at the same version (postgres/00003 adds the
-- index its claim needs).

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;
