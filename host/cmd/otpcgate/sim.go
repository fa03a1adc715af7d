package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/otpcgate/otpcgate/host/envelope"
	"github.com/otpcgate/otpcgate/host/gateway"
	"github.com/otpcgate/otpcgate/host/sim"
	"github.com/otpcgate/otpcgate/internal/db"
	"github.com/otpcgate/otpcgate/keystore"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

func newSimCmd(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Play Google against a gateway",
	}
	var dataDir string
	smoke := &cobra.Command{
		Use:   "smoke",
		Short: "Echo, generate and cancel a code on every demo merchant of an otpcgate dev installation",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return simSmoke(cmd.Context(), e, dataDir)
		},
	}
	smoke.Flags().StringVar(&dataDir, "data-dir", filepath.Join("data", "dev"), "data directory of otpcgate dev")
	cmd.AddCommand(smoke)
	return cmd
}

// devTargets opens the dev installation's keys (read-only use) and returns
// Google's view of each demo merchant.
func devTargets(ctx context.Context, info *gateway.DevInfo) (map[string]*sim.Target, *sim.Client, func(), error) {
	kek, err := keystore.ReadKEKFile(info.KEKFile)
	if err != nil {
		return nil, nil, nil, err
	}
	d, err := db.Open(ctx, info.DBPath)
	if err != nil {
		return nil, nil, nil, err
	}
	store, err := keystore.Open(ctx, d, kek)
	if err != nil {
		d.Close()
		return nil, nil, nil, err
	}
	pem, err := os.ReadFile(info.CertFile)
	if err != nil {
		d.Close()
		return nil, nil, nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	client := &sim.Client{HTTP: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12},
	}}}
	targets := map[string]*sim.Target{}
	for _, m := range info.Merchants {
		codec, err := envelope.New(m.Envelope, envelope.Config{})
		if err != nil {
			d.Close()
			return nil, nil, nil, err
		}
		ksID := m.SimKeysetID
		targets[m.ID] = &sim.Target{BaseURL: m.BaseURL, PIAID: m.PIAID, Codec: codec,
			Keyset: func(ctx context.Context) (*keystore.Keyset, error) { return store.Keyset(ctx, ksID) }}
	}
	return targets, client, func() { d.Close() }, nil
}

func simSmoke(ctx context.Context, e env, dataDir string) error {
	info, err := gateway.ReadDevInfo(dataDir)
	if err != nil {
		return fmt.Errorf("%w (start otpcgate dev first)", err)
	}
	targets, client, closeFn, err := devTargets(ctx, info)
	if err != nil {
		return err
	}
	defer closeFn()
	failed := 0
	check := func(merchant, step string, res *sim.Result, err error, ok bool) {
		status := "PASS"
		detail := ""
		switch {
		case err != nil:
			status, detail = "FAIL", err.Error()
		case !ok:
			status, detail = "FAIL", fmt.Sprintf("HTTP %d %s", res.Status, res.Member())
		}
		if status == "FAIL" {
			failed++
		}
		fmt.Fprintf(e.stdout, "%-10s %-26s %s %s\n", merchant, step, status, detail)
	}
	for _, m := range info.Merchants {
		tg := targets[m.ID]
		var echo otpc.EchoResponse
		res, err := client.Call(ctx, tg, otpc.MethodEcho, &otpc.EchoRequest{RequestHeader: client.Header(tg), ClientMessage: "smoke"}, &echo)
		check(m.ID, "echo", res, err, err == nil && res.Status == 200 && echo.ClientMessage == "smoke")

		gen := &otpc.GenerateReferenceNumberRequest{RequestHeader: client.Header(tg),
			GooglePaymentToken:     otpc.GooglePaymentToken{IssuerID: otpc.IssuerID{Value: m.DemoIssuer}, Token: m.DemoToken},
			TransactionDescription: "Google - Smoke test", Amount: otpc.Amount{AmountMicros: 1500_000000, CurrencyCode: "JPY"}}
		var genResp otpc.GenerateReferenceNumberResponse
		res, err = client.Call(ctx, tg, otpc.MethodGenerateReferenceNumber, gen, &genResp)
		check(m.ID, "generateReferenceNumber", res, err, err == nil && res.Status == 200 && genResp.Result.Success != nil)

		var cancel otpc.CancelReferenceNumberResponse
		res, err = client.Call(ctx, tg, otpc.MethodCancelReferenceNumber, &otpc.CancelReferenceNumberRequest{
			RequestHeader: client.Header(tg), GenerateReferenceNumberRequestID: gen.RequestHeader.RequestID}, &cancel)
		check(m.ID, "cancelReferenceNumber", res, err, err == nil && res.Status == 200 && cancel.Result.Success != nil)
	}
	if failed > 0 {
		return errors.New(fmt.Sprint(failed, " checks failed"))
	}
	fmt.Fprintln(e.stdout, "all checks passed")
	return nil
}
