package main

import (
	"strconv"
	"time"
)

// Printable codes
//
// A code is CodeLength decimal digits:
//
//	prefix | sequence (zero-padded) | 4 random digits | Luhn check digit
//
// The sequence is a per-merchant counter kept in KV ("seq"), so codes never
// repeat for a merchant; the random digits make neighbouring codes
// unguessable; the Luhn digit (ISO/IEC 7812-1 mod 10, weights 2,1 from the
// right) catches every single-digit typo and most adjacent swaps at the
// store terminal.
//
// Barcode contents
//
// The barcode (Code 128, numeric set C friendly) carries
//
//	"91" | code | amount in hundredths, 12 digits | expiry date YYMMDD (UTC)
//
// "91" is the application identifier for "company internal information" in
// GS1-128, so store scanners route it to the merchant's handler.

// luhnDigit returns the Luhn check digit for the decimal string s.
func luhnDigit(s string) byte {
	sum := 0
	double := true // the check digit will be appended at the right
	for i := len(s) - 1; i >= 0; i-- {
		d := int(s[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return byte('0' + (10-sum%10)%10)
}

// luhnValid reports whether s (check digit last) passes the Luhn check.
func luhnValid(s string) bool {
	if len(s) < 2 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return luhnDigit(s[:len(s)-1]) == s[len(s)-1]
}

// makeCode builds a code of length n from prefix, sequence and 4 random
// digits (rnd is taken mod 10000).
func makeCode(prefix string, seq uint64, rnd uint32, n int) string {
	seqWidth := n - len(prefix) - 4 - 1
	s := strconv.FormatUint(seq, 10)
	if len(s) > seqWidth { // wrapped around: keep the low digits
		s = s[len(s)-seqWidth:]
	}
	b := make([]byte, 0, n)
	b = append(b, prefix...)
	for i := len(s); i < seqWidth; i++ {
		b = append(b, '0')
	}
	b = append(b, s...)
	r := strconv.FormatUint(uint64(rnd%10000), 10)
	for i := len(r); i < 4; i++ {
		b = append(b, '0')
	}
	b = append(b, r...)
	return string(append(b, luhnDigit(string(b))))
}

// barcode returns the barcode contents for a code.
func barcode(code string, amountMicros int64, expires time.Time) string {
	hundredths := strconv.FormatInt(amountMicros/10_000, 10)
	b := make([]byte, 0, 2+len(code)+12+6)
	b = append(b, "91"...)
	b = append(b, code...)
	for i := len(hundredths); i < 12; i++ {
		b = append(b, '0')
	}
	b = append(b, hundredths...)
	return string(expires.UTC().AppendFormat(b, "060102"))
}
