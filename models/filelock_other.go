//go:build !unix

package models

import (
	"fmt"
	"os"
)

// lockFile creates path and holds it open. Without flock this platform
// cannot refuse a second process; run one per database.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: lock %s: %w", path, err)
	}
	return f, nil
}
