package gateway

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
)

var descKeysetQuarantined = prometheus.NewDesc("otpcgate_keyset_quarantined",
	"1 for a merchant whose keyset failed to load at start (its requests answer 503) until it loads.",
	[]string{"merchant", "keyset"}, nil)

// keysetCollector exports the keysets that failed to load at start.
type keysetCollector struct{ g *Gateway }

func (c keysetCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descKeysetQuarantined }

func (c keysetCollector) Collect(ch chan<- prometheus.Metric) {
	for merchant, keyset := range c.g.QuarantinedKeysets(context.Background()) {
		ch <- prometheus.MustNewConstMetric(descKeysetQuarantined, prometheus.GaugeValue, 1, merchant, keyset)
	}
}

// QuarantinedKeysets lists, by merchant, the keysets that failed to load at
// start and still do not (one that loads now leaves the list).
func (g *Gateway) QuarantinedKeysets(ctx context.Context) map[string]string {
	out := map[string]string{}
	g.quarantinedKeysets.Range(func(k, v any) bool {
		merchant, keyset := k.(string), v.(string)
		if _, err := g.Keys.Keyset(ctx, keyset); err == nil {
			g.quarantinedKeysets.Delete(merchant)
			return true
		}
		out[merchant] = keyset
		return true
	})
	return out
}
