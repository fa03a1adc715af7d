package main

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/otpcgate/otpcgate/sdk"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// KV keys (in the merchant's namespace, chosen by the host).
const (
	keySeq        = "seq"     // next code sequence number, decimal
	keyCodePrefix = "code/"   // code/<printable> -> generate request id
	keyRefund     = "refund/" // refund/<request id> -> amount micros, pending async refunds
)

// Plugin returns the konbini handlers.
func Plugin() *sdk.Plugin {
	return &sdk.Plugin{
		Warmup: func(c *sdk.Context) error {
			_, err := config(c) // parse once, before the first request
			return err
		},
		Generate:     generate,
		Cancel:       cancel,
		Refund:       refund,
		AsyncRefund:  asyncRefund,
		Paid:         paid,
		RefundDone:   refundDone,
		Associate:    associate,
		Authenticate: authenticate,
		Remittance:   remittance,
	}
}

func generate(c *sdk.Context, in *otpc.GenerateInput) (*otpc.GenerateOutput, error) {
	cfg, err := config(c)
	if err != nil {
		return nil, err
	}
	if acct, ok := cfg.Accounts[in.AccountID]; ok {
		switch {
		case acct.Closed:
			return &otpc.GenerateOutput{Result: otpc.GenerateReferenceNumberResult{AccountClosed: &otpc.AccountClosed{}}}, nil
		case acct.TokenInvalidated:
			return &otpc.GenerateOutput{Result: otpc.GenerateReferenceNumberResult{
				GooglePaymentTokenInvalidatedByUser: &otpc.GooglePaymentTokenInvalidatedByUser{}}}, nil
		}
	}
	amt := in.Request.Amount
	if !cfg.currencyAllowed(amt.CurrencyCode) {
		return nil, otpc.RefuseInvalidField("amount.currencyCode", "currency "+amt.CurrencyCode+" is not taken at the stores")
	}
	if amt.AmountMicros < cfg.MinAmountMicros || amt.AmountMicros > cfg.MaxAmountMicros {
		return nil, otpc.RefuseInvalidField("amount.amountMicros", fmt.Sprintf("amount outside %d..%d micros", cfg.MinAmountMicros, cfg.MaxAmountMicros))
	}
	kv := c.KV()
	seq := uint64(1)
	if v, ok := kv.Get(keySeq); ok {
		if seq, err = strconv.ParseUint(string(v), 10, 64); err != nil {
			return nil, fmt.Errorf("corrupt sequence in KV: %w", err)
		}
	}
	var rnd [4]byte
	c.Random(rnd[:])
	code := makeCode(cfg.Prefix, seq, binary.LittleEndian.Uint32(rnd[:]), cfg.CodeLength)
	kv.Put(keySeq, strconv.AppendUint(nil, seq+1, 10))
	kv.Put(keyCodePrefix+code, []byte(in.Request.RequestHeader.RequestID))

	expires := c.Now().Add(cfg.expiry)
	exp := otpc.Timestamp{EpochMillis: expires.UnixMilli()}
	return &otpc.GenerateOutput{
		Result: otpc.GenerateReferenceNumberResult{Success: &otpc.GenerateReferenceNumberSuccess{
			DisplayableReferenceNumber: otpc.DisplayableReferenceNumber{
				BarcodeWithPrintableString: &otpc.BarcodeWithPrintableString{
					PrintableString: code,
					BarcodeContents: barcode(code, amt.AmountMicros, expires),
				},
			},
		}},
		ExpiresAt: &exp,
	}, nil
}

