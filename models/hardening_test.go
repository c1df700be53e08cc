package models

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A new database and its WAL and SHM files are created 0600; an existing
// database left 0644 is narrowed at open.
func TestDatabaseFilesPrivate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "new.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureDefaultRegistry(context.Background()); err != nil { // writes: the WAL exists
		t.Fatal(err)
	}
	checkModes := func() {
		t.Helper()
		n := 0
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), "new.db") {
				continue
			}
			st, err := os.Stat(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("%s has mode %v, want 0600", e.Name(), st.Mode().Perm())
			}
			n++
		}
		if n < 3 {
			t.Fatalf("%d database files seen, want the file, -wal and -shm", n)
		}
	}
	checkModes()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Chmod(path+suffix, 0o644); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.EnsureDefaultRegistry(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkModes()
}

// A database file from before incremental auto_vacuum is converted once at
// open; a new one is created with it.
func TestIncrementalVacuumEnabled(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "old.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mode := func() int {
		var m int
		if err := s.db.Raw("PRAGMA auto_vacuum").Scan(&m).Error; err != nil {
			t.Fatal(err)
		}
		return m
	}
	if m := mode(); m != 2 {
		t.Fatalf("new database: auto_vacuum %d, want 2 (incremental)", m)
	}
	// Make it an old file again: auto_vacuum NONE.
	if err := s.db.Exec("PRAGMA auto_vacuum = NONE").Error; err != nil {
		t.Fatal(err)
	}
	if err := s.db.Exec("VACUUM").Error; err != nil {
		t.Fatal(err)
	}
	if m := mode(); m != 0 {
		t.Fatalf("could not reset auto_vacuum: %d", m)
	}
	_ = s.Close()
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if m := mode(); m != 2 {
		t.Fatalf("reopened old database: auto_vacuum %d, want 2", m)
	}
}
