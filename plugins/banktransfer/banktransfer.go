package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/otpcgate/otpcgate/sdk"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// Config is the banktransfer plugin's configuration JSON.
type Config struct {
	Currencies      []string `json:"currencies"`
	MinAmountMicros int64    `json:"minAmountMicros"`
	MaxAmountMicros int64    `json:"maxAmountMicros"`
	// ValidityDays is how long a reference is payable.
	ValidityDays int `json:"validityDays"`
	// GraceDays accepts transfers that arrive this long after expiry
	// (bank clearing delays).
	GraceDays int `json:"graceDays"`
	// ReferencePrefix (A-Z0-9, up to 6) starts every reference body.
	ReferencePrefix string `json:"referencePrefix"`
	// InstantRefundMaxMicros caps synchronous refunds; larger ones must be
	// asynchronous (a bank transfer back takes days).
	InstantRefundMaxMicros int64 `json:"instantRefundMaxMicros"`
	// ClosedAccounts lists merchant accounts that are closed.
	ClosedAccounts []string `json:"closedAccounts"`
}

// ParseConfig parses and checks the configuration.
func ParseConfig(raw []byte) (*Config, error) {
	c := &Config{}
	if err := json.Unmarshal(raw, c); err != nil {
		return nil, fmt.Errorf("banktransfer: config: %w", err)
	}
	switch {
	case len(c.Currencies) == 0:
		return nil, errors.New("banktransfer: config: no currencies")
	case c.MinAmountMicros <= 0 || c.MaxAmountMicros < c.MinAmountMicros:
		return nil, errors.New("banktransfer: config: need 0 < minAmountMicros <= maxAmountMicros")
	case c.ValidityDays <= 0 || c.GraceDays < 0:
		return nil, errors.New("banktransfer: config: validityDays must be > 0 and graceDays >= 0")
	case len(c.ReferencePrefix) > 6 || strings.Trim(c.ReferencePrefix, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != "":
		return nil, errors.New("banktransfer: config: referencePrefix must be up to 6 of A-Z0-9")
	}
	return c, nil
}

func config(c *sdk.Context) (*Config, error) { return sdk.ParsedConfig(c, ParseConfig) }

const keySeq = "seq"

// Plugin returns the banktransfer handlers.
func Plugin() *sdk.Plugin {
	return &sdk.Plugin{
		Warmup: func(c *sdk.Context) error {
			_, err := config(c)
			return err
		},
		Generate:    generate,
		Cancel:      cancel,
		Refund:      refund,
		AsyncRefund: asyncRefund,
		Paid:        paid,
		RefundDone:  refundDone,
		Remittance: func(c *sdk.Context, _ *otpc.RemittanceInput) (*otpc.RemittanceOutput, error) {
			return &otpc.RemittanceOutput{Result: otpc.RemittanceStatementNotificationResult{Accepted: &otpc.Empty{}}}, nil
		},
	}
}

const base36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

// referenceBody is prefix | sequence (base 36, 7 wide) | 4 random base-36
// characters.
func referenceBody(prefix string, seq uint64, rnd uint32) string {
	s := strings.ToUpper(strconv.FormatUint(seq, 36))
	if len(s) > 7 {
		s = s[len(s)-7:]
	}
	b := []byte(prefix + strings.Repeat("0", 7-len(s)) + s)
	for range 4 {
		b = append(b, base36[rnd%36])
		rnd /= 36
	}
	return string(b)
}

func generate(c *sdk.Context, in *otpc.GenerateInput) (*otpc.GenerateOutput, error) {
	cfg, err := config(c)
	if err != nil {
		return nil, err
	}
	if slices.Contains(cfg.ClosedAccounts, in.AccountID) {
		return &otpc.GenerateOutput{Result: otpc.GenerateReferenceNumberResult{AccountClosed: &otpc.AccountClosed{}}}, nil
	}
	amt := in.Request.Amount
	if !slices.Contains(cfg.Currencies, amt.CurrencyCode) {
		return nil, otpc.RefuseInvalidField("amount.currencyCode", "currency "+amt.CurrencyCode+" is not taken by bank transfer")
	}
	if amt.AmountMicros < cfg.MinAmountMicros || amt.AmountMicros > cfg.MaxAmountMicros {
		return nil, otpc.RefuseInvalidField("amount.amountMicros", fmt.Sprintf("amount outside %d..%d micros", cfg.MinAmountMicros, cfg.MaxAmountMicros))
	}
	if amt.AmountMicros%10_000 != 0 {
		return nil, otpc.RefuseInvalidField("amount.amountMicros", "amount has fractions of a cent; a bank transfer cannot carry it")
	}
	kv := c.KV()
	seq := uint64(1)
	if v, ok := kv.Get(keySeq); ok {
		if seq, err = strconv.ParseUint(string(v), 10, 64); err != nil {
			return nil, fmt.Errorf("corrupt sequence in KV: %w", err)
		}
	}
	kv.Put(keySeq, strconv.AppendUint(nil, seq+1, 10))
	var rnd [4]byte
	c.Random(rnd[:])
	ref, err := newRF(referenceBody(cfg.ReferencePrefix, seq, binary.LittleEndian.Uint32(rnd[:])))
	if err != nil {
		return nil, err
	}
	printable := printRF(ref)
	// The host refuses payments after ExpiresAt, so the code is payable
	// until the end of the grace period: validity + grace.
	exp := otpc.Timestamp{EpochMillis: c.Now().Add(time.Duration(cfg.ValidityDays+cfg.GraceDays) * 24 * time.Hour).UnixMilli()}
	return &otpc.GenerateOutput{
		Result: otpc.GenerateReferenceNumberResult{Success: &otpc.GenerateReferenceNumberSuccess{
			DisplayableReferenceNumber: otpc.DisplayableReferenceNumber{PrintableString: &printable},
		}},
		ExpiresAt: &exp,
	}, nil
}

func cancel(_ *sdk.Context, in *otpc.CancelInput) (*otpc.CancelOutput, error) {
	if in.Code.PaidMicros > 0 || in.Code.State == otpc.CodeStatePaid || in.Code.State == otpc.CodeStateRefunded {
		return &otpc.CancelOutput{Result: otpc.CancelReferenceNumberResult{ReferenceNumberAlreadyPaid: &otpc.Empty{}}}, nil
	}
	return &otpc.CancelOutput{Result: otpc.CancelReferenceNumberResult{Success: &otpc.Empty{}}}, nil
}

// paid: the transfer must quote a valid reference, cover the amount
// (overpayment is accepted and refunded by the merchant out of band; the
// ledger records the code's amount as paid) and arrive before the code's
// expiry, which generate set to the validity plus the grace period.
func paid(c *sdk.Context, in *otpc.PaidInput) (*otpc.PaidOutput, error) {
	if _, err := config(c); err != nil {
		return nil, err
	}
	code := &in.Code
	decline := func(reason string) (*otpc.PaidOutput, error) { return &otpc.PaidOutput{DeclineReason: reason}, nil }
	switch {
	case code.State != otpc.CodeStateIssued && code.State != otpc.CodeStateExpired:
		return decline("reference is " + code.State)
	case !validRF(code.PrintableString):
		return decline("reference fails its mod-97 check")
	case in.Amount.CurrencyCode != code.Amount.CurrencyCode:
		return decline("currency differs")
	case in.Amount.AmountMicros < code.Amount.AmountMicros:
		return decline("underpaid")
	}
	if code.ExpiresAt != nil && in.PaidAt.EpochMillis > code.ExpiresAt.EpochMillis {
		return decline("transfer arrived after the grace period")
	}
	if in.Amount.AmountMicros > code.Amount.AmountMicros {
		c.Log(sdk.LevelWarn, "overpayment accepted; merchant refunds the difference")
	}
	id := "BT-" + strings.ReplaceAll(code.PrintableString, " ", "")
	if in.MerchantPaymentID != "" {
		id = "BT-" + in.MerchantPaymentID
	}
	return &otpc.PaidOutput{Accepted: true, PaymentIntegratorTransactionID: id}, nil
}

func refundCheck(in *otpc.RefundInput) error {
	code, amt := &in.Code, in.Request.RefundAmount
	if code.PaidMicros == 0 {
		return otpc.RefusePrecondition("reference not paid")
	}
	if amt.CurrencyCode != code.Amount.CurrencyCode {
		return otpc.RefuseInvalidField("refundAmount.currencyCode", "refund currency differs from the reference's")
	}
	if remaining := code.PaidMicros - code.RefundedMicros; amt.AmountMicros <= 0 || amt.AmountMicros > remaining {
		return otpc.RefusePrecondition(fmt.Sprintf("refund exceeds the remaining %d micros", remaining))
	}
	return nil
}

func refund(c *sdk.Context, in *otpc.RefundInput) (*otpc.RefundOutput, error) {
	cfg, err := config(c)
	if err != nil {
		return nil, err
	}
	if err := refundCheck(in); err != nil {
		return nil, err
	}
	if in.Request.RefundAmount.AmountMicros > cfg.InstantRefundMaxMicros {
		return nil, otpc.RefuseInvalidField("refundAmount.amountMicros", fmt.Sprintf("synchronous refunds are limited to %d micros; use asynchronousRefund", cfg.InstantRefundMaxMicros))
	}
	return &otpc.RefundOutput{Result: otpc.RefundResult{Success: &otpc.Empty{}}}, nil
}

func asyncRefund(_ *sdk.Context, in *otpc.RefundInput) (*otpc.AsyncRefundOutput, error) {
	if err := refundCheck(in); err != nil {
		return nil, err
	}
	return &otpc.AsyncRefundOutput{Result: otpc.AsynchronousRefundResult{Acknowledged: &otpc.Empty{}}}, nil
}

// refundDone maps the bank's outcome: a returned transfer to a closed
// account is accountClosed, any other failure accountOnHold.
func refundDone(_ *sdk.Context, in *otpc.RefundDoneInput) (*otpc.RefundDoneOutput, error) {
	switch {
	case in.Success:
		return &otpc.RefundDoneOutput{Result: otpc.RefundResult{Success: &otpc.Empty{}}}, nil
	case strings.Contains(strings.ToLower(in.Detail), "closed"):
		return &otpc.RefundDoneOutput{Result: otpc.RefundResult{AccountClosed: &otpc.AccountClosed{}}}, nil
	}
	return &otpc.RefundDoneOutput{Result: otpc.RefundResult{AccountOnHold: &otpc.AccountOnHold{}}}, nil
}
