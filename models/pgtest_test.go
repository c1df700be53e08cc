package models

import (
	"io"
	"log/slog"

	"github.com/registryhooks/registryhooks/models/pgtestdb"
)

// testEngine is the engine the store tests run on: sqlite (the default) or
// postgres, from REGISTRYHOOKS_TEST_ENGINE; CI runs them on both.
func testEngine() string {
	if pgtestdb.Postgres() {
		return enginePostgres
	}
	return engineSQLite
}

// newTextLog logs everything at debug level and above to w.
func newTextLog(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
