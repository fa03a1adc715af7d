package directory

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/otpcgate/otpcgate/internal/db"
)

// TestRegistryMigratesIntegrations upgrades a database made by the first
// registry schema (envelope CHECK in SQL) and checks that its integrations
// survive and that the envelope table in Go is what refuses unknown formats.
func TestRegistryMigratesIntegrations(t *testing.T) {
	ctx := context.Background()
	d, err := db.Open(ctx, filepath.Join(t.TempDir(), "old.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := db.Migrate(ctx, d, component, migrations[:1]); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ExecContext(ctx, `INSERT INTO integrations (merchant_id, base_path, envelope, keyset_id, google_endpoint, updated_ms)
		VALUES ('m1', '/m1', 'jose', 'ks1', 'https://google.example/x', 1)`); err != nil {
		t.Fatal(err)
	}
	reg, err := Open(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	in, err := reg.Integration(ctx, "m1")
	if err != nil {
		t.Fatal(err)
	}
	if in.BasePath != "/m1" || in.Envelope != "jose" || in.KeysetID != "ks1" || in.GoogleEndpoint != "https://google.example/x" {
		t.Fatalf("after migration: %+v", in)
	}
	if err := reg.PutIntegration(ctx, Integration{MerchantID: "m2", BasePath: "/m2", Envelope: "toy", KeysetID: "ks2"}); err == nil {
		t.Fatal("an unknown envelope format was stored")
	}
	if _, err := reg.Integration(ctx, "m2"); err == nil {
		t.Fatal("refused integration is in the table")
	}
}
