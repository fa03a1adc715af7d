package ledger

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestAmountRulesTakes(t *testing.T) {
	r := AmountRules{Currencies: []string{"JPY"}, MinMicros: 100_000000, MaxMicros: 300000_000000}
	for _, tc := range []struct {
		name     string
		rules    AmountRules
		micros   int64
		currency string
		field    string
	}{
		{"inside", r, 1000_000000, "JPY", ""},
		{"at minimum", r, 100_000000, "JPY", ""},
		{"at maximum", r, 300000_000000, "JPY", ""},
		{"below minimum", r, 99_000000, "JPY", "amount.amountMicros"},
		{"above maximum", r, 300001_000000, "JPY", "amount.amountMicros"},
		{"currency not taken", r, 1000_000000, "USD", "amount.currencyCode"},
		{"currency first", r, 1, "USD", "amount.currencyCode"},
		{"no rules", AmountRules{}, 1, "EUR", ""},
		{"minimum only", AmountRules{MinMicros: 10}, 1 << 60, "EUR", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			field, ok := tc.rules.Takes(tc.micros, tc.currency)
			if field != tc.field || ok != (tc.field == "") {
				t.Fatalf("Takes = %q %v, want %q", field, ok, tc.field)
			}
		})
	}
}

// TestAmountRulesStored: rules round-trip per PIAID, a zero value clears
// them, impossible rules and unknown PIAIDs are refused.
func TestAmountRulesStored(t *testing.T) {
	l, _ := openTest(t, Options{})
	ctx := context.Background()
	r := AmountRules{Currencies: []string{"JPY", "USD"}, MinMicros: 1, MaxMicros: 2}
	mustApply(t, l, func(tx *Tx) error { return tx.SetAmountRules(testPIAID, r) })
	got, err := l.AmountRules(ctx, testMerchant)
	if err != nil || !reflect.DeepEqual(got, map[string]AmountRules{testPIAID: r}) {
		t.Fatalf("rules %+v %v", got, err)
	}
	for _, tc := range []struct {
		name  string
		piaid string
		r     AmountRules
		want  error
	}{
		{"min above max", testPIAID, AmountRules{MinMicros: 3, MaxMicros: 2}, ErrInvalidRules},
		{"negative", testPIAID, AmountRules{MinMicros: -1}, ErrInvalidRules},
		{"bad currency", testPIAID, AmountRules{Currencies: []string{"yen"}}, ErrInvalidRules},
		{"unknown PIAID", "ghost", r, ErrUnknownPIAID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := l.Apply(ctx, func(tx *Tx) error { return tx.SetAmountRules(tc.piaid, tc.r) })
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	mustApply(t, l, func(tx *Tx) error { return tx.SetAmountRules(testPIAID, AmountRules{}) })
	if got, err := l.AmountRules(ctx, testMerchant); err != nil || len(got) != 0 {
		t.Fatalf("after clearing: %+v %v", got, err)
	}
}

// TestRemainingMicros: paid minus succeeded and acknowledged refunds;
// declined refunds do not count.
func TestRemainingMicros(t *testing.T) {
	l, _ := openTest(t, Options{})
	ctx := context.Background()
	c := newCode("t1")
	mustApply(t, l, func(tx *Tx) error {
		if err := tx.CreateCode(c); err != nil {
			return err
		}
		_, err := tx.MarkPaid(testPIAID, "t1", Payment{IntegratorTransactionID: "i", PaidAt: time.Now()})
		return err
	})
	steps := []struct {
		refund Refund
		want   int64
	}{
		{Refund{RefundID: "r1", AmountMicros: 100, Kind: RefundSync, State: RefundSucceeded}, c.AmountMicros - 100},
		{Refund{RefundID: "r2", AmountMicros: 200, Kind: RefundAsync, State: RefundAcknowledged}, c.AmountMicros - 300},
		{Refund{RefundID: "r3", AmountMicros: 400, Kind: RefundSync, State: RefundDeclined}, c.AmountMicros - 300},
	}
	for _, s := range steps {
		s.refund.PIAID, s.refund.TransactionID, s.refund.Currency = testPIAID, "t1", c.Currency
		mustApply(t, l, func(tx *Tx) error { return tx.AddRefund(s.refund) })
		if got, err := l.RemainingMicros(ctx, testPIAID, "t1"); err != nil || got != s.want {
			t.Fatalf("after %s: remaining %d %v, want %d", s.refund.RefundID, got, err, s.want)
		}
	}
	if _, err := l.RemainingMicros(ctx, testPIAID, "ghost"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown code: %v", err)
	}
}
