// Package gateway assembles otpcgate from its parts: the SQLite file, the
// keystore, the ledger, the plugin runtime, the request pipeline and the
// Google-facing TLS server. The otpcgate binary and the end-to-end tests
// both start a gateway through it.
package gateway

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpcgate/otpcgate/host/deploy"
	"github.com/otpcgate/otpcgate/host/directory"
	"github.com/otpcgate/otpcgate/host/envelope"
	"github.com/otpcgate/otpcgate/host/google"
	"github.com/otpcgate/otpcgate/host/ledger"
	"github.com/otpcgate/otpcgate/host/merchant"
	"github.com/otpcgate/otpcgate/host/plugincall"
	"github.com/otpcgate/otpcgate/host/pluginlog"
	"github.com/otpcgate/otpcgate/host/protocol"
	"github.com/otpcgate/otpcgate/host/runtime"
	"github.com/otpcgate/otpcgate/host/server"
	"github.com/otpcgate/otpcgate/host/weblogin"
	"github.com/otpcgate/otpcgate/internal/db"
	"github.com/otpcgate/otpcgate/keystore"
)

// Options configure a gateway.
type Options struct {
	// Database holds keys, plugins and all state: the path of a SQLite
	// file, or a postgres:// URL shared by several hosts (see db.Open).
	Database string
	// KEK unwraps the private keys stored in the database.
	KEK *keystore.KEK
	// PluginCacheDir holds compiled plugin code; "" disables the disk cache.
	PluginCacheDir string
	// Server configures the Google-facing listener; Routes are filled from
	// the directory.
	Server server.Config
	// Limiter sizes the admission queue around the CPU-heavy work.
	Limiter server.LimiterConfig
	// Admission, if set, is used instead of a limiter built from Limiter
	// (the process may share one with its metrics).
	Admission *server.Limiter
	// Metrics, if set, receives the server's Prometheus metrics.
	Metrics prometheus.Registerer
	// SyncInterval is how often the host looks for changes other hosts
	// sharing the database made (keys, merchants, plugin activations);
	// a change is in force everywhere within about this long. Zero means
	// DefaultSyncInterval.
	SyncInterval time.Duration
	// CommitWindow is ledger.Options.GroupWindow: how long the writer
	// waits for the commits of requests still being prepared. Zero means
	// DefaultCommitWindow; negative means no wait.
	CommitWindow time.Duration
	// Envelope tunes both envelope codecs.
	Envelope envelope.Config
	// Protocol tunes the pipeline; its Limiter and Counters are set here.
	Protocol protocol.Config
	// Runtime tunes the plugin runtime; CacheDir is set from PluginCacheDir.
	Runtime runtime.Options
	// KVQuota bounds each merchant's plugin KV data; zero fields mean
	// ledger.DefaultKVQuota's.
	KVQuota ledger.KVQuota
	// PluginLogs bounds each merchant's buffer of recent plugin log lines.
	PluginLogs pluginlog.Config
	// Calls tunes the plugin-call service (its circuit breaker); its
	// Logger is set here.
	Calls plugincall.Config
	// GoogleTransport carries calls to Google; nil means
	// google.NewTransport(nil) (system roots, TLS 1.2+, hostname checks).
	GoogleTransport http.RoundTripper
	// Worker tunes the outbox worker; Outbox, Client, Resolver and Logger
	// are set here.
	Worker google.WorkerConfig
	// WebLogin configures the web-redirect login pages (spec §8) served
	// at {base path}{WebLogin.Path} for every merchant.
	WebLogin weblogin.Config
	// Extra, if set, is called once every part is open and returns more
	// handlers for the Google-facing listener, by path prefix. `otpcgate
	// dev` mounts the simulated Google this way (at devenv.SimGooglePath);
	// serve mounts nothing, so the production assembly never depends on
	// the simulator.
	Extra func(g *Gateway) (map[string]http.Handler, error)
	// Logger receives everything; nil discards.
	Logger *slog.Logger
}

// DefaultCommitWindow lets the ledger's writer wait up to 200µs for the
// commits of requests whose plugin call or seal is running, so one fsync
// covers more requests under load; a lone commit is never delayed.
// Measured with BenchmarkPipeline on 2 cores at concurrency 8: 1.7
// requests per fsync, against 1.15 with no window and 1.35 with the
// earlier rule (wait only after a batch of several); requests/s the same
// within the noise.
const DefaultCommitWindow = 200 * time.Microsecond

