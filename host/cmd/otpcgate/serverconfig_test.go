package main

import (
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/internal/config"
)

func TestServerConfigMapping(t *testing.T) {
	c := config.Default()
	c.Listen.TLS13 = false
	c.Merchants = []config.Merchant{{ID: "acme", BasePath: "/acme"}, {ID: "shop", BasePath: "/shop"}}
	sc := serverConfig(c)
	if !sc.DisableTLS13 || sc.BodyLimit != c.Limits.BodyLimit || len(sc.Routes) != 2 || sc.Routes[1].MerchantID != "shop" || sc.HandlerTimeout != 20*time.Second {
		t.Fatalf("ServerConfig = %+v", sc)
	}
	if lc := limiterConfig(c); lc.MaxQueue != 64 || lc.MaxWait != time.Second {
		t.Fatalf("LimiterConfig = %+v", lc)
	}
}

func TestLimiterConfigPerMerchant(t *testing.T) {
	tests := []struct {
		inFlight, perMerchant, queue, queuePerMerchant int
		wantPer, wantQueuePer                          int
	}{
		{inFlight: 4, queue: 64, wantPer: 3, wantQueuePer: 32},                // defaults: all but one slot, half the queue
		{inFlight: 1, queue: 1, wantPer: 1, wantQueuePer: 1},                  // never below one
		{inFlight: 4, perMerchant: -1, queue: 8, wantPer: 4, wantQueuePer: 4}, // no reserve
		{inFlight: 4, perMerchant: 2, queue: 8, queuePerMerchant: 3, wantPer: 2, wantQueuePer: 3},
	}
	for _, tc := range tests {
		c := config.Default()
		c.Admission.MaxInFlight, c.Admission.MaxInFlightPerMerchant = tc.inFlight, tc.perMerchant
		c.Admission.MaxQueue, c.Admission.MaxQueuePerMerchant = tc.queue, tc.queuePerMerchant
		lc := limiterConfig(c)
		if lc.MaxInFlightPerKey != tc.wantPer || lc.MaxQueuePerKey != tc.wantQueuePer {
			t.Errorf("%+v: per key %d, queue per key %d; want %d, %d", tc, lc.MaxInFlightPerKey, lc.MaxQueuePerKey, tc.wantPer, tc.wantQueuePer)
		}
	}
}
