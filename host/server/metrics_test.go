package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// gathered returns name's samples as "label=value,..." → value.
func gathered(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, lp := range m.GetLabel() {
				labels = append(labels, lp.GetName()+"="+lp.GetValue())
			}
			out[strings.Join(labels, ",")] = value(m)
		}
	}
	return out
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return -1
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	ts := startServer(t, Config{Routes: testRoutes}, &recorder{}, Options{Metrics: reg})
	c := ts.client(nil)
	url := ts.url("/acme/" + APIPathSegment + "/echo")
	for range 3 {
		post(t, c, url, MediaTypeJOSE, strings.NewReader("x"))
	}
	post(t, c, url, "text/plain", strings.NewReader("x"))
	post(t, c, ts.url("/nope"), MediaTypeJOSE, strings.NewReader("x"))
	got := gathered(t, reg, "otpcgate_http_requests_total")
	want := map[string]float64{
		"code=200,merchant=acme,method=echo": 3,
		"code=415,merchant=acme,method=echo": 1,
		"code=404,merchant=,method=":         1,
	}
	if len(got) != len(want) {
		t.Fatalf("requests_total = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("requests_total = %v, want %v", got, want)
		}
	}
	if d := gathered(t, reg, "otpcgate_http_request_duration_seconds"); d["merchant=acme,method=echo"] != 4 {
		t.Fatalf("duration histogram = %v, want 4 samples for acme/echo", d)
	}
	// A second server on the same registry is a registration error.
	cf, kf := writeECDSACert(t, t.TempDir(), "x.test")
	if _, err := New(Config{CertFile: cf, KeyFile: kf}, &recorder{}, Options{Metrics: reg}); err == nil {
		t.Fatal("second registration on one registry succeeded")
	}
}

func TestLimiterMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	l := NewLimiter(LimiterConfig{MaxInFlight: 1, MaxQueue: 1, MaxWait: 10 * time.Millisecond})
	if err := RegisterLimiterMetrics(reg, l); err != nil {
		t.Fatal(err)
	}
	hold, _ := l.Acquire(context.Background())
	if _, err := l.Acquire(context.Background()); err == nil { // times out
		t.Fatal("second Acquire admitted")
	}
	for name, want := range map[string]float64{
		"otpcgate_admission_admitted_total":   1,
		"otpcgate_admission_in_flight":        1,
		"otpcgate_admission_queued":           0,
		"otpcgate_admission_timeouts_total":   1,
		"otpcgate_admission_queue_full_total": 0,
		"otpcgate_admission_slots":            1,
	} {
		if got := gathered(t, reg, name)[""]; got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	hold()
	if err := RegisterLimiterMetrics(reg, l); err == nil {
		t.Fatal("registering twice succeeded")
	}
}
