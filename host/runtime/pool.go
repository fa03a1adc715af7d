package runtime

import (
	"context"
	"sync/atomic"
)

// pool is the bounded set of warm instances of one version. Idle instances
// wait in a buffered channel; a token channel bounds how many exist, so a
// caller either takes an idle instance, creates one (without any shared
// lock held), or waits FIFO for one of the two.
type pool struct {
	v      *version
	idle   chan *instance
	tokens chan struct{}
	closed atomic.Bool
}

func newPool(v *version, max int) *pool {
	return &pool{v: v, idle: make(chan *instance, max), tokens: make(chan struct{}, max)}
}

// get checks an instance out; it is the caller's alone until put.
func (p *pool) get(ctx context.Context) (*instance, error) {
	select {
	case in := <-p.idle:
		return in, nil
	default:
	}
	select {
	case in := <-p.idle:
		return in, nil
	case p.tokens <- struct{}{}:
		in, err := p.v.newInstance(ctx)
		if err != nil {
			<-p.tokens
			return nil, err
		}
		return in, nil
	case <-ctx.Done():
		return nil, &CallError{Kind: KindTimeout, Msg: "no plugin instance became free", Err: ctx.Err()}
	}
}

// put returns an instance; a broken one is closed and its slot freed so the
// next caller creates a fresh instance.
func (p *pool) put(in *instance) {
	if in.broken || p.closed.Load() {
		if in.broken {
			p.v.stats.discarded.Add(1)
		}
		in.close()
		<-p.tokens
		return
	}
	p.idle <- in // never blocks: at most cap(tokens) instances exist
}

// warm creates n instances up front.
func (p *pool) warm(ctx context.Context, n int) error {
	ins := make([]*instance, 0, n)
	var err error
	for range n {
		var in *instance
		p.tokens <- struct{}{}
		if in, err = p.v.newInstance(ctx); err != nil {
			<-p.tokens
			break
		}
		ins = append(ins, in)
	}
	for _, in := range ins {
		p.put(in)
	}
	return err
}

// close closes idle instances; busy ones are closed when put back.
func (p *pool) close() {
	p.closed.Store(true)
	for {
		select {
		case in := <-p.idle:
			in.close()
			<-p.tokens
		default:
			return
		}
	}
}