// cancel: only an unpaid code can be cancelled; a paid one answers
// referenceNumberAlreadyPaid (Google then expects the paid notification).
func cancel(c *sdk.Context, in *otpc.CancelInput) (*otpc.CancelOutput, error) {
	switch in.Code.State {
	case otpc.CodeStatePaid, otpc.CodeStateRefunded:
		return &otpc.CancelOutput{Result: otpc.CancelReferenceNumberResult{ReferenceNumberAlreadyPaid: &otpc.Empty{}}}, nil
	}
	if in.Code.PaidMicros > 0 {
		return &otpc.CancelOutput{Result: otpc.CancelReferenceNumberResult{ReferenceNumberAlreadyPaid: &otpc.Empty{}}}, nil
	}
	if in.Code.PrintableString != "" {
		c.KV().Delete(keyCodePrefix + in.Code.PrintableString)
	}
	return &otpc.CancelOutput{Result: otpc.CancelReferenceNumberResult{Success: &otpc.Empty{}}}, nil
}

// refundCheck applies the rules shared by synchronous and asynchronous
// refunds. It returns a decline (non-nil result) or an error.
func refundCheck(c *sdk.Context, in *otpc.RefundInput) (*otpc.RefundResult, error) {
	cfg, err := config(c)
	if err != nil {
		return nil, err
	}
	code, amt := &in.Code, in.Request.RefundAmount
	if code.State != otpc.CodeStatePaid && code.State != otpc.CodeStateRefunded {
		return nil, otpc.RefusePrecondition("code is " + code.State + ", not paid")
	}
	if amt.CurrencyCode != code.Amount.CurrencyCode {
		return nil, otpc.RefuseInvalidField("refundAmount.currencyCode", "refund currency differs from the code's")
	}
	if remaining := code.PaidMicros - code.RefundedMicros; amt.AmountMicros <= 0 || amt.AmountMicros > remaining {
		return nil, otpc.RefusePrecondition(fmt.Sprintf("refund exceeds the remaining %d micros", remaining))
	}
	if acct, ok := cfg.Accounts[code.AccountID]; ok && acct.Closed {
		return &otpc.RefundResult{AccountClosed: &otpc.AccountClosed{}}, nil
	}
	if cfg.RefundWindowDays > 0 && code.PaidAt != nil {
		deadline := time.UnixMilli(code.PaidAt.EpochMillis).Add(time.Duration(cfg.RefundWindowDays) * 24 * time.Hour)
		if c.Now().After(deadline) {
			return &otpc.RefundResult{RefundWindowExceeded: &otpc.RefundWindowExceeded{}}, nil
		}
	}
	return nil, nil
}

func refund(c *sdk.Context, in *otpc.RefundInput) (*otpc.RefundOutput, error) {
	decline, err := refundCheck(c, in)
	if err != nil {
		return nil, err
	}
	if decline != nil {
		return &otpc.RefundOutput{Result: *decline}, nil
	}
	return &otpc.RefundOutput{Result: otpc.RefundResult{Success: &otpc.Empty{}}}, nil
}

// asyncRefund acknowledges the refund and remembers it as pending until the
// merchant reports the outcome (refundDone).
func asyncRefund(c *sdk.Context, in *otpc.RefundInput) (*otpc.AsyncRefundOutput, error) {
	decline, err := refundCheck(c, in)
	if err != nil {
		return nil, err
	}
	if decline != nil {
		out := &otpc.AsyncRefundOutput{}
		out.Result.AccountClosed = decline.AccountClosed
		if decline.RefundWindowExceeded != nil {
			out.Result.RefundWindowExceeded = decline.RefundWindowExceeded
		}
		return out, nil
	}
	c.KV().Put(keyRefund+in.Request.RequestHeader.RequestID, strconv.AppendInt(nil, in.Request.RefundAmount.AmountMicros, 10))
	return &otpc.AsyncRefundOutput{Result: otpc.AsynchronousRefundResult{Acknowledged: &otpc.Empty{}}}, nil
}

