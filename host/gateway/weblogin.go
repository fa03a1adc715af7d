package gateway

import (
	"context"
	"fmt"
	"sort"

	"github.com/otpcgate/otpcgate/host/server"
	"github.com/otpcgate/otpcgate/host/weblogin"
	"github.com/otpcgate/otpcgate/keystore"
)

// mountWebLogin serves every integration's web-redirect login page at
// {base path}{cfg.Path} on the Google-facing listener. Merchants are
// looked up per request in the registry and the table Reload publishes,
// so integrations added or disabled by a Reload are served accordingly
// without mounting again. Call it once, after the server is built and
// before it serves.
func (g *Gateway) mountWebLogin(cfg weblogin.Config) error {
	if cfg.Logger == nil {
		cfg.Logger = g.log
	}
	svc, err := weblogin.New(cfg, g.Ledger, g.admitted)
	if err != nil {
		return fmt.Errorf("gateway: web login: %w", err)
	}
	g.Server.Echo().Use(svc.Middleware(webLoginDirectory{g}))
	return nil
}

// webLoginDirectory resolves login-page base paths to merchants.
type webLoginDirectory struct{ g *Gateway }

// LoginMerchant implements weblogin.Directory.
func (d webLoginDirectory) LoginMerchant(ctx context.Context, basePath string) (*weblogin.Merchant, error) {
	ins, err := d.g.Directory.Integrations(ctx)
	if err != nil {
		return nil, err
	}
	for _, in := range ins {
		base, err := server.NormalizeBasePath(in.BasePath)
		if err != nil || base != basePath {
			continue
		}
		// Only merchants the last load/Reload published are served.
		pm, ok := d.g.dir.Merchant(in.MerchantID)
		if !ok {
			break
		}
		piaids := make([]string, 0, len(pm.PIAIDs))
		for p := range pm.PIAIDs {
			piaids = append(piaids, p)
		}
		sort.Strings(piaids)
		name := pm.ID
		if lm, err := d.g.Ledger.Merchant(ctx, pm.ID); err == nil && lm.Name != "" {
			name = lm.Name
		}
		keys, keysetID := d.g.Keys, pm.KeysetID
		return &weblogin.Merchant{
			ID: pm.ID, Name: name, Codec: pm.Codec, PIAIDs: piaids, PluginID: pm.PluginID, Disabled: pm.Disabled,
			Keyset: func(ctx context.Context) (*keystore.Keyset, error) { return keys.Keyset(ctx, keysetID) },
		}, nil
	}
	return nil, weblogin.ErrUnknownMerchant
}
