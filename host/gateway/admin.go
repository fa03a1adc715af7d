package gateway

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpcgate/otpcgate/host/admin"
	"github.com/otpcgate/otpcgate/host/deploy"
	"github.com/otpcgate/otpcgate/host/directory"
	"github.com/otpcgate/otpcgate/host/envelope"
	"github.com/otpcgate/otpcgate/host/ledger"
	"github.com/otpcgate/otpcgate/internal/db"
	"github.com/otpcgate/otpcgate/keystore"
)

// AdminServer builds the admin API over this gateway. If reg is not nil the
// gateway's collector (pipeline outcomes, key use and expiry, outbox,
// SQLite) and cfg.Calls are registered on it and it is served at /metrics.
func (g *Gateway) AdminServer(ctx context.Context, cfg admin.Config, reg *prometheus.Registry) (*admin.Server, error) {
	tokens, err := admin.OpenTokens(ctx, g.DB)
	if err != nil {
		return nil, err
	}
	var gatherer prometheus.Gatherer
	if reg != nil {
		defaults := ledger.MerchantQuotas{KV: g.Ledger.KVQuota(), LogBytesPerMinute: int64(g.Plugins.DefaultLogBudget()),
			PluginVersions:  int64(cmp.Or(cfg.MaxPluginVersions, admin.DefaultMaxPluginVersions)),
			PluginBytes:     int64(cmp.Or(cfg.MaxPluginBytes, admin.DefaultMaxPluginBytes)),
			PluginMemoryMiB: int64(g.Plugins.DefaultMemoryMiB())}
		cs := []prometheus.Collector{admin.NewCollector(admin.Sources{Pipeline: g.Pipeline, Keys: g.Keys,
			Counters: g.Counters, Ledger: g.Ledger, QuotaDefaults: defaults}), keysetCollector{g}, g.Deploy}
		if cfg.Calls != nil {
			cs = append(cs, cfg.Calls)
		}
		for _, c := range cs {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("gateway: admin metrics: %w", err)
			}
		}
		gatherer = reg
	}
	if db.EngineOf(g.DB) == db.Postgres {
		// Several hosts share this database: one limit for all of them.
		cfg.SharedLimits = true
	}
	srv, err := admin.New(cfg, admin.Deps{Backend: g.backend(), Keys: g.Keys, Ledger: g.Ledger, Tokens: tokens,
		Counters: g.Counters, Events: g.Merchants, PluginLogs: g.PluginLogs, Gatherer: gatherer, Logger: g.log})
	if err != nil {
		return nil, err
	}
	if reg != nil {
		if err := reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "otpcgate_admin_uploads_in_progress",
			Help: "Plugin uploads being received or checked (bounded by admin.max_uploads, one per merchant)."},
			func() float64 { return float64(srv.UploadsInProgress()) })); err != nil {
			return nil, fmt.Errorf("gateway: admin metrics: %w", err)
		}
	}
	return srv, nil
}

// adminBackend implements admin.Backend over the gateway: merchants here,
// plugin versions in the deploy service. Changes are serialised (the
// gateway's changes lock, shared with the deploy service).
type adminBackend struct {
	g *Gateway
	*deploy.Service
}

func (g *Gateway) backend() *adminBackend { return &adminBackend{g: g, Service: g.Deploy} }

