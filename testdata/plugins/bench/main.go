// Command bench is the well-behaved plugin of the host/runtime tests and
// benchmarks (logic in benchlogic); its remittance op tours the host
// services for TestSDKHostServices. Its configuration may carry a GC
// percent ("gc=N"), applied at warm-up, so the benchmark can compare guest
// GC settings in one run.
package main

import (
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/otpcgate/otpcgate/sdk"
	"github.com/otpcgate/otpcgate/sdk/otpc"
	"github.com/otpcgate/otpcgate/testdata/plugins/bench/benchlogic"
)

func init() {
	p := benchlogic.Plugin
	p.Warmup = func(c *sdk.Context) error {
		if v, ok := strings.CutPrefix(string(c.Config()), "gc="); ok {
			if n, err := strconv.Atoi(v); err == nil {
				debug.SetGCPercent(n)
			}
		}
		return nil
	}
	p.Remittance = hostTour
	sdk.Register(&p)
}

// hostTour exercises every host service through the sdk inside wasm and
// reports what it saw in the statement id: big-value KV round trip (the
// sdk's buffer-growing path), delete, randomness, request time and config.
func hostTour(c *sdk.Context, _ *otpc.RemittanceInput) (*otpc.RemittanceOutput, error) {
	kv := c.KV()
	big := strings.Repeat("v", 3000)
	kv.Put("big", []byte(big))
	got, ok := kv.Get("big")
	kv.Put("gone", []byte("x"))
	kv.Delete("gone")
	_, gone := kv.Get("gone")
	prev, _ := kv.Get("counter")
	kv.Put("counter", append(prev, '+'))
	r := make([]byte, 16)
	c.Random(r)
	nonZero := strings.Trim(string(r), "\x00") != ""
	c.Log(sdk.LevelInfo, "host tour")
	report := strings.Join([]string{
		"big=" + strconv.FormatBool(ok && string(got) == big),
		"gone=" + strconv.FormatBool(!gone),
		"counter=" + string(prev),
		"random=" + strconv.FormatBool(nonZero),
		"now=" + strconv.FormatInt(c.Now().UnixMilli(), 10),
		"config=" + string(c.Config()),
	}, ";")
	return &otpc.RemittanceOutput{PaymentIntegratorStatementID: report,
		Result: otpc.RemittanceStatementNotificationResult{Accepted: &otpc.Empty{}}}, nil
}

func main() {}
