package main

import (
	"reflect"
	"testing"

	"github.com/otpcgate/otpcgate/host/ledger"
)

func TestParseAmountRules(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want map[string]ledger.AmountRules
		bad  bool
	}{
		{in: nil},
		{in: []string{"P1:JPY:100:300"}, want: map[string]ledger.AmountRules{"P1": {Currencies: []string{"JPY"}, MinMicros: 100, MaxMicros: 300}}},
		{in: []string{"P1:JPY,USD", "P2:::5"}, want: map[string]ledger.AmountRules{
			"P1": {Currencies: []string{"JPY", "USD"}}, "P2": {MaxMicros: 5}}},
		{in: []string{"P1:"}, want: map[string]ledger.AmountRules{"P1": {}}},
		{in: []string{":JPY"}, bad: true},
		{in: []string{"P1:JPY:ten"}, bad: true},
		{in: []string{"P1::300:100"}, bad: true},
		{in: []string{"P1:yen"}, bad: true},
		{in: []string{"P1:JPY:1:2:3"}, bad: true},
	} {
		got, err := parseAmountRules(tc.in)
		if (err != nil) != tc.bad || (!tc.bad && !reflect.DeepEqual(got, tc.want)) {
			t.Errorf("parseAmountRules(%q) = %+v, %v; want %+v (error %v)", tc.in, got, err, tc.want, tc.bad)
		}
	}
}