func (b *adminBackend) Merchants(ctx context.Context) ([]admin.Merchant, error) {
	ids, err := b.g.Ledger.MerchantIDs(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]admin.Merchant, 0, len(ids))
	for _, id := range ids {
		m, err := b.Merchant(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

func (b *adminBackend) Merchant(ctx context.Context, id string) (admin.Merchant, error) {
	lm, err := b.g.Ledger.Merchant(ctx, id)
	if errors.Is(err, ledger.ErrNotFound) {
		return admin.Merchant{}, fmt.Errorf("%w: merchant %s", admin.ErrNotFound, id)
	}
	if err != nil {
		return admin.Merchant{}, err
	}
	m := admin.Merchant{ID: lm.ID, Name: lm.Name, Status: string(lm.Status), Created: lm.Created}
	if m.PIAIDs, err = b.g.Ledger.PIAIDs(ctx, id); err != nil {
		return m, err
	}
	if m.PIAIDs == nil {
		m.PIAIDs = []string{}
	}
	if m.AmountRules, err = b.g.Ledger.AmountRules(ctx, id); err != nil {
		return m, err
	}
	if len(m.AmountRules) == 0 {
		m.AmountRules = nil
	}
	u, err := b.g.Ledger.KVUsage(ctx, id)
	if err != nil {
		return m, err
	}
	own, err := b.g.Ledger.MerchantQuotas(ctx, id)
	if err != nil {
		return m, err
	}
	m.Quotas = admin.QuotasOf(own)
	q, err := b.g.Ledger.KVQuotaOf(ctx, id)
	if err != nil {
		return m, err
	}
	m.KV = &admin.KVUsage{Keys: u.Keys, Bytes: u.Bytes, QuotaKeys: q.MaxKeys, QuotaBytes: q.MaxBytes}
	in, err := b.g.Directory.Integration(ctx, id)
	switch {
	case err == nil:
		m.BasePath, m.Envelope, m.KeysetID, m.GoogleEndpoint = in.BasePath, string(in.Envelope), in.KeysetID, in.GoogleEndpoint
		if ks, err := b.g.Keys.Keyset(ctx, in.KeysetID); err == nil {
			m.Environment = string(ks.Env)
		}
	case !errors.Is(err, directory.ErrNotFound):
		return m, err
	}
	if pv, err := b.g.Directory.ActivePluginVersion(ctx, id); err == nil {
		m.ActivePlugin = pv.Version
	}
	return m, nil
}

// envelopeNames lists the envelope formats for error messages.
func envelopeNames() string {
	var names []string
	for _, sp := range envelope.Specs() {
		names = append(names, string(sp.Format))
	}
	return strings.Join(names, ", ")
}

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", admin.ErrInvalid, fmt.Sprintf(format, a...))
}

func (b *adminBackend) CreateMerchant(ctx context.Context, actor string, spec admin.MerchantSpec) (admin.Merchant, error) {
	b.g.changes.Lock()
	defer b.g.changes.Unlock()
	if spec.ID == "" || strings.ContainsAny(spec.ID, "/ ") || len(spec.PIAIDs) == 0 {
		return admin.Merchant{}, invalid("id (no slash or space) and at least one PIAID are required")
	}
	format := envelope.Format(spec.Envelope)
	sp, ok := envelope.Lookup(format)
	if !ok {
		return admin.Merchant{}, invalid("envelope is one of %s", envelopeNames())
	}
	kind := sp.KeyKind
	env := keystore.Env(spec.Environment)
	if env == "" {
		env = keystore.EnvSandbox
	}
	if env != keystore.EnvSandbox && env != keystore.EnvProduction {
		return admin.Merchant{}, invalid("environment is sandbox or production")
	}
	if _, err := b.g.Ledger.Merchant(ctx, spec.ID); err == nil {
		return admin.Merchant{}, fmt.Errorf("%w: merchant %s exists", admin.ErrConflict, spec.ID)
	}
	for _, p := range spec.PIAIDs {
		if m, err := b.g.Ledger.MerchantByPIAID(ctx, p); err == nil {
			return admin.Merchant{}, fmt.Errorf("%w: PIAID %s belongs to merchant %s", admin.ErrConflict, p, m.ID)
		}
	}
	if err := checkRules(spec.AmountRules, spec.PIAIDs); err != nil {
		return admin.Merchant{}, err
	}
	if err := checkQuotas(spec.Quotas); err != nil {
		return admin.Merchant{}, err
	}
	in := directory.Integration{MerchantID: spec.ID, BasePath: spec.BasePath, Envelope: format, KeysetID: spec.KeysetID,
		GoogleEndpoint: spec.GoogleEndpoint}
	if err := b.checkIntegration(ctx, in); err != nil {
		return admin.Merchant{}, err
	}
	if in.KeysetID == "" {
		ks, err := b.g.Keys.CreateKeyset(ctx, actor, spec.ID, kind, env)
		if err != nil {
			return admin.Merchant{}, err
		}
		in.KeysetID = ks.ID
	} else if err := b.checkKeyset(ctx, in.KeysetID, kind); err != nil {
		return admin.Merchant{}, err
	}
	name := spec.Name
	if name == "" {
		name = spec.ID
	}
	if err := b.g.Ledger.Apply(ctx, func(tx *ledger.Tx) error {
		if err := tx.CreateMerchant(ledger.Merchant{ID: spec.ID, Name: name, Status: ledger.MerchantActive}); err != nil {
			return err
		}
		for _, p := range spec.PIAIDs {
			if err := tx.AddPIAID(p, spec.ID); err != nil {
				return err
			}
		}
		if err := setQuotas(tx, spec.ID, spec.Quotas); err != nil {
			return err
		}
		return setRules(tx, spec.AmountRules)
	}); err != nil {
		return admin.Merchant{}, err
	}
	if err := b.g.Directory.PutIntegration(ctx, in); err != nil {
		return admin.Merchant{}, invalid("%v", err)
	}
	if err := b.g.Reload(ctx); err != nil {
		return admin.Merchant{}, err
	}
	return b.Merchant(ctx, spec.ID)
}

// checkRules refuses rules for PIAIDs the merchant does not have and rules
// that could never be met, before anything is written.
// checkQuotas refuses negative limits (0 takes the host's default).
func checkQuotas(q *admin.Quotas) error {
	if q != nil && (q.KVMaxKeys < 0 || q.KVMaxBytes < 0 || q.LogBytesPerMinute < 0 || q.PluginVersions < 0 ||
		q.PluginBytes < 0 || q.PluginMemoryMiB < 0) {
		return invalid("quotas must not be negative (0 takes the host's default)")
	}
	return nil
}

// setQuotas stores a merchant's own quotas when the request names them.
func setQuotas(tx *ledger.Tx, merchantID string, q *admin.Quotas) error {
	if q == nil {
		return nil
	}
	return tx.SetMerchantQuotas(merchantID, q.Ledger())
}

func checkRules(rules map[string]ledger.AmountRules, piaids []string) error {
	for p, r := range rules {
		if !slices.Contains(piaids, p) {
			return invalid("amountRules names PIAID %s, which is not this merchant's", p)
		}
		if err := r.Valid(); err != nil {
			return invalid("amountRules[%s]: %v", p, err)
		}
	}
	return nil
}

// setRules stores rules in PIAID order, so the write is deterministic.
func setRules(tx *ledger.Tx, rules map[string]ledger.AmountRules) error {
	for _, p := range slices.Sorted(maps.Keys(rules)) {
		if err := tx.SetAmountRules(p, rules[p]); err != nil {
			return err
		}
	}
	return nil
}

// checkIntegration refuses a base path used by another merchant before
// anything is written.
func (b *adminBackend) checkIntegration(ctx context.Context, in directory.Integration) error {
	if in.GoogleEndpoint != "" {
		// Notifications carry payment data: only to an https host, never
		// plain http, a file or another scheme.
		u, err := url.Parse(in.GoogleEndpoint)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
			return invalid("googleEndpoint must be an https URL without credentials, got %q", in.GoogleEndpoint)
		}
	}
	ins, err := b.g.Directory.Integrations(ctx)
	if err != nil {
		return err
	}
	for _, o := range ins {
		if o.MerchantID != in.MerchantID && strings.TrimRight(o.BasePath, "/") == strings.TrimRight(in.BasePath, "/") {
			return fmt.Errorf("%w: base path %q is merchant %s's", admin.ErrConflict, in.BasePath, o.MerchantID)
		}
	}
	return nil
}

