-- The sign-in throttle in the database: see sqlite/00020.

-- +goose Up
CREATE TABLE sign_in_throttle (
  kind text NOT NULL,
  name text NOT NULL,
  address text NOT NULL,
  full_at bigint NOT NULL,
  PRIMARY KEY (kind, name, address)
);
CREATE INDEX idx_sign_in_throttle_full_at ON sign_in_throttle (full_at);

-- +goose Down
DROP TABLE sign_in_throttle;
