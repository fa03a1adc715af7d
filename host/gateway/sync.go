package gateway

import (
	"context"
	"time"
)

// watchDirectory reloads the merchant directory (integrations, plugin
// activations, merchant status, rules and quotas) whenever the audit log
// grows, until ctx ends. Every admin change is audited in the transaction
// of the change or right after it, so on several hosts sharing one
// PostgreSQL database a change made through any host's admin API is in
// force on all of them within one interval. One indexed MAX(id) per
// interval is all it costs while nothing changes.
func (g *Gateway) watchDirectory(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := g.syncDirectory(ctx); err != nil && ctx.Err() == nil {
			g.log.Warn("gateway: directory sync failed; retrying next interval", "err", err)
		}
	}
}

// syncDirectory reloads if the audit head moved since the last load.
func (g *Gateway) syncDirectory(ctx context.Context) error {
	head, err := g.Ledger.AuditHead(ctx)
	if err != nil {
		return err
	}
	seen := g.auditSeen.Load()
	if head == seen {
		return nil
	}
	if err := g.Reload(ctx); err != nil {
		return err
	}
	g.auditSeen.CompareAndSwap(seen, head)
	return nil
}
