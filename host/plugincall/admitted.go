package plugincall

import (
	"context"
	"time"

	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// Admission hands out the host's CPU slots, fairly per merchant
// (*server.Limiter does).
type Admission interface {
	AcquireFor(ctx context.Context, key string) (release func(), err error)
}

// Admitted is the service for callers that hold no admission slot of their
// own — merchant events, the login page: each call first takes one of the
// host's slots for its merchant, shared fairly with Google's requests, so a
// merchant cannot reach more CPU through its merchant API than through
// Google. (The pipeline takes its slot itself, around crypto and the call.)
type Admitted struct {
	s *Service
	a Admission
}

// WithAdmission returns s behind a, for callers without a slot of their own.
func (s *Service) WithAdmission(a Admission) *Admitted { return &Admitted{s: s, a: a} }

// Call takes a slot for t's merchant, then calls as Service.Call does. No
// slot within the admission's wait is a failure (a 503 for the caller).
func (a *Admitted) Call(ctx context.Context, t Target, op otpc.Op, now time.Time, in, out otpc.Message) (Changes, error) {
	release, err := a.a.AcquireFor(ctx, t.Merchant)
	if err != nil {
		return Changes{}, err
	}
	defer release()
	return a.s.Call(ctx, t, op, now, in, out)
}