// DefaultSyncInterval: see Options.SyncInterval.
const DefaultSyncInterval = time.Second

// Gateway is a running otpcgate host.
type Gateway struct {
	DB        *sql.DB
	Keys      *keystore.Store
	Ledger    *ledger.Ledger
	Directory *directory.Store
	Plugins   *runtime.Manager
	Pipeline  *protocol.Pipeline
	// Calls is the one plugin-call service over Plugins: the pipeline,
	// merchant events and the login page call plugins through it.
	Calls    *plugincall.Service
	Server   *server.Server
	Counters *keystore.Counters
	// Google calls Google-hosted methods; Outbox delivers notifications.
	Google *google.Client
	Outbox *google.Worker
	// PluginLogs keeps each merchant's recent plugin log lines and failed
	// calls for the merchant to read.
	PluginLogs *pluginlog.Buffer
	// Merchants handles the events merchants report (payments at stores,
	// asynchronous refund results, statement acceptance).
	Merchants *merchant.Service
	// Deploy keeps each merchant's plugin versions in service and carries
	// out the admin API's plugin operations.
	Deploy *deploy.Service

	log    *slog.Logger
	codecs map[envelope.Format]envelope.Codec
	dir    snapshot
	// changes serialises the admin API's changes (merchants here, plugins
	// in Deploy).
	changes sync.Mutex
	// admitted is Calls behind the admission limiter, for callers that hold
	// no slot (merchant events, the login page).
	admitted *plugincall.Admitted
	// syncInterval: Options.SyncInterval; auditSeen: the audit head the
	// directory was last loaded at (see watchDirectory).
	syncInterval time.Duration
	auditSeen    atomic.Int64
	reloadMu     sync.Mutex
	// quarantinedKeysets: merchant id → keyset id that failed to load at
	// start (see Seed); cleared once it loads.
	quarantinedKeysets sync.Map
}

// snapshot is what Reload publishes: the directory's snapshot and the
// pipeline's merchant table built from it, each swapped atomically.
type snapshot struct {
	p atomic.Pointer[map[string]*protocol.Merchant]
	d directory.Published
}

func (d *snapshot) Merchant(id string) (*protocol.Merchant, bool) {
	m := d.p.Load()
	if m == nil {
		return nil, false
	}
	v, ok := (*m)[id]
	return v, ok
}