func (b *adminBackend) checkKeyset(ctx context.Context, id string, kind keystore.Kind) error {
	ks, err := b.g.Keys.Keyset(ctx, id)
	if err != nil {
		return err
	}
	if ks.Kind != kind {
		return invalid("keyset %s holds %s keys, the envelope needs %s", id, ks.Kind, kind)
	}
	return nil
}

func (b *adminBackend) UpdateMerchant(ctx context.Context, id string, u admin.MerchantUpdate) (admin.Merchant, error) {
	b.g.changes.Lock()
	defer b.g.changes.Unlock()
	if u.Name != nil {
		return admin.Merchant{}, invalid("renaming is not supported by the ledger; the name is set at creation")
	}
	in, err := b.g.Directory.Integration(ctx, id)
	if err != nil {
		return admin.Merchant{}, err
	}
	if u.BasePath != nil {
		in.BasePath = *u.BasePath
	}
	if u.Envelope != nil {
		in.Envelope = envelope.Format(*u.Envelope)
	}
	if u.KeysetID != nil {
		in.KeysetID = *u.KeysetID
	}
	if u.GoogleEndpoint != nil {
		in.GoogleEndpoint = *u.GoogleEndpoint
	}
	sp, ok := envelope.Lookup(in.Envelope)
	if !ok {
		return admin.Merchant{}, invalid("envelope is one of %s", envelopeNames())
	}
	if err := b.checkKeyset(ctx, in.KeysetID, sp.KeyKind); err != nil {
		return admin.Merchant{}, err
	}
	if err := b.checkIntegration(ctx, in); err != nil {
		return admin.Merchant{}, err
	}
	for _, p := range u.AddPIAIDs {
		if m, err := b.g.Ledger.MerchantByPIAID(ctx, p); err == nil && m.ID != id {
			return admin.Merchant{}, fmt.Errorf("%w: PIAID %s belongs to merchant %s", admin.ErrConflict, p, m.ID)
		}
	}
	have, err := b.g.Ledger.PIAIDs(ctx, id)
	if err != nil {
		return admin.Merchant{}, err
	}
	if err := checkRules(u.AmountRules, append(slices.Clone(have), u.AddPIAIDs...)); err != nil {
		return admin.Merchant{}, err
	}
	if err := checkQuotas(u.Quotas); err != nil {
		return admin.Merchant{}, err
	}
	if err := b.g.Directory.PutIntegration(ctx, in); err != nil {
		return admin.Merchant{}, invalid("%v", err)
	}
	if err := b.g.Ledger.Apply(ctx, func(tx *ledger.Tx) error {
		for _, p := range u.AddPIAIDs {
			if !slices.Contains(have, p) {
				if err := tx.AddPIAID(p, id); err != nil {
					return err
				}
			}
		}
		if err := setQuotas(tx, id, u.Quotas); err != nil {
			return err
		}
		return setRules(tx, u.AmountRules)
	}); err != nil {
		return admin.Merchant{}, err
	}
	if err := b.g.Reload(ctx); err != nil {
		return admin.Merchant{}, err
	}
	return b.Merchant(ctx, id)
}

func (b *adminBackend) SetMerchantDisabled(ctx context.Context, id string, disabled bool) (admin.Merchant, error) {
	b.g.changes.Lock()
	defer b.g.changes.Unlock()
	st := ledger.MerchantActive
	if disabled {
		st = ledger.MerchantDisabled
	}
	if err := b.g.Ledger.Apply(ctx, func(tx *ledger.Tx) error { return tx.SetMerchantStatus(id, st) }); err != nil {
		return admin.Merchant{}, err
	}
	if err := b.g.Reload(ctx); err != nil {
		return admin.Merchant{}, err
	}
	return b.Merchant(ctx, id)
}
