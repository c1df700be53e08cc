package models

import (
	"context"
	"fmt"

	"gorm.io/gorm"
)

// SQLite keeps the pages a DELETE frees inside the file for reuse, so a
// database that once held a receiver's junk stays that large. With
// auto_vacuum=INCREMENTAL the free pages can be handed back to the file
// system on demand (PRAGMA incremental_vacuum) without a full VACUUM's
// rewrite and exclusive lock; large deletes (a webhook with its history,
// retention pruning) do so when they finish.

// useIncrementalVacuum switches the database to auto_vacuum=INCREMENTAL.
// The mode of an existing file changes only with a VACUUM, run here once:
// at the first start after an upgrade (a rewrite of the file, as long as a
// copy of it takes) or right after creating a new one (a few pages).
func useIncrementalVacuum(db *gorm.DB) error {
	var mode int
	if err := db.Raw("PRAGMA auto_vacuum").Scan(&mode).Error; err != nil {
		return fmt.Errorf("store: read auto_vacuum: %w", err)
	}
	const incremental = 2
	if mode == incremental {
		return nil
	}
	if err := db.Exec("PRAGMA auto_vacuum = INCREMENTAL").Error; err != nil {
		return fmt.Errorf("store: set auto_vacuum: %w", err)
	}
	if err := db.Exec("VACUUM").Error; err != nil {
		return fmt.Errorf("store: vacuum to enable incremental auto_vacuum: %w", err)
	}
	return nil
}

// reclaimSpace returns the database's free pages to the file system and
// truncates the write-ahead log (SQLite only). Callers ignore a failure: the delete that
// came before has happened, and the next large delete tries again.
func (s *Store) reclaimSpace(ctx context.Context) error {
	if s.engine != engineSQLite {
		return nil // PostgreSQL's autovacuum does this
	}
	// incremental_vacuum frees one page per step: read it to the end.
	rows, err := s.wsql.QueryContext(ctx, "PRAGMA incremental_vacuum")
	if err != nil {
		return fmt.Errorf("store: incremental vacuum: %w", err)
	}
	for rows.Next() {
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("store: incremental vacuum: %w", err)
	}
	if _, err := s.wsql.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return fmt.Errorf("store: checkpoint: %w", err)
	}
	return nil
}
