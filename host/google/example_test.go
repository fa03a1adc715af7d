package google_test

import (
	"context"
	"fmt"
	"time"

	"github.com/otpcgate/otpcgate/host/envelope"
	"github.com/otpcgate/otpcgate/host/google"
	"github.com/otpcgate/otpcgate/host/ledger"
	"github.com/otpcgate/otpcgate/keystore"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// Example shows how a gateway wires the outbox: a Resolver from its
// registry, a Worker running beside the server, and a notification
// enqueued in the same transaction as the ledger change that causes it.
func Example() {
	ctx := context.Background()
	var (
		l     *ledger.Ledger  // the gateway's ledger
		store *keystore.Store // the gateway's keystore
	)
	if l == nil || store == nil {
		fmt.Println("(needs a running gateway)")
		return
	}
	client, err := google.NewClient(google.Config{}) // TLS 1.2+, system roots
	if err != nil {
		panic(err)
	}
	resolver := google.ResolverFunc(func(ctx context.Context, merchantID, piaid string) (google.Route, error) {
		// Look the merchant up in the registry: its keyset and environment.
		endpoint, err := google.Endpoint(keystore.EnvSandbox)
		if err != nil {
			return google.Route{}, err
		}
		codec, err := envelope.New(envelope.FormatPGP, envelope.Config{})
		if err != nil {
			return google.Route{}, err
		}
		return google.Route{Endpoint: endpoint, PIAID: piaid, Codec: codec,
			Keyset: func(ctx context.Context) (*keystore.Keyset, error) { return store.Keyset(ctx, "keyset-id") }}, nil
	})
	w, err := google.NewWorker(google.WorkerConfig{}, l, client, resolver)
	if err != nil {
		panic(err)
	}
	go w.Run(ctx)

	// The code was paid at the store: mark it paid and queue the
	// notification atomically, then wake the worker.
	item, err := google.OutboxItem(google.Notification{
		MerchantID: "demo", PIAID: "DEMO_PIAID", Method: otpc.MethodReferenceNumberPaidNotification,
		OrderingKey: "txn-1", // the transaction: its refund results queue behind it
		Request: &otpc.ReferenceNumberPaidNotificationRequest{
			PaymentIntegratorTransactionID: "pay-1", GenerateReferenceNumberRequestID: "txn-1",
			PaymentTimestamp: otpc.TimestampOf(time.Now())},
	})
	if err != nil {
		panic(err)
	}
	if err := l.Apply(ctx, func(tx *ledger.Tx) error {
		// ... the ledger change (code → paid) goes here ...
		_, err := tx.Enqueue(item)
		return err
	}); err != nil {
		panic(err)
	}
	w.Notify()
	// Output: (needs a running gateway)
}