// paid validates a payment reported by a store: exact amount and currency,
// code still issued, paid before it expired.
func paid(c *sdk.Context, in *otpc.PaidInput) (*otpc.PaidOutput, error) {
	code := &in.Code
	decline := func(reason string) (*otpc.PaidOutput, error) {
		return &otpc.PaidOutput{Accepted: false, DeclineReason: reason}, nil
	}
	switch code.State {
	case otpc.CodeStateIssued:
	case otpc.CodeStateCancelled:
		return decline("code was cancelled")
	case otpc.CodeStatePaid, otpc.CodeStateRefunded:
		return decline("code already paid")
	default:
		return decline("code is " + code.State)
	}
	if in.Amount.CurrencyCode != code.Amount.CurrencyCode || in.Amount.AmountMicros != code.Amount.AmountMicros {
		return decline("amount differs from the code's amount")
	}
	if code.ExpiresAt != nil && in.PaidAt.EpochMillis > code.ExpiresAt.EpochMillis {
		return decline("code expired before payment")
	}
	if code.PrintableString != "" && !luhnValid(code.PrintableString) {
		return decline("code fails its check digit")
	}
	id := "KNB-" + code.PrintableString
	if in.StoreID != "" {
		id += "-" + in.StoreID
	}
	return &otpc.PaidOutput{Accepted: true, PaymentIntegratorTransactionID: id}, nil
}

func refundDone(c *sdk.Context, in *otpc.RefundDoneInput) (*otpc.RefundDoneOutput, error) {
	key := keyRefund + in.RefundRequestID
	if _, ok := c.KV().Get(key); !ok {
		return nil, otpc.RefuseInvalidIdentifier("refundRequestId", "no pending asynchronous refund "+in.RefundRequestID)
	}
	c.KV().Delete(key)
	if in.Success {
		return &otpc.RefundDoneOutput{Result: otpc.RefundResult{Success: &otpc.Empty{}}}, nil
	}
	return &otpc.RefundDoneOutput{Result: otpc.RefundResult{AccountOnHold: &otpc.AccountOnHold{}}}, nil
}

func associate(c *sdk.Context, in *otpc.AssociateInput) (*otpc.AssociateOutput, error) {
	cfg, err := config(c)
	if err != nil {
		return nil, err
	}
	acct, ok := cfg.Accounts[in.AccountID]
	switch {
	case !ok:
		return &otpc.AssociateOutput{Result: otpc.AssociateAccountResult{UserAuthenticationFailed: &otpc.UserAuthenticationFailed{}}}, nil
	case acct.Closed:
		return &otpc.AssociateOutput{Result: otpc.AssociateAccountResult{AccountClosed: &otpc.AccountClosed{}}}, nil
	case acct.Ineligible:
		return &otpc.AssociateOutput{Result: otpc.AssociateAccountResult{AccountNotEligible: &otpc.AccountNotEligible{}}}, nil
	}
	success := &otpc.AssociateAccountSuccess{}
	if in.Request.ProvideUserInformation {
		success.UserInformation = &otpc.UserInformation{Name: acct.Name, CountryCode: acct.CountryCode}
	}
	return &otpc.AssociateOutput{Result: otpc.AssociateAccountResult{Success: success}}, nil
}

// authenticate compares the sha256 of the entered secret with the
// account's, in constant time.
func authenticate(c *sdk.Context, in *otpc.AuthenticateInput) (*otpc.AuthenticateOutput, error) {
	cfg, err := config(c)
	if err != nil {
		return nil, err
	}
	acct, ok := cfg.Accounts[in.AccountID]
	want, herr := hex.DecodeString(acct.SecretSHA256)
	got := sha256.Sum256([]byte(in.Secret))
	if !ok || herr != nil || len(want) != len(got) || acct.Closed ||
		subtle.ConstantTimeCompare(want, got[:]) != 1 {
		c.Log(sdk.LevelInfo, "authentication failed")
		return &otpc.AuthenticateOutput{}, nil
	}
	return &otpc.AuthenticateOutput{Authenticated: true, AccountID: in.AccountID}, nil
}

func remittance(c *sdk.Context, in *otpc.RemittanceInput) (*otpc.RemittanceOutput, error) {
	c.Log(sdk.LevelInfo, "remittance statement accepted")
	return &otpc.RemittanceOutput{Result: otpc.RemittanceStatementNotificationResult{Accepted: &otpc.Empty{}}}, nil
}
