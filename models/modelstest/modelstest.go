// Package modelstest opens real stores for the tests of other packages: a
// new SQLite file in the test's temporary directory, secrets sealed with a
// fixed test key, the default registry created, closed when the test ends.
package modelstest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/registryhooks/registryhooks/models"
)

// Open returns such a store and its default registry. opt.Cipher, when
// nil, is a cipher with an all-zero key.
func Open(t testing.TB, opt models.Options) (*models.Store, *models.Registry) {
	t.Helper()
	if opt.Cipher == nil {
		c, err := models.NewCipher(make([]byte, 32))
		if err != nil {
			t.Fatal(err)
		}
		opt.Cipher = c
	}
	s, err := models.Open(filepath.Join(t.TempDir(), "test.db"), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	if err := s.EnsureDefaultRegistry(ctx); err != nil {
		t.Fatal(err)
	}
	reg, err := s.GetRegistry(ctx, models.DefaultRegistryName)
	if err != nil {
		t.Fatal(err)
	}
	return s, reg
}