// Open opens the database and every component, loads and warms each
// merchant's active plugin and builds the server. Nothing listens yet.
func Open(ctx context.Context, opts Options) (_ *Gateway, err error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &Gateway{log: log, Counters: &keystore.Counters{}, codecs: map[envelope.Format]envelope.Codec{},
		syncInterval: cmp.Or(opts.SyncInterval, DefaultSyncInterval)}
	defer func() {
		if err != nil {
			g.Close()
		}
	}()
	if g.DB, err = db.Open(ctx, opts.Database); err != nil {
		return nil, err
	}
	log.Info("database open", "engine", db.EngineOf(g.DB), "at", db.Describe(opts.Database))
	if g.Keys, err = keystore.Open(ctx, g.DB, opts.KEK); err != nil {
		return nil, err
	}
	g.Keys.SetLogger(log)
	window := opts.CommitWindow
	switch {
	case window == 0:
		window = DefaultCommitWindow
	case window < 0:
		window = 0
	}
	if g.Ledger, err = ledger.New(ctx, g.DB, ledger.Options{Logger: log, GroupWindow: window, KVQuota: opts.KVQuota}); err != nil {
		return nil, err
	}
	if g.Directory, err = directory.Open(ctx, g.DB); err != nil {
		return nil, err
	}
	ropts := opts.Runtime
	ropts.Logger = log
	// Each merchant can read its own plugin's recent lines (admin API).
	g.PluginLogs = pluginlog.New(opts.PluginLogs)
	ropts.LogSink = g.PluginLogs.Add
	if opts.PluginCacheDir != "" {
		// Cache entries are authenticated with a key derived from the KEK,
		// so a tampered cache directory never runs.
		ropts.CacheDir = filepath.Clean(opts.PluginCacheDir)
		ropts.CacheKey = opts.KEK.Derive("plugin-cache")
	}
	if g.Plugins, err = runtime.New(ropts); err != nil {
		return nil, err
	}
	for _, sp := range envelope.Specs() {
		if g.codecs[sp.Format], err = envelope.New(sp.Format, opts.Envelope); err != nil {
			return nil, err
		}
	}
	pcfg := opts.Protocol
	pcfg.Limiter = opts.Admission
	if pcfg.Limiter == nil {
		pcfg.Limiter = server.NewLimiter(opts.Limiter)
	}
	pcfg.Counters = g.Counters
	pcfg.Logger = log
	ccfg := opts.Calls
	ccfg.Logger = log
	ccfg.ShadowAdmission = pcfg.Limiter
	g.Calls = plugincall.New(ccfg, g.Plugins, g.Ledger)
	g.Pipeline = protocol.New(pcfg, &g.dir, g.Keys, g.Ledger, g.Calls)
	// Recorded plugin calls are sealed with a key of their own.
	if g.Deploy, err = deploy.New(deploy.Config{RecordingKey: opts.KEK.Derive("plugin recordings v1"), Logger: log},
		deploy.Deps{Directory: g.Directory, Ledger: g.Ledger, Runtime: g.Plugins, Calls: g.Calls, Admission: pcfg.Limiter,
			Reload: g.Reload, ReloadLock: &g.reloadMu, Changes: &g.changes}); err != nil {
		return nil, err
	}
	if g.Google, err = google.NewClient(google.Config{Transport: opts.GoogleTransport, Logger: log}); err != nil {
		return nil, err
	}
	wcfg := opts.Worker
	wcfg.Logger = log
	if g.Outbox, err = google.NewWorker(wcfg, g.Ledger, g.Google, g); err != nil {
		return nil, err
	}
	// Merchant events and the login page call plugins without a slot of
	// their own: they take one from the same fair limiter as the pipeline.
	g.admitted = g.Calls.WithAdmission(pcfg.Limiter)
	g.Merchants = merchant.New(merchant.Config{Google: g.Google, Resolver: g, Notify: g.Outbox.Notify, Logger: log},
		g.Ledger, g.admitted, &g.dir.d)
	// The head is read before the load, so a change committed in between
	// is loaded again at the first sync rather than missed.
	head, err := g.Ledger.AuditHead(ctx)
	if err != nil {
		return nil, err
	}
	g.auditSeen.Store(head)
	routes, err := g.load(ctx)
	if err != nil {
		return nil, err
	}
	scfg := opts.Server
	scfg.Routes = routes
	scfg.MediaTypes = envelope.MediaTypes()
	if g.Server, err = server.New(scfg, g.Pipeline, server.Options{Logger: log, Ready: g.ready, Metrics: opts.Metrics}); err != nil {
		return nil, err
	}
	wl := opts.WebLogin
	if wl.Secret == nil {
		// One CSRF key for every host on this database: a form served by
		// one host may be posted to another behind the load balancer.
		wl.Secret = opts.KEK.Derive("weblogin csrf v1")
	}
	if err := g.mountWebLogin(wl); err != nil {
		return nil, err
	}
	if opts.Extra != nil {
		extra, err := opts.Extra(g)
		if err != nil {
			return nil, err
		}
		for prefix, h := range extra {
			g.Server.Echo().Any(prefix+"/*", echo.WrapHandler(h))
		}
	}
	return g, nil
}

// load reads the integrations, loads plugins that are not loaded yet and
// publishes a new merchant table. It returns the route table.
func (g *Gateway) load(ctx context.Context) ([]server.Route, error) {
	snap, err := g.Directory.Load(ctx, g.Ledger)
	if err != nil {
		return nil, err
	}
	table := make(map[string]*protocol.Merchant, len(snap.Merchants()))
	routes := make([]server.Route, 0, len(snap.Merchants()))
	quotas, err := g.Ledger.AllMerchantQuotas(ctx)
	if err != nil {
		return nil, err
	}
	shadows, err := g.Directory.Shadows(ctx)
	if err != nil {
		return nil, err
	}
	recording, err := g.Directory.RecordingSettings(ctx)
	if err != nil {
		return nil, err
	}
	canaries, err := g.Directory.Canaries(ctx)
	if err != nil {
		return nil, err
	}
	for _, m := range snap.Merchants() {
		in := m.Integration
		g.Plugins.SetLogBudget(in.MerchantID, int(quotas[in.MerchantID].LogBytesPerMinute))
		codec, ok := g.codecs[in.Envelope]
		if !ok {
			return nil, fmt.Errorf("gateway: integration %s: unknown envelope %q", in.MerchantID, in.Envelope)
		}
		if err := g.Deploy.EnsureActive(ctx, in.MerchantID); err != nil {
			return nil, err
		}
		st, rec := recording[in.MerchantID]
		g.Deploy.ApplyCandidates(ctx, in.MerchantID, shadows[in.MerchantID], canaries[in.MerchantID], st, rec)
		rules, err := g.Ledger.AmountRules(ctx, in.MerchantID)
		if err != nil {
			return nil, err
		}
		pm := &protocol.Merchant{ID: in.MerchantID, PIAIDs: map[string]bool{}, KeysetID: in.KeysetID,
			Codec: codec, PluginID: in.MerchantID, Disabled: m.Disabled, Rules: rules}
		for _, p := range m.PIAIDs {
			pm.PIAIDs[p] = true
		}
		table[in.MerchantID] = pm
		routes = append(routes, server.Route{BasePath: in.BasePath, MerchantID: in.MerchantID})
	}
	g.dir.d.Store(snap)
	g.dir.p.Store(&table)
	return routes, nil
}

