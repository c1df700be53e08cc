-- The sign-in throttle in the database (issues 10 and 12), so every instance
-- on one database, and a restarted one, applies the same lockout. One row per
-- token bucket that is not full: kind is 'pair' (name and address), 'address'
-- (name '') or 'name' (address ''); full_at (unix ns) is when the bucket
-- will be full again, i.e. when its failures are forgotten (the "theoretical
-- arrival time" of GCRA: a bucket of burst B refilling one token per E has
-- (full_at - now) / E tokens taken). Rows whose full_at has passed mean the
-- same as no row and are pruned by full_at.

-- +goose Up
CREATE TABLE `sign_in_throttle` (
  `kind` text NOT NULL,
  `name` text NOT NULL,
  `address` text NOT NULL,
  `full_at` integer NOT NULL,
  PRIMARY KEY (`kind`, `name`, `address`)
);
CREATE INDEX `idx_sign_in_throttle_full_at` ON `sign_in_throttle`(`full_at`);

-- +goose Down
DROP TABLE `sign_in_throttle`;
