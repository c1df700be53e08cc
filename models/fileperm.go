package models

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// privateFiles makes the database file, and its -wal and -shm companions
// when present, readable by their owner only (0600): they hold sealed
// secrets, token hashes and every recorded request. SQLite creates a new
// file with 0644 (less the umask) and gives the -wal and -shm files the
// main file's mode, so creating the main file first with 0600 is enough for
// a new database; an existing one's looser modes are narrowed.
func privateFiles(path string) error {
	if path == "" || strings.HasPrefix(path, "file:") || strings.HasPrefix(path, ":memory:") {
		return nil
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		return f.Close()
	}
	if !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("store: create %s: %w", path, err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		st, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		if st.Mode().IsRegular() && st.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, st.Mode().Perm()&0o700); err != nil {
				return fmt.Errorf("store: make %s private: %w", p, err)
			}
		}
	}
	return nil
}
