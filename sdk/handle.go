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
	switch op {
	case otpc.OpWarmup:
		if p.Warmup != nil {
			if err := p.Warmup(c); err != nil {
				return errFrame(out, abi.StatusError, err.Error())
			}
		}
		return p.appendOps(append(out, byte(abi.StatusOK)))
	case otpc.OpGenerate:
		return run[otpc.GenerateInput, otpc.GenerateOutput](c, p.Generate, input, out)
	case otpc.OpCancel:
		return run[otpc.CancelInput, otpc.CancelOutput](c, p.Cancel, input, out)
	case otpc.OpRefund:
		return run[otpc.RefundInput, otpc.RefundOutput](c, p.Refund, input, out)
	case otpc.OpAsyncRefund:
		return run[otpc.RefundInput, otpc.AsyncRefundOutput](c, p.AsyncRefund, input, out)
	case otpc.OpAssociate:
		return run[otpc.AssociateInput, otpc.AssociateOutput](c, p.Associate, input, out)
	case otpc.OpRemittance:
		return run[otpc.RemittanceInput, otpc.RemittanceOutput](c, p.Remittance, input, out)
	case otpc.OpPaid:
		return run[otpc.PaidInput, otpc.PaidOutput](c, p.Paid, input, out)
	case otpc.OpRefundDone:
		return run[otpc.RefundDoneInput, otpc.RefundDoneOutput](c, p.RefundDone, input, out)
	case otpc.OpAuthenticate:
		return run[otpc.AuthenticateInput, otpc.AuthenticateOutput](c, p.Authenticate, input, out)
	}
	return errFrame(out, abi.StatusUnsupported, "unknown op "+op.String())
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
	for _, h := range []struct {
		op  otpc.Op
		set bool
	}{{otpc.OpGenerate, p.Generate != nil}, {otpc.OpCancel, p.Cancel != nil}, {otpc.OpRefund, p.Refund != nil},
		{otpc.OpAsyncRefund, p.AsyncRefund != nil}, {otpc.OpAssociate, p.Associate != nil}, {otpc.OpRemittance, p.Remittance != nil},
		{otpc.OpPaid, p.Paid != nil}, {otpc.OpRefundDone, p.RefundDone != nil}, {otpc.OpAuthenticate, p.Authenticate != nil}} {
		if !h.set {
			continue
		}
		if !first {
			out = append(out, ',')
		}
		first = false
		out = append(out, '"')
		out = append(out, h.op.String()...)
		out = append(out, '"')
	}
	return append(out, "]}"...)
}
