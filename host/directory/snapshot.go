package directory

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/otpcgate/otpcgate/host/ledger"
)

// Merchant is everything the directory publishes about one served
// merchant: who it is (from the ledger's merchants and PIAIDs) and how it
// is reached (its integration).
type Merchant struct {
	ID       string
	Name     string
	Disabled bool
	// PIAIDs are the merchant's payment integrator account ids, sorted.
	PIAIDs      []string
	Integration Integration
}

// HasPIAID reports whether piaid is one of the merchant's.
func (m *Merchant) HasPIAID(piaid string) bool {
	_, ok := slices.BinarySearch(m.PIAIDs, piaid)
	return ok
}

// Snapshot is an immutable view of every merchant with an integration, as
// one Load read it. Readers share it without locks; a change publishes a
// new one.
type Snapshot struct {
	byID   map[string]*Merchant
	byBase map[string]*Merchant
	all    []*Merchant
}

// Merchant returns the merchant with id.
func (s *Snapshot) Merchant(id string) (*Merchant, bool) {
	if s == nil {
		return nil, false
	}
	m, ok := s.byID[id]
	return m, ok
}

// ByBasePath returns the merchant served under a normalised base path.
func (s *Snapshot) ByBasePath(basePath string) (*Merchant, bool) {
	if s == nil {
		return nil, false
	}
	m, ok := s.byBase[basePath]
	return m, ok
}

// Merchants returns every merchant, by id.
func (s *Snapshot) Merchants() []*Merchant {
	if s == nil {
		return nil
	}
	return s.all
}

// Ledger is what a snapshot reads from the ledger, which owns the merchants
// and their PIAIDs (*ledger.Ledger implements it).
type Ledger interface {
	Merchant(ctx context.Context, id string) (ledger.Merchant, error)
	PIAIDs(ctx context.Context, merchantID string) ([]string, error)
}

// Load reads a new snapshot: every integration with its merchant.
func (r *Store) Load(ctx context.Context, l Ledger) (*Snapshot, error) {
	ins, err := r.Integrations(ctx)
	if err != nil {
		return nil, err
	}
	s := &Snapshot{byID: make(map[string]*Merchant, len(ins)), byBase: make(map[string]*Merchant, len(ins)),
		all: make([]*Merchant, 0, len(ins))}
	for _, in := range ins {
		lm, err := l.Merchant(ctx, in.MerchantID)
		if err != nil {
			return nil, fmt.Errorf("directory: integration %s: %w", in.MerchantID, err)
		}
		piaids, err := l.PIAIDs(ctx, in.MerchantID)
		if err != nil {
			return nil, fmt.Errorf("directory: integration %s: %w", in.MerchantID, err)
		}
		slices.Sort(piaids)
		m := &Merchant{ID: in.MerchantID, Name: lm.Name, Disabled: lm.Status == ledger.MerchantDisabled,
			PIAIDs: piaids, Integration: in}
		s.byID[m.ID], s.byBase[in.BasePath] = m, m
		s.all = append(s.all, m)
	}
	return s, nil
}

// Published holds the current snapshot; the zero value holds none.
type Published struct{ p atomic.Pointer[Snapshot] }

// Load returns the current snapshot (nil before the first Store; a nil
// snapshot finds nothing).
func (p *Published) Load() *Snapshot { return p.p.Load() }

// Merchant returns the merchant with id in the current snapshot.
func (p *Published) Merchant(id string) (*Merchant, bool) { return p.Load().Merchant(id) }

// Store publishes s.
func (p *Published) Store(s *Snapshot) { p.p.Store(s) }
