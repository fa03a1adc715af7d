package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/otpcgate/otpcgate/host/admin"
	"github.com/otpcgate/otpcgate/host/ledger"
	"github.com/otpcgate/otpcgate/keystore"
)

// ledgerRefusal maps the ledger's refusals of a delete or release to the
// admin API's errors, with the step to take.
func ledgerRefusal(err error) error {
	var iu *ledger.InUseError
	switch {
	case errors.As(err, &iu):
		return fmt.Errorf("%w: %v; records stay with their PIAID for good (disable the merchant and keep it)", admin.ErrConflict, iu)
	case errors.Is(err, ledger.ErrMerchantActive):
		return fmt.Errorf("%w: %v", admin.ErrConflict, err)
	case errors.Is(err, ledger.ErrNotFound):
		return fmt.Errorf("%w: %v", admin.ErrNotFound, err)
	case errors.Is(err, ledger.ErrUnknownPIAID):
		return fmt.Errorf("%w: %v", admin.ErrNotFound, err)
	}
	return err
}

func (b *adminBackend) DeleteMerchant(ctx context.Context, actor, id string, also func(exec admin.Exec) error) (admin.Merchant, error) {
	b.g.changes.Lock()
	defer b.g.changes.Unlock()
	before, err := b.Merchant(ctx, id)
	if err != nil {
		return admin.Merchant{}, err
	}
	snapshot, err := json.Marshal(before)
	if err != nil {
		return admin.Merchant{}, err
	}
	err = b.g.Ledger.Apply(ctx, func(tx *ledger.Tx) error {
		if err := tx.DeleteMerchant(id); err != nil {
			return err
		}
		if err := b.g.Directory.DeleteMerchant(tx.Exec, id); err != nil {
			return err
		}
		if also != nil {
			if err := also(tx.Exec); err != nil {
				return err
			}
		}
		return tx.Audit(ledger.AuditEntry{Actor: actor, Action: "merchant.delete", Subject: admin.MerchantSubject(id), Before: snapshot})
	})
	if err != nil {
		return admin.Merchant{}, ledgerRefusal(err)
	}
	b.g.PluginLogs.Forget(id) // a merchant created later under the id starts clean
	if err := b.g.Reload(ctx); err != nil {
		return before, err
	}
	if err := b.retireKeys(ctx, actor, before.KeysetID, id); err != nil {
		return before, fmt.Errorf("gateway: merchant %s deleted, but its keys were not all taken out of service: %w", id, err)
	}
	return before, nil
}

// retireKeys takes a deleted merchant's keys out of service (disabled) and
// erases our private halves (destroyed), unless another merchant shares
// the keyset. The keys cannot be reached through the merchant any more.
func (b *adminBackend) retireKeys(ctx context.Context, actor, keysetID, deleted string) error {
	if keysetID == "" {
		return nil
	}
	ins, err := b.g.Directory.Integrations(ctx)
	if err != nil {
		return err
	}
	for _, in := range ins {
		if in.KeysetID == keysetID && in.MerchantID != deleted {
			return nil
		}
	}
	keys, err := b.g.Keys.List(ctx, keysetID)
	if err != nil {
		return err
	}
	// The keyset keeps its record of keys and events under another name, so
	// that a merchant created later with the same id gets a keyset of its
	// own.
	sets, err := b.g.Keys.Keysets(ctx)
	if err != nil {
		return err
	}
	for _, ks := range sets {
		if ks.ID == keysetID {
			name := fmt.Sprintf("%s (merchant %s deleted %s)", ks.Name, deleted, time.Now().UTC().Format(time.RFC3339Nano))
			if err := b.g.Keys.RenameKeyset(ctx, actor, keysetID, name); err != nil {
				return err
			}
		}
	}
	for _, k := range keys {
		if k.State != keystore.StateDisabled && k.State != keystore.StateDestroyed {
			if err := b.g.Keys.SetState(ctx, actor, keysetID, k.ID, keystore.StateDisabled); err != nil {
				return err
			}
		}
		if k.Owner == keystore.OwnerSelf && k.State != keystore.StateDestroyed {
			if err := b.g.Keys.SetState(ctx, actor, keysetID, k.ID, keystore.StateDestroyed); err != nil {
				return err
			}
		}
	}
	return nil
}

func (b *adminBackend) ReleasePIAID(ctx context.Context, actor, id, piaid string) (admin.Merchant, error) {
	b.g.changes.Lock()
	defer b.g.changes.Unlock()
	err := b.g.Ledger.Apply(ctx, func(tx *ledger.Tx) error {
		if err := tx.ReleasePIAID(id, piaid); err != nil {
			return err
		}
		before, _ := json.Marshal(map[string]string{"piaid": piaid})
		return tx.Audit(ledger.AuditEntry{Actor: actor, Action: "merchant.release_piaid", Subject: admin.MerchantSubject(id), Before: before})
	})
	if err != nil {
		return admin.Merchant{}, ledgerRefusal(err)
	}
	if err := b.g.Reload(ctx); err != nil {
		return admin.Merchant{}, err
	}
	return b.Merchant(ctx, id)
}
