package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/otpcgate/otpcgate/sdk"
)

// Config is the konbini plugin's configuration (JSON, set by the operator
// per merchant). It is parsed once per instance (sdk.ParsedConfig), so
// encoding/json is off the hot path.
type Config struct {
	// MinAmountMicros and MaxAmountMicros bound a code's amount (inclusive).
	MinAmountMicros int64 `json:"minAmountMicros"`
	MaxAmountMicros int64 `json:"maxAmountMicros"`
	// Currencies lists the accepted ISO 4217 codes.
	Currencies []string `json:"currencies"`
	// Expiry is how long a code stays payable, a Go duration ("72h").
	Expiry string `json:"expiry"`
	// CodeLength is the number of digits of the printable code, check digit
	// included (10..20).
	CodeLength int `json:"codeLength"`
	// Prefix starts every code (digits, identifies the merchant at the
	// store network).
	Prefix string `json:"prefix"`
	// RefundWindowDays bounds refunds after payment; 0 means no limit.
	RefundWindowDays int `json:"refundWindowDays"`
	// Accounts are the merchant's customer accounts, by account id.
	Accounts map[string]Account `json:"accounts"`

	expiry time.Duration
}

// Account is one customer account of the merchant.
type Account struct {
	// SecretSHA256 is the hex sha256 of the account's login secret.
	SecretSHA256 string `json:"secretSha256"`
	// Closed accounts get accountClosed answers.
	Closed bool `json:"closed"`
	// TokenInvalidated: the user revoked Google's token at the merchant.
	TokenInvalidated bool `json:"tokenInvalidated"`
	// Ineligible accounts cannot be associated.
	Ineligible bool `json:"ineligible"`
	// Name is returned as user information when Google asks.
	Name string `json:"name"`
	// CountryCode is the account holder's country.
	CountryCode string `json:"countryCode"`
}

// ParseConfig parses and checks the configuration.
func ParseConfig(raw []byte) (*Config, error) {
	c := &Config{}
	if err := json.Unmarshal(raw, c); err != nil {
		return nil, fmt.Errorf("konbini: config: %w", err)
	}
	var err error
	if c.expiry, err = time.ParseDuration(c.Expiry); err != nil || c.expiry <= 0 {
		return nil, fmt.Errorf("konbini: config: expiry %q is not a positive duration", c.Expiry)
	}
	if c.CodeLength < 10 || c.CodeLength > 20 {
		return nil, errors.New("konbini: config: codeLength must be 10..20")
	}
	for _, r := range c.Prefix {
		if r < '0' || r > '9' {
			return nil, errors.New("konbini: config: prefix must be digits")
		}
	}
	// prefix + at least 4 sequence digits + 4 random digits + check digit
	if len(c.Prefix)+9 > c.CodeLength {
		return nil, errors.New("konbini: config: prefix too long for codeLength")
	}
	if c.MinAmountMicros <= 0 || c.MaxAmountMicros < c.MinAmountMicros {
		return nil, errors.New("konbini: config: need 0 < minAmountMicros <= maxAmountMicros")
	}
	if len(c.Currencies) == 0 {
		return nil, errors.New("konbini: config: no currencies")
	}
	return c, nil
}

func config(c *sdk.Context) (*Config, error) { return sdk.ParsedConfig(c, ParseConfig) }

func (c *Config) currencyAllowed(ccy string) bool {
	for _, a := range c.Currencies {
		if a == ccy {
			return true
		}
	}
	return false
}
