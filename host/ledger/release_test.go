package ledger

import (
	"errors"
	"testing"
)

// TestDeleteMerchantAndReleasePIAID checks that only a disabled merchant
// without a single record can be deleted, and only such a PIAID released:
// a PIAID's records must never become visible to another merchant.
func TestDeleteMerchantAndReleasePIAID(t *testing.T) {
	const other, otherPIAID = "other", "OTHER_PIAID"
	used := []struct {
		name  string
		table string
		use   func(tx *Tx) error
	}{
		{"answered request", "idempotency", func(tx *Tx) error {
			return tx.PutRecord(Record{PIAID: testPIAID, RequestID: "r1", Method: "echo", Hash: hashOf("x"), Status: 200, Body: []byte("{}")})
		}},
		{"code", "codes", func(tx *Tx) error { return tx.CreateCode(newCode("t1")) }},
		{"plugin KV", "kv", func(tx *Tx) error {
			return tx.ApplyKV(testMerchant, []KVChange{{Key: "k", Value: []byte("v")}})
		}},
	}
	for _, u := range used {
		t.Run("in use: "+u.name, func(t *testing.T) {
			l, _ := openTest(t, Options{})
			mustApply(t, l, u.use)
			mustApply(t, l, func(tx *Tx) error { return tx.SetMerchantStatus(testMerchant, MerchantDisabled) })
			for what, fn := range map[string]func(tx *Tx) error{
				"delete":  func(tx *Tx) error { return tx.DeleteMerchant(testMerchant) },
				"release": func(tx *Tx) error { return tx.ReleasePIAID(testMerchant, testPIAID) },
			} {
				err := l.Apply(t.Context(), fn)
				var iu *InUseError
				if !errors.As(err, &iu) || !errors.Is(err, ErrInUse) {
					if what == "release" && u.table == "kv" {
						// KV belongs to the merchant, not the PIAID.
						if err != nil {
							t.Fatalf("release with only merchant KV: %v", err)
						}
						continue
					}
					t.Fatalf("%s: err = %v, want an InUseError", what, err)
				}
				if iu.Records[u.table] == 0 {
					t.Errorf("%s: %v does not count %s", what, err, u.table)
				}
			}
			if _, err := l.Merchant(t.Context(), testMerchant); err != nil {
				t.Fatalf("merchant gone after a refused delete: %v", err)
			}
		})
	}

	t.Run("active merchant", func(t *testing.T) {
		l, _ := openTest(t, Options{})
		for _, fn := range []func(tx *Tx) error{
			func(tx *Tx) error { return tx.DeleteMerchant(testMerchant) },
			func(tx *Tx) error { return tx.ReleasePIAID(testMerchant, testPIAID) },
		} {
			if err := l.Apply(t.Context(), fn); !errors.Is(err, ErrMerchantActive) {
				t.Fatalf("err = %v, want ErrMerchantActive", err)
			}
		}
	})

	t.Run("unknown", func(t *testing.T) {
		l, _ := openTest(t, Options{})
		mustApply(t, l, func(tx *Tx) error {
			if err := tx.CreateMerchant(Merchant{ID: other, Name: "Other", Status: MerchantDisabled}); err != nil {
				return err
			}
			return tx.AddPIAID(otherPIAID, other)
		})
		if err := l.Apply(t.Context(), func(tx *Tx) error { return tx.DeleteMerchant("nobody") }); !errors.Is(err, ErrNotFound) {
			t.Fatalf("delete unknown: %v", err)
		}
		// testPIAID is testMerchant's, not other's.
		if err := l.Apply(t.Context(), func(tx *Tx) error { return tx.ReleasePIAID(other, testPIAID) }); !errors.Is(err, ErrUnknownPIAID) {
			t.Fatalf("release another merchant's PIAID: %v", err)
		}
	})

	t.Run("never used", func(t *testing.T) {
		l, _ := openTest(t, Options{})
		mustApply(t, l, func(tx *Tx) error {
			if err := tx.AddPIAID("SECOND", testMerchant); err != nil {
				return err
			}
			if err := tx.SetAmountRules("SECOND", AmountRules{Currencies: []string{"JPY"}}); err != nil {
				return err
			}
			if err := tx.CreateMerchant(Merchant{ID: other, Name: "Other"}); err != nil {
				return err
			}
			return tx.SetMerchantStatus(testMerchant, MerchantDisabled)
		})
		// A released PIAID (with its rules) can go to another merchant.
		mustApply(t, l, func(tx *Tx) error { return tx.ReleasePIAID(testMerchant, "SECOND") })
		mustApply(t, l, func(tx *Tx) error { return tx.AddPIAID("SECOND", other) })
		if m, err := l.MerchantByPIAID(t.Context(), "SECOND"); err != nil || m.ID != other {
			t.Fatalf("SECOND belongs to %v, %v; want %s", m.ID, err, other)
		}
		mustApply(t, l, func(tx *Tx) error { return tx.DeleteMerchant(testMerchant) })
		if _, err := l.Merchant(t.Context(), testMerchant); !errors.Is(err, ErrNotFound) {
			t.Fatalf("deleted merchant: %v", err)
		}
		if _, err := l.MerchantByPIAID(t.Context(), testPIAID); !errors.Is(err, ErrUnknownPIAID) {
			t.Fatalf("deleted merchant's PIAID: %v", err)
		}
		// The id and PIAID are free again.
		mustApply(t, l, func(tx *Tx) error {
			if err := tx.CreateMerchant(Merchant{ID: testMerchant, Name: "Again"}); err != nil {
				return err
			}
			return tx.AddPIAID(testPIAID, testMerchant)
		})
	})
}
