package ledger

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/internal/pgtest"
)

const (
	testMerchant = "m1"
	testPIAID    = "PIAID_1"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestPostgres runs every test of this package again on PostgreSQL.
func TestPostgres(t *testing.T) { pgtest.RunOnPostgres(t) }

// openTest opens a ledger on a fresh file in t.TempDir (or a fresh
// PostgreSQL database, see pgtest) with one active merchant owning
// testPIAID.
func openTest(t testing.TB, opts Options) (*Ledger, string) {
	t.Helper()
	path := pgtest.Target(t, filepath.Join(t.TempDir(), "ledger.db"))
	l, err := Open(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	mustApply(t, l, func(tx *Tx) error {
		if err := tx.CreateMerchant(Merchant{ID: testMerchant, Name: "Test Store"}); err != nil {
			return err
		}
		return tx.AddPIAID(testPIAID, testMerchant)
	})
	return l, path
}

func mustApply(t testing.TB, l *Ledger, fn func(tx *Tx) error) {
	t.Helper()
	if err := l.Apply(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

func hashOf(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// newCode is an issued code of 1,000,000 micros USD for testPIAID.
func newCode(txID string) Code {
	return Code{PIAID: testPIAID, TransactionID: txID, AccountID: "acct-1", GPTHash: GPTHash("tok"),
		AmountMicros: 1_000_000, Currency: "USD", Printable: "P-" + txID, Barcode: "B-" + txID}
}

func createCode(t testing.TB, l *Ledger, c Code) {
	t.Helper()
	mustApply(t, l, func(tx *Tx) error { return tx.CreateCode(c) })
}

func payCode(t testing.TB, l *Ledger, txID string) {
	t.Helper()
	mustApply(t, l, func(tx *Tx) error {
		_, err := tx.MarkPaid(testPIAID, txID, Payment{IntegratorTransactionID: "itx-" + txID, PaidAt: time.Now()})
		return err
	})
}

func TestMigrationsIdempotentOnReopen(t *testing.T) {
	ctx := context.Background()
	l, path := openTest(t, Options{})
	createCode(t, l, newCode("t1"))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		l2, err := Open(ctx, path, Options{})
		if err != nil {
			t.Fatalf("reopen %d: %v", i, err)
		}
		var versions int
		if err := l2.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE component = ?`, Component).Scan(&versions); err != nil {
			t.Fatal(err)
		}
		if versions != len(migrations) {
			t.Fatalf("reopen %d: %d migration rows, want %d", i, versions, len(migrations))
		}
		if c, err := l2.Code(ctx, testPIAID, "t1"); err != nil || c.State != CodeIssued {
			t.Fatalf("reopen %d: code %+v, %v", i, c, err)
		}
		l2.Close()
	}
}

func TestApplyAfterClose(t *testing.T) {
	l, _ := openTest(t, Options{})
	l.Close()
	if err := l.Apply(context.Background(), func(*Tx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("got %v, want ErrClosed", err)
	}
}

func TestPanicInClosureIsAnError(t *testing.T) {
	l, _ := openTest(t, Options{})
	err := l.Apply(context.Background(), func(tx *Tx) error {
		if err := tx.CreateCode(newCode("p1")); err != nil {
			return err
		}
		panic("boom")
	})
	if !errors.Is(err, ErrPanic) {
		t.Fatalf("got %v, want ErrPanic", err)
	}
	if _, err := l.Code(context.Background(), testPIAID, "p1"); !errors.Is(err, ErrUnknownTransaction) {
		t.Fatalf("panicking closure's code survived: %v", err)
	}
	// The writer still works.
	createCode(t, l, newCode("p2"))
}

func TestTxUnusableAfterClosure(t *testing.T) {
	l, _ := openTest(t, Options{})
	var kept *Tx
	mustApply(t, l, func(tx *Tx) error { kept = tx; return nil })
	if err := kept.CreateCode(newCode("late")); !errors.Is(err, ErrTxDone) {
		t.Fatalf("got %v, want ErrTxDone", err)
	}
}

func TestMerchants(t *testing.T) {
	ctx := context.Background()
	l, _ := openTest(t, Options{})
	m, err := l.MerchantByPIAID(ctx, testPIAID)
	if err != nil || m.ID != testMerchant || m.Status != MerchantActive {
		t.Fatalf("MerchantByPIAID = %+v, %v", m, err)
	}
	if _, err := l.MerchantByPIAID(ctx, "nope"); !errors.Is(err, ErrUnknownPIAID) {
		t.Fatalf("unknown PIAID: %v", err)
	}
	tests := []struct {
		name string
		fn   func(tx *Tx) error
		want error
	}{
		{"duplicate merchant", func(tx *Tx) error { return tx.CreateMerchant(Merchant{ID: testMerchant}) }, ErrDuplicate},
		{"PIAID of two merchants", func(tx *Tx) error {
			if err := tx.CreateMerchant(Merchant{ID: "m2"}); err != nil {
				return err
			}
			return tx.AddPIAID(testPIAID, "m2")
		}, ErrDuplicate},
		{"PIAID of unknown merchant", func(tx *Tx) error { return tx.AddPIAID("x", "ghost") }, ErrNotFound},
		{"status of unknown merchant", func(tx *Tx) error { return tx.SetMerchantStatus("ghost", MerchantDisabled) }, ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := l.Apply(ctx, tc.fn); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	mustApply(t, l, func(tx *Tx) error { return tx.SetMerchantStatus(testMerchant, MerchantDisabled) })
	err = l.Apply(ctx, func(tx *Tx) error { return tx.CreateCode(newCode("d1")) })
	if !errors.Is(err, ErrMerchantDisabled) {
		t.Fatalf("code for disabled merchant: %v", err)
	}
	if ps, err := l.PIAIDs(ctx, testMerchant); err != nil || len(ps) != 1 || ps[0] != testPIAID {
		t.Fatalf("PIAIDs = %v, %v", ps, err)
	}
	mustApply(t, l, func(tx *Tx) error { return tx.CreateMerchant(Merchant{ID: "a-first"}) })
	if ids, err := l.MerchantIDs(ctx); err != nil || !slices.Equal(ids, []string{"a-first", testMerchant}) {
		t.Fatalf("MerchantIDs = %v, %v", ids, err)
	}
}

func TestAuditAppendOnly(t *testing.T) {
	ctx := context.Background()
	l, _ := openTest(t, Options{})
	for i := 0; i < 3; i++ {
		if err := l.Audit(ctx, AuditEntry{Actor: "op", Action: "key.promote", Subject: fmt.Sprintf("key/%d", i%2),
			Before: []byte(`{"state":"active"}`), After: []byte(`{"state":"primary"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := l.AuditLog(ctx, AuditQuery{})
	if err != nil || len(all) != 3 {
		t.Fatalf("AuditLog = %d entries, %v", len(all), err)
	}
	sub, err := l.AuditLog(ctx, AuditQuery{Subject: "key/0"})
	if err != nil || len(sub) != 2 || sub[0].ID >= sub[1].ID {
		t.Fatalf("AuditLog(subject) = %+v, %v", sub, err)
	}
	page, err := l.AuditLog(ctx, AuditQuery{AfterID: all[0].ID, Limit: 1})
	if err != nil || len(page) != 1 || page[0].ID != all[1].ID {
		t.Fatalf("AuditLog(page) = %+v, %v", page, err)
	}
	if string(all[0].After) != `{"state":"primary"}` {
		t.Fatalf("after = %s", all[0].After)
	}
	// The log cannot be rewritten, even through the raw handle.
	if _, err := l.DB().ExecContext(ctx, `UPDATE audit SET actor = 'x'`); err == nil {
		t.Fatal("audit row updated")
	}
	if _, err := l.DB().ExecContext(ctx, `DELETE FROM audit`); err == nil {
		t.Fatal("audit row deleted")
	}
}
