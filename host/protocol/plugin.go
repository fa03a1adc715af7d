package protocol

import (
	"context"
	"fmt"
	"time"

	"github.com/otpcgate/otpcgate/host/ledger"
	"github.com/otpcgate/otpcgate/host/runtime"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// CallPlugin runs op on a merchant's plugin with in as the input frame,
// decodes and validates the output frame into out, and returns the call's
// KV change set for the caller to commit. KV reads see the ledger's
// committed state of namespace (the merchant id); now is the request's time.
func CallPlugin(ctx context.Context, plugins Plugins, l *ledger.Ledger, pluginID, namespace string,
	now time.Time, op otpc.Op, in, out otpc.Message) (runtime.ChangeSet, error) {
	raw, cs, err := plugins.Call(ctx, pluginID, op, in.AppendJSON(nil), runtime.CallEnv{
		Namespace: namespace,
		KV:        KVReader(l),
		Now:       now,
	})
	if err != nil {
		return cs, err
	}
	if err := out.UnmarshalJSON(raw); err != nil {
		return cs, fmt.Errorf("protocol: plugin %s returned an unreadable %s result: %w", pluginID, op, err)
	}
	if err := out.Validate(); err != nil {
		return cs, fmt.Errorf("protocol: plugin %s returned an invalid %s result: %w", pluginID, op, err)
	}
	return cs, nil
}

// KVReader lets plugins read the ledger's committed KV.
func KVReader(l *ledger.Ledger) runtime.KVReader { return kvReader{l} }

type kvReader struct{ l *ledger.Ledger }

func (k kvReader) Get(ctx context.Context, ns, key string) ([]byte, bool, error) {
	return k.l.KVGet(ctx, ns, key)
}

// ApplyKV commits a plugin call's change set in tx.
func ApplyKV(tx *ledger.Tx, cs runtime.ChangeSet, namespace string) error {
	if cs.Empty() {
		return nil
	}
	changes := make([]ledger.KVChange, len(cs.Changes))
	for i, ch := range cs.Changes {
		changes[i] = ledger.KVChange{Key: ch.Key, Value: ch.Value, Delete: ch.Delete}
	}
	return tx.ApplyKV(namespace, changes)
}

// CodeInfo is what a plugin is told about a reference number.
func CodeInfo(code ledger.Code) otpc.CodeInfo {
	ci := otpc.CodeInfo{
		GenerateRequestID: code.TransactionID,
		AccountID:         code.AccountID,
		Amount:            otpc.Amount{AmountMicros: code.AmountMicros, CurrencyCode: code.Currency},
		PrintableString:   code.Printable,
		BarcodeContents:   code.Barcode,
		State:             pluginState(code.State),
		PaidMicros:        code.PaidMicros,
		RefundedMicros:    code.RefundedMicros,
		CreatedAt:         timestamp(code.Created),
		ExpiresAt:         timestamp(code.ExpiresAt),
		PaidAt:            timestamp(code.PaidAt),
	}
	return ci
}

func timestamp(t time.Time) *otpc.Timestamp {
	if t.IsZero() {
		return nil
	}
	ts := otpc.TimestampOf(t)
	return &ts
}

// pluginState maps the ledger's code states to the sdk's: a partially
// refunded code is still "paid" to a plugin (RefundedMicros says how much
// went back), so plugins need not know the ledger's finer state.
func pluginState(s ledger.CodeState) string {
	if s == ledger.CodePartiallyRefunded {
		return otpc.CodeStatePaid
	}
	return string(s)
}
