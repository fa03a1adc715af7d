package main

import (
	"errors"
	"strings"
)

// ISO 11649 structured creditor reference:
//
//	"RF" | 2 check digits | 1..21 characters [0-9A-Z]
//
// Check digits follow ISO 7064 mod 97-10 as in IBANs: move "RF" and the
// check digits to the end, replace letters by numbers (A=10 .. Z=35), and
// the resulting number mod 97 must be 1. Printed in groups of four.

// mod97 returns the number formed by s (letters expanded) mod 97.
func mod97(s string) (int, bool) {
	r := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			r = (r*10 + int(c-'0')) % 97
		case c >= 'A' && c <= 'Z':
			v := int(c-'A') + 10
			r = (r*100 + v) % 97
		default:
			return 0, false
		}
	}
	return r, true
}

var errBadReference = errors.New("banktransfer: invalid reference")

// newRF returns the electronic (unspaced) RF reference for body.
func newRF(body string) (string, error) {
	if len(body) == 0 || len(body) > 21 {
		return "", errBadReference
	}
	m, ok := mod97(body + "RF00")
	if !ok {
		return "", errBadReference
	}
	cd := 98 - m
	return "RF" + string([]byte{byte('0' + cd/10), byte('0' + cd%10)}) + body, nil
}

// validRF checks a reference in electronic or printed form.
func validRF(ref string) bool {
	ref = strings.ToUpper(strings.ReplaceAll(ref, " ", ""))
	if len(ref) < 5 || len(ref) > 25 || !strings.HasPrefix(ref, "RF") {
		return false
	}
	m, ok := mod97(ref[4:] + ref[:4])
	return ok && m == 1
}

// printRF groups an electronic reference in fours: "RF18 5390 0754 7034".
func printRF(ref string) string {
	var b strings.Builder
	for i := 0; i < len(ref); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(ref[i:min(i+4, len(ref))])
	}
	return b.String()
}
