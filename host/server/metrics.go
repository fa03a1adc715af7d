package server

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the server's Prometheus collectors.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "otpcgate_http_requests_total",
			Help: "Google-facing HTTP requests by merchant, OTPC method and status code (merchant and method empty for other paths).",
		}, []string{"merchant", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "otpcgate_http_request_duration_seconds",
			Help:    "Time from routing to the end of the handler for OTPC method calls.",
			Buckets: []float64{.001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5, 10, 20},
		}, []string{"merchant", "method"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("server: register metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) observe(merchant, method string, code int, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(merchant, method, strconv.Itoa(code)).Inc()
	if method != "" {
		m.duration.WithLabelValues(merchant, method).Observe(d.Seconds())
	}
}

// RegisterLimiterMetrics exports l's state and counters under
// otpcgate_admission_* (in flight, queued, admitted, refusals by reason,
// seconds waited).
func RegisterLimiterMetrics(reg prometheus.Registerer, l *Limiter) error {
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	counter := func(name, help string, f func(LimiterCounts) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return f(l.Counts()) })
	}
	cs := []prometheus.Collector{
		gauge("otpcgate_admission_in_flight", "Requests holding an admission slot.", func() float64 { f, _ := l.Stats(); return float64(f) }),
		gauge("otpcgate_admission_queued", "Requests waiting for an admission slot.", func() float64 { _, q := l.Stats(); return float64(q) }),
		gauge("otpcgate_admission_slots", "Admission slots (max in flight).", func() float64 { return float64(l.MaxInFlight()) }),
		counter("otpcgate_admission_admitted_total", "Requests admitted.", func(c LimiterCounts) float64 { return float64(c.Admitted) }),
		counter("otpcgate_admission_queue_full_total", "Requests refused because the queue was full.", func(c LimiterCounts) float64 { return float64(c.QueueFull) }),
		counter("otpcgate_admission_timeouts_total", "Requests refused after waiting MaxWait.", func(c LimiterCounts) float64 { return float64(c.Timeouts) }),
		counter("otpcgate_admission_cancelled_total", "Requests whose context ended while queued.", func(c LimiterCounts) float64 { return float64(c.Cancelled) }),
		counter("otpcgate_admission_wait_seconds_total", "Total time admitted requests spent queued.", func(c LimiterCounts) float64 { return c.Waited.Seconds() }),
	}
	var errs []error
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("server: register limiter metrics: %w", err)
	}
	return nil
}