// SeedMerchant is one merchant as the configuration file describes it.
type SeedMerchant struct {
	Integration directory.Integration
	PIAIDs      []string
	// AmountRules by PIAID; PIAIDs not named keep theirs.
	AmountRules map[string]ledger.AmountRules
	// Quotas are the merchant's own limits; the zero value keeps what the
	// database holds.
	Quotas ledger.MerchantQuotas
}

// Seed makes sure the merchants, their PIAIDs, amount rules and
// integrations exist as the configuration describes them (the database
// stays the source of truth for everything else). It is all or nothing:
// every merchant is checked first — its keyset exists, its envelope is
// known, its base path is valid and not another merchant's, its PIAIDs are
// free or already its own — and only then is anything written, the ledger
// part in one transaction. A configuration that fails a check leaves the
// database as it was. Call Reload afterwards.
func (g *Gateway) Seed(ctx context.Context, ms []SeedMerchant) error {
	existing, err := g.Directory.Integrations(ctx)
	if err != nil {
		return err
	}
	basePaths := map[string]string{} // normalized base path -> merchant
	for _, in := range existing {
		basePaths[in.BasePath] = in.MerchantID
	}
	piaidOwner := map[string]string{}
	for i := range ms {
		in := &ms[i].Integration
		id := in.MerchantID
		if _, ok := g.codecs[in.Envelope]; !ok {
			return fmt.Errorf("gateway: merchant %s: unknown envelope %q", id, in.Envelope)
		}
		switch _, err := g.Keys.Keyset(ctx, in.KeysetID); {
		case errors.Is(err, keystore.ErrNotFound):
			return fmt.Errorf("gateway: merchant %s: keyset %s: %w\n  next: keysets are created with their merchant through the admin API "+
				"(otpcgate merchants create, without a keyset); name an existing one (otpcgate keys list --merchant ID) or create the merchant there", id, in.KeysetID, err)
		case err != nil:
			// The keyset exists but does not load (a damaged key): that
			// merchant answers 503 until it is repaired; the host and every
			// other merchant start.
			g.log.Error("keyset quarantined: it does not load, the merchant answers 503", "merchant", id, "keyset", in.KeysetID, "err", err)
			g.quarantinedKeysets.Store(id, in.KeysetID)
		}
		base, err := server.NormalizeBasePath(in.BasePath)
		if err != nil {
			return fmt.Errorf("gateway: merchant %s: base path: %w", id, err)
		}
		in.BasePath = base
		if other, ok := basePaths[base]; ok && other != id {
			return fmt.Errorf("gateway: merchant %s: base path %s is merchant %s's", id, base, other)
		}
		basePaths[base] = id
		for _, p := range ms[i].PIAIDs {
			if other, ok := piaidOwner[p]; ok && other != id {
				return fmt.Errorf("gateway: PIAID %s is configured for both %s and %s", p, other, id)
			}
			piaidOwner[p] = id
			m, err := g.Ledger.MerchantByPIAID(ctx, p)
			switch {
			case err == nil && m.ID != id:
				return fmt.Errorf("gateway: merchant %s: PIAID %s belongs to merchant %s", id, p, m.ID)
			case err != nil && !errors.Is(err, ledger.ErrUnknownPIAID):
				return err
			}
		}
	}
	err = g.Ledger.Apply(ctx, func(tx *ledger.Tx) error {
		for _, sm := range ms {
			id := sm.Integration.MerchantID
			if _, err := g.Ledger.Merchant(ctx, id); errors.Is(err, ledger.ErrNotFound) {
				if err := tx.CreateMerchant(ledger.Merchant{ID: id, Name: id, Status: ledger.MerchantActive}); err != nil {
					return fmt.Errorf("gateway: seed merchant %s: %w", id, err)
				}
				if err := tx.Audit(ledger.AuditEntry{Actor: "config", Action: "merchant.seed", Subject: id}); err != nil {
					return err
				}
			} else if err != nil {
				return err
			}
			have, err := g.Ledger.PIAIDs(ctx, id)
			if err != nil {
				return err
			}
			for _, p := range sm.PIAIDs {
				if slices.Contains(have, p) {
					continue
				}
				if err := tx.AddPIAID(p, id); err != nil {
					return fmt.Errorf("gateway: seed PIAID %s: %w", p, err)
				}
			}
			for _, p := range slices.Sorted(maps.Keys(sm.AmountRules)) {
				if err := tx.SetAmountRules(p, sm.AmountRules[p]); err != nil {
					return fmt.Errorf("gateway: seed amount rules of %s: %w", p, err)
				}
			}
			if sm.Quotas != (ledger.MerchantQuotas{}) {
				if err := tx.SetMerchantQuotas(id, sm.Quotas); err != nil {
					return fmt.Errorf("gateway: seed quotas of %s: %w", id, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, sm := range ms {
		if err := g.Directory.PutIntegration(ctx, sm.Integration); err != nil {
			return err
		}
	}
	return nil
}

// Reload picks up integration and plugin changes made in the database.
// Reloads run one at a time: the admin API's and the directory watcher's
// (another host's change) may otherwise load the same plugin twice or
// publish an older snapshot after a newer one.
func (g *Gateway) Reload(ctx context.Context) error {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	routes, err := g.load(ctx)
	if err != nil {
		return err
	}
	return g.Server.SetRoutes(routes)
}

// ready backs /readyz: the database answers and every merchant resolves.
func (g *Gateway) ready(ctx context.Context) error {
	return g.DB.PingContext(ctx)
}

// Resolve implements google.Resolver: the route to Google of a merchant's
// integration.
func (g *Gateway) Resolve(ctx context.Context, merchantID, piaid string) (google.Route, error) {
	snap := g.dir.d.Load()
	if snap == nil {
		return google.Route{}, fmt.Errorf("gateway: not loaded")
	}
	m, ok := snap.Merchant(merchantID)
	if !ok {
		return google.Route{}, fmt.Errorf("%w: merchant %s has no integration", google.ErrPermanent, merchantID)
	}
	in := m.Integration
	if in.GoogleEndpoint == "" {
		// Retried: the operator may still configure it.
		return google.Route{}, fmt.Errorf("gateway: merchant %s has no Google endpoint configured", merchantID)
	}
	keysetID := in.KeysetID
	return google.Route{Endpoint: in.GoogleEndpoint, PIAID: piaid, Codec: g.codecs[in.Envelope],
		Keyset: func(ctx context.Context) (*keystore.Keyset, error) { return g.Keys.Keyset(ctx, keysetID) }}, nil
}

// Serve serves the Google-facing listener on ln and delivers the outbox
// until ctx ends.
func (g *Gateway) Serve(ctx context.Context, ln net.Listener) error {
	return g.run(ctx, func(ctx context.Context) error { return g.Server.Serve(ctx, ln) })
}

// ListenAndServe listens on the configured address and delivers the outbox
// until ctx ends.
func (g *Gateway) ListenAndServe(ctx context.Context) error {
	return g.run(ctx, g.Server.ListenAndServe)
}

func (g *Gateway) run(ctx context.Context, serve func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- g.Outbox.Run(ctx) }()
	// Changes made by another process on the same database (another
	// host's admin API, the operator CLI, a rotation drill) reach this
	// host within the sync interval.
	go g.Keys.Watch(ctx, g.syncInterval)
	go g.watchDirectory(ctx, g.syncInterval)
	err := serve(ctx)
	cancel() // a failed listener stops the worker too
	return errors.Join(err, <-done)
}

// Close releases everything Open opened, in reverse order.
func (g *Gateway) Close() error {
	var errs []error
	if g.Calls != nil {
		g.Calls.Close() // the shadow worker first: it calls the runtime
	}
	if g.Deploy != nil {
		g.Deploy.Close()
	}
	if g.Plugins != nil {
		errs = append(errs, g.Plugins.Close())
	}
	if g.Ledger != nil {
		errs = append(errs, g.Ledger.Close())
	}
	if g.DB != nil {
		errs = append(errs, g.DB.Close())
	}
	return errors.Join(errs...)
}
