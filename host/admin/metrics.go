package admin

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpcgate/otpcgate/host/ledger"
	"github.com/otpcgate/otpcgate/host/protocol"
	"github.com/otpcgate/otpcgate/keystore"
)

// Sources are what the gateway collector reads at scrape time.
type Sources struct {
	// Pipeline gives protocol outcome counters; nil skips them.
	Pipeline *protocol.Pipeline
	Keys     *keystore.Store
	Counters *keystore.Counters
	Ledger   *ledger.Ledger
	// QuotaDefaults are the host's limits for merchants without their own
	// (otpcgate_merchant_quota{merchant=""}); zero fields are not exported.
	QuotaDefaults ledger.MerchantQuotas
	// Now is the clock for key expiry. Default time.Now.
	Now func() time.Time
}

// maxDeadLetters bounds the dead-letter count read per scrape.
const maxDeadLetters = 10000

var (
	descOutcomes = prometheus.NewDesc("otpcgate_protocol_requests_total",
		"Google requests by pipeline outcome: ok, replayed, refused (an errorResponseResult), unavailable (503).",
		[]string{"outcome"}, nil)
	descRefusals = prometheus.NewDesc("otpcgate_protocol_refusals_total",
		"Refused Google requests by reason: the errorResponseResult member (envelope failures are invalidPayloadEncryption and invalidPayloadSignature), or unavailable for 5xx.",
		[]string{"reason"}, nil)
	descKeyUses = prometheus.NewDesc("otpcgate_key_uses_total",
		"Key uses by key id and use (decrypt, sign, verify, verify_failure, encrypt_to).", []string{"key", "use"}, nil)
	descExpiry = prometheus.NewDesc("otpcgate_key_expiry_seconds",
		"Seconds until a key in service expires (negative once expired).", []string{"keyset", "key", "owner", "state"}, nil)
	descExpiring = prometheus.NewDesc("otpcgate_keys_expiring",
		"Keys in service expiring within the window (30d warning, 7d critical), expired ones included.", []string{"within"}, nil)
	descKVKeys = prometheus.NewDesc("otpcgate_plugin_kv_keys",
		"Keys in a merchant's plugin KV store (quota: otpcgate_plugin_kv_quota_keys).", []string{"merchant"}, nil)
	descKVBytes = prometheus.NewDesc("otpcgate_plugin_kv_bytes",
		"Bytes (keys and values) in a merchant's plugin KV store (quota: otpcgate_plugin_kv_quota_bytes).", []string{"merchant"}, nil)
	descKVQuotaKeys = prometheus.NewDesc("otpcgate_plugin_kv_quota_keys",
		"A merchant's plugin KV quota in keys (its own, else the host's default, shown with merchant=\"\").", []string{"merchant"}, nil)
	descKVQuotaBytes = prometheus.NewDesc("otpcgate_plugin_kv_quota_bytes",
		"A merchant's plugin KV quota in bytes (its own, else the host's default, shown with merchant=\"\").", []string{"merchant"}, nil)
	descQuota = prometheus.NewDesc("otpcgate_merchant_quota",
		"A merchant's limit in force by quota (log_bytes_per_minute, plugin_versions, plugin_bytes, plugin_memory_mib), for merchants with limits of their own; merchant=\"\" is the host's default. KV quotas: otpcgate_plugin_kv_quota_*.",
		[]string{"merchant", "quota"}, nil)
	descDepth = prometheus.NewDesc("otpcgate_outbox_depth", "Pending outbox items (notifications to Google).", nil, nil)
	descDead  = prometheus.NewDesc("otpcgate_outbox_dead_letters",
		"Outbox items given up on (counted up to 10000).", nil, nil)
	descTx        = prometheus.NewDesc("otpcgate_sqlite_transactions_total", "SQLite write transactions committed (one fsync each).", nil, nil)
	descClosures  = prometheus.NewDesc("otpcgate_sqlite_commits_total", "Ledger writes committed (group commit batches several per transaction).", nil, nil)
	descFailed    = prometheus.NewDesc("otpcgate_sqlite_failed_total", "Ledger writes rolled back.", nil, nil)
	descScrapeErr = prometheus.NewDesc("otpcgate_admin_scrape_errors",
		"1 when a metric source failed during this scrape.", []string{"source"}, nil)
)

// Collector exports the gateway's state (pipeline, keys, outbox, SQLite) at
// scrape time, so nothing on the request path pays for metrics.
type Collector struct{ src Sources }

