package runtime_test

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/host/runtime"
	"github.com/otpcgate/otpcgate/host/runtime/runtimetest"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// TestTapeReplay: a konbini generate (a random part and a KV sequence in
// its code) is recorded; replayed on another version after the KV moved
// on, it gives byte for byte the same output and KV changes with no miss,
// while a live call gives another code. A replay asking for more than the
// tape holds is answered live and counted.
func TestTapeReplay(t *testing.T) {
	wasm := runtimetest.Build(t, "../../plugins/konbini")
	cfg, err := os.ReadFile("../../plugins/konbini/testdata/config.json")
	if err != nil {
		t.Fatal(err)
	}
	m := runtimetest.Manager(t, cached(runtime.Options{}))
	for _, v := range []string{"v1", "v2"} {
		if _, err := m.Load(context.Background(), "k", runtime.VersionSpec{Version: v, Wasm: wasm, Config: cfg}); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Activate("k", "v1"); err != nil {
		t.Fatal(err)
	}
	in := (&otpc.GenerateInput{AccountID: "acct-1", Request: otpc.GenerateReferenceNumberRequest{
		RequestHeader: otpc.RequestHeader{RequestID: "gen-1"},
		Amount:        otpc.Amount{AmountMicros: 1500_000000, CurrencyCode: "JPY"}}}).AppendJSON(nil)
	kv := runtimetest.NewMapKV()
	kv.Apply(runtime.ChangeSet{Namespace: "k", Changes: []runtime.KVChange{{Key: "seq", Value: []byte("41")}}})
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	call := func(ver string, tape *runtime.Tape, replay bool) ([]byte, runtime.ChangeSet) {
		t.Helper()
		env := runtime.CallEnv{Namespace: "k", KV: kv, Now: now}
		if replay {
			env.Replay = tape
		} else {
			env.Record = tape
		}
		out, cs, err := m.CallVersion(context.Background(), "k", ver, otpc.OpGenerate, in, env)
		if err != nil {
			t.Fatal(err)
		}
		return out, cs
	}
	tape := &runtime.Tape{}
	out1, cs1 := call("v1", tape, false)
	if len(tape.Random) == 0 || len(tape.KV) == 0 || tape.KV[0].Key != "seq" || string(tape.KV[0].Value) != "41" {
		t.Fatalf("tape %+v: want the random bytes and the read of seq", tape)
	}
	kv.Apply(cs1) // the recorded call committed: seq moved on
	out2, cs2 := call("v2", tape, true)
	if !bytes.Equal(out1, out2) || !sameChanges(cs1, cs2) || tape.Misses() != 0 {
		t.Fatalf("replay differs (misses %d):\n%s\n%s", tape.Misses(), out1, out2)
	}
	if live, _ := call("v2", &runtime.Tape{}, false); bytes.Equal(live, out1) {
		t.Fatal("a live call gave the recorded code: the tape proves nothing")
	}
	// An empty tape answers nothing: every host call is a miss, answered live.
	empty := &runtime.Tape{}
	call("v2", empty, true)
	if empty.Misses() < 2 {
		t.Fatalf("misses %d on an empty tape, want the random and KV reads", empty.Misses())
	}
}

func sameChanges(a, b runtime.ChangeSet) bool {
	if len(a.Changes) != len(b.Changes) {
		return false
	}
	for i := range a.Changes {
		if a.Changes[i].Key != b.Changes[i].Key || a.Changes[i].Delete != b.Changes[i].Delete || !bytes.Equal(a.Changes[i].Value, b.Changes[i].Value) {
			return false
		}
	}
	return true
}
