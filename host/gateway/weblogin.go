package gateway

import (
	"context"
	"fmt"

	"github.com/otpcgate/otpcgate/host/weblogin"
	"github.com/otpcgate/otpcgate/keystore"
)

// mountWebLogin serves every integration's web-redirect login page at
// {base path}{cfg.Path} on the Google-facing listener. Merchants are
// looked up per request in the snapshot Reload publishes, so integrations
// added or disabled by a Reload are served accordingly without mounting
// again. Call it once, after the server is built and
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

// LoginMerchant implements weblogin.Directory from the snapshot the last
// load/Reload published: no database read per request.
func (d webLoginDirectory) LoginMerchant(ctx context.Context, basePath string) (*weblogin.Merchant, error) {
	dm, ok := d.g.dir.d.Load().ByBasePath(basePath)
	if !ok {
		return nil, weblogin.ErrUnknownMerchant
	}
	pm, ok := d.g.dir.Merchant(dm.ID)
	if !ok {
		return nil, weblogin.ErrUnknownMerchant
	}
	name := dm.Name
	if name == "" {
		name = dm.ID
	}
	keys, keysetID := d.g.Keys, pm.KeysetID
	return &weblogin.Merchant{
		ID: pm.ID, Name: name, Codec: pm.Codec, PIAIDs: dm.PIAIDs, PluginID: pm.PluginID, Disabled: pm.Disabled,
		Keyset: func(ctx context.Context) (*keystore.Keyset, error) { return keys.Keyset(ctx, keysetID) },
	}, nil
}