// NewCollector returns a collector over src.
func NewCollector(src Sources) *Collector {
	if src.Now == nil {
		src.Now = time.Now
	}
	return &Collector{src: src}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descOutcomes, descRefusals, descKeyUses, descExpiry, descExpiring, descDepth, descDead,
		descTx, descClosures, descFailed, descScrapeErr, descKVKeys, descKVBytes, descKVQuotaKeys, descKVQuotaBytes, descQuota} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	scrapeErr := func(src string) { gauge(descScrapeErr, 1, src) }
	if p := c.src.Pipeline; p != nil {
		st := p.Stats()
		counter(descOutcomes, float64(st.OK.Load()), "ok")
		counter(descOutcomes, float64(st.Replayed.Load()), "replayed")
		counter(descOutcomes, float64(st.Refused.Load()), "refused")
		counter(descOutcomes, float64(st.Unavailable.Load()), "unavailable")
		for reason, n := range st.Refusals() {
			counter(descRefusals, float64(n), reason)
		}
	}
	if c.src.Counters != nil {
		for id, u := range c.src.Counters.Snapshot() {
			for i, n := range u {
				counter(descKeyUses, float64(n), id, keystore.Use(i).String())
			}
		}
	}
	if ks := c.src.Keys; ks != nil {
		now := c.src.Now()
		if sets, err := ks.Keysets(ctx); err != nil {
			scrapeErr("keys")
		} else {
			for _, set := range sets {
				keys, err := ks.List(ctx, set.ID)
				if err != nil {
					scrapeErr("keys")
					continue
				}
				for _, k := range keys {
					if inService(k.State) && !k.Expires.IsZero() {
						gauge(descExpiry, k.Expires.Sub(now).Seconds(), set.ID, k.ID, string(k.Owner), string(k.State))
					}
				}
			}
		}
		for _, w := range []struct {
			label string
			days  int
		}{{"30d", WarnDays}, {"7d", CriticalDays}} {
			if ks, err := ks.ExpiringWithin(ctx, w.days, now); err != nil {
				scrapeErr("keys")
			} else {
				gauge(descExpiring, float64(len(ks)), w.label)
			}
		}
	}
	if l := c.src.Ledger; l != nil {
		if n, err := l.Depth(ctx); err != nil {
			scrapeErr("outbox")
		} else {
			gauge(descDepth, float64(n))
		}
		if d, err := l.DeadLetters(ctx, maxDeadLetters); err != nil {
			scrapeErr("outbox")
		} else {
			gauge(descDead, float64(len(d)))
		}
		def := l.KVQuota()
		gauge(descKVQuotaKeys, float64(def.MaxKeys), "")
		gauge(descKVQuotaBytes, float64(def.MaxBytes), "")
		own := map[string]ledger.KVQuota{}
		quotas := func(id string, q ledger.MerchantQuotas) {
			for _, v := range []struct {
				name string
				n    int64
			}{{"log_bytes_per_minute", q.LogBytesPerMinute}, {"plugin_versions", q.PluginVersions},
				{"plugin_bytes", q.PluginBytes}, {"plugin_memory_mib", q.PluginMemoryMiB}} {
				if v.n > 0 {
					gauge(descQuota, float64(v.n), id, v.name)
				}
			}
		}
		quotas("", c.src.QuotaDefaults)
		if all, err := l.AllMerchantQuotas(ctx); err != nil {
			scrapeErr("kv")
		} else {
			for id, q := range all {
				quotas(id, q.Or(c.src.QuotaDefaults))
				if q.KV != (ledger.KVQuota{}) {
					own[id] = q.KV
				}
			}
		}
		if us, err := l.KVUsages(ctx); err != nil {
			scrapeErr("kv")
		} else {
			for ns, u := range us {
				gauge(descKVKeys, float64(u.Keys), ns)
				gauge(descKVBytes, float64(u.Bytes), ns)
				if _, ok := own[ns]; !ok {
					own[ns] = ledger.KVQuota{}
				}
			}
		}
		for id, q := range own {
			if id == "" {
				continue
			}
			q = q.Or(def)
			gauge(descKVQuotaKeys, float64(q.MaxKeys), id)
			gauge(descKVQuotaBytes, float64(q.MaxBytes), id)
		}
		st := l.Stats()
		counter(descTx, float64(st.Transactions))
		counter(descClosures, float64(st.Closures))
		counter(descFailed, float64(st.Failed))
	}
}
