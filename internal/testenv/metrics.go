package testenv

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics gathers g and returns each sample's value (counter, gauge or
// untyped) by its name followed by its label values, "/"-separated in
// label-name order: "otpcgate_plugin_kv_keys/demo-jose".
func Metrics(tb testing.TB, g prometheus.Gatherer) map[string]float64 {
	tb.Helper()
	mfs, err := g.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, lp := range m.GetLabel() {
				key += "/" + lp.GetValue()
			}
			out[key] = m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue()
		}
	}
	return out
}
