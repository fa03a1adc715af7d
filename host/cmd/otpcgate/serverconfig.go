package main

import (
	goruntime "runtime"

	"github.com/otpcgate/otpcgate/host/server"
	"github.com/otpcgate/otpcgate/internal/config"
)

// serverConfig maps the listener settings and merchant base paths of c
// to the server's configuration.
func serverConfig(c *config.Config) server.Config {
	sc := server.Config{
		Addr:               c.Listen.Addr,
		CertFile:           c.Listen.CertFile,
		KeyFile:            c.Listen.KeyFile,
		CertReloadInterval: c.Listen.CertReloadInterval.D(),
		DisableTLS13:       !c.Listen.TLS13,
		AllowCBCSuites:     c.Listen.TLS12CBCSuites,
		Curves:             c.Listen.Curves,
		EnableHTTP2:        c.Listen.HTTP2,
		BodyLimit:          c.Limits.BodyLimit,
		MaxHeaderBytes:     c.Limits.MaxHeaderBytes,
		ReadHeaderTimeout:  c.Limits.ReadHeaderTimeout.D(),
		ReadTimeout:        c.Limits.ReadTimeout.D(),
		WriteTimeout:       c.Limits.WriteTimeout.D(),
		IdleTimeout:        c.Limits.IdleTimeout.D(),
		HandlerTimeout:     c.Limits.HandlerTimeout.D(),
		ShutdownTimeout:    c.Limits.ShutdownTimeout.D(),
	}
	for _, m := range c.Merchants {
		sc.Routes = append(sc.Routes, server.Route{BasePath: m.BasePath, MerchantID: m.ID})
	}
	return sc
}

// limiterConfig maps the admission settings of c: unset slots are the
// cores; each merchant may hold all slots but one and half the queue.
func limiterConfig(c *config.Config) server.LimiterConfig {
	a := c.Admission
	slots := a.MaxInFlight
	if slots <= 0 {
		slots = goruntime.GOMAXPROCS(0)
	}
	perMerchant := a.MaxInFlightPerMerchant
	switch {
	case perMerchant == 0:
		perMerchant = max(1, slots-1)
	case perMerchant < 0:
		perMerchant = slots
	}
	queuePerMerchant := a.MaxQueuePerMerchant
	if queuePerMerchant <= 0 {
		queuePerMerchant = max(1, a.MaxQueue/2)
	}
	return server.LimiterConfig{
		MaxInFlight:       a.MaxInFlight,
		MaxQueue:          a.MaxQueue,
		MaxWait:           a.MaxWait.D(),
		MaxInFlightPerKey: perMerchant,
		MaxQueuePerKey:    queuePerMerchant,
	}
}
