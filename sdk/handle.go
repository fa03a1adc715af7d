package sdk

import (
	"errors"

	"github.com/otpcgate/otpcgate/sdk/abi"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// decoder and encoder are the generated codec methods of sdk/otpc types.
type decoder[T any] interface {
	*T
	UnmarshalJSON([]byte) error
}

type encoder[T any] interface {
	*T
	AppendJSON([]byte) []byte
}

// Handle runs one op of p: it decodes input, calls the handler and appends
// the output frame (status byte + body, see sdk/abi) to out. The wasm glue
// calls it for otpc_handle; natively it runs the same path for tests and
// benchmarks.
func Handle(p *Plugin, c *Context, op otpc.Op, input, out []byte) []byte {
	c.op = op
	if op == otpc.OpWarmup {
		if p.Warmup != nil {
			if err := p.Warmup(c); err != nil {
				return errFrame(out, abi.StatusError, err.Error())
			}
		}
		return p.appendOps(append(out, byte(abi.StatusOK)))
	}
	out, has, known := p.dispatch(c, op, input, out, false)
	switch {
	case !known:
		return errFrame(out, abi.StatusUnsupported, "unknown op "+op.String())
	case !has:
		return errFrame(out, abi.StatusUnsupported, "no handler for "+op.String())
	}
	return out
}

// dispatch runs op's handler in p, or with probe set only reports whether
// p has one. It returns the output, whether p has a handler for op and
// whether op is one a plugin handles: the one place that maps ops to
// Plugin's fields, so dispatch and the ops reported at warm-up agree.
func (p *Plugin) dispatch(c *Context, op otpc.Op, input, out []byte, probe bool) ([]byte, bool, bool) {
	switch op {
	case otpc.OpGenerate:
		return call(c, p.Generate, input, out, probe)
	case otpc.OpCancel:
		return call(c, p.Cancel, input, out, probe)
	case otpc.OpRefund:
		return call(c, p.Refund, input, out, probe)
	case otpc.OpAsyncRefund:
		return call(c, p.AsyncRefund, input, out, probe)
	case otpc.OpAssociate:
		return call(c, p.Associate, input, out, probe)
	case otpc.OpRemittance:
		return call(c, p.Remittance, input, out, probe)
	case otpc.OpPaid:
		return call(c, p.Paid, input, out, probe)
	case otpc.OpRefundDone:
		return call(c, p.RefundDone, input, out, probe)
	case otpc.OpAuthenticate:
		return call(c, p.Authenticate, input, out, probe)
	}
	return out, false, false
}

func call[I, O any, PI decoder[I], PO encoder[O]](c *Context, h func(*Context, *I) (*O, error), input, out []byte, probe bool) ([]byte, bool, bool) {
	if h == nil || probe {
		return out, h != nil, true
	}
	return run[I, O, PI, PO](c, h, input, out), true, true
}

func run[I, O any, PI decoder[I], PO encoder[O]](c *Context, h func(*Context, *I) (*O, error), input, out []byte) []byte {
	if h == nil {
		return errFrame(out, abi.StatusUnsupported, "no handler for "+c.op.String())
	}
	var in I
	if err := PI(&in).UnmarshalJSON(input); err != nil {
		return errFrame(out, abi.StatusBadInput, err.Error())
	}
	res, err := h(c, &in)
	if err != nil {
		var ref *otpc.Refusal
		if errors.As(err, &ref) {
			return ref.AppendFrame(append(out, byte(abi.StatusRefusal)))
		}
		return errFrame(out, abi.StatusError, err.Error())
	}
	if res == nil {
		return errFrame(out, abi.StatusError, c.op.String()+" handler returned no output")
	}
	out = append(out, byte(abi.StatusOK))
	return PO(res).AppendJSON(out)
}

func errFrame(out []byte, s abi.Status, msg string) []byte {
	out = append(out, byte(s))
	return append(out, msg...)
}

// appendOps appends {"ops":[…]}, the ops p has handlers for, as the
// warm-up's output: the host reports them at upload, so a merchant learns
// which methods its plugin cannot serve before Google calls one.
func (p *Plugin) appendOps(out []byte) []byte {
	out = append(out, `{"ops":[`...)
	first := true
	for op := otpc.OpWarmup + 1; op.Valid(); op++ {
		if _, has, _ := p.dispatch(nil, op, nil, nil, true); !has {
			continue
		}
		if !first {
			out = append(out, ',')
		}
		first = false
		out = append(out, '"')
		out = append(out, op.String()...)
		out = append(out, '"')
	}
	return append(out, "]}"...)
}
