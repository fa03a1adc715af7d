package runtime

import (
	"errors"
	"fmt"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// Kind classifies why a plugin call failed. The gateway answers every kind
// with a retryable error (HTTP 503) so that Google retries; the kinds exist
// for metrics, logs and tests.
type Kind int

// Failure kinds of a call.
const (
	// KindTrap: the guest trapped or exited (panic, unreachable, memory fault,
	// memory exhausted, stack overflow).
	KindTrap Kind = iota + 1
	// KindTimeout: the call's deadline passed or its context was cancelled
	// while the guest ran or while waiting for an instance.
	KindTimeout
	// KindLimit: a per-call limit was breached (input, output, log, KV, memory).
	KindLimit
	// KindABI: the guest broke the ABI (bad pointer or length, bad frame).
	KindABI
	// KindPluginError: the guest returned a well-formed error frame.
	KindPluginError
	// KindHost: a host-side failure during the call (KV read failed, a host
	// function panicked, the version is closing).
	KindHost
	// KindRefusal: the guest answered with a refusal frame
	// (abi.StatusRefusal); CallError.Refusal holds its body. It is an
	// answer, not a failure: the instance is healthy and the caller
	// decides whether the refusal is acceptable. Its KV writes are dropped.
	KindRefusal
)

// String names the kind.
func (k Kind) String() string {
	switch k {
	case KindTrap:
		return "trap"
	case KindTimeout:
		return "timeout"
	case KindLimit:
		return "limit"
	case KindABI:
		return "abi"
	case KindPluginError:
		return "plugin_error"
	case KindHost:
		return "host"
	case KindRefusal:
		return "refusal"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// CallError is the error of a failed Call. Instances that produced a
// CallError of any kind but KindPluginError and KindRefusal are closed,
// never reused.
type CallError struct {
	Kind    Kind
	Plugin  string // plugin (merchant) id
	Version string // plugin version
	Op      otpc.Op
	Msg     string // short, human-readable; never contains the request payload
	Err     error  // underlying error, if any
	// Refusal is the body of a refusal frame (KindRefusal only): the JSON
	// of an otpc.ErrorResponse, copied out of guest memory.
	Refusal []byte
	// Stack is what the guest printed from its panic on (message and
	// goroutine trace with the handler's file:line), at most 4 KiB, for
	// the plugin's author; "" when it printed none. It is the plugin's own
	// text and never goes into the host's log.
	Stack string
}

// Error formats the error.
func (e *CallError) Error() string {
	s := fmt.Sprintf("plugin %s@%s op %s: %s: %s", e.Plugin, e.Version, e.Op, e.Kind, e.Msg)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying error.
func (e *CallError) Unwrap() error { return e.Err }

// IsKind reports whether err is a *CallError of kind k.
func IsKind(err error, k Kind) bool {
	var ce *CallError
	return errors.As(err, &ce) && ce.Kind == k
}

// Sentinel errors of the Manager.
var (
	// ErrUnknownPlugin: no version of the plugin is loaded.
	ErrUnknownPlugin = errors.New("runtime: unknown plugin")
	// ErrUnknownVersion: the plugin has no such loaded version.
	ErrUnknownVersion = errors.New("runtime: unknown plugin version")
	// ErrNoActiveVersion: the plugin has versions but none is active.
	ErrNoActiveVersion = errors.New("runtime: plugin has no active version")
	// ErrVersionExists: Load was called twice with the same version.
	ErrVersionExists = errors.New("runtime: plugin version already loaded")
	// ErrClosed: the Manager is closed.
	ErrClosed = errors.New("runtime: manager closed")
	// ErrHashMismatch: the wasm bytes do not match the expected sha256.
	ErrHashMismatch = errors.New("runtime: wasm sha256 mismatch")
	// ErrMemoryLimit is wrapped by the CallError (KindLimit) of a call that
	// ran its instance out of linear memory: the costliest failure, since
	// the memory is grown to the cap and the instance is replaced.
	ErrMemoryLimit = errors.New("runtime: linear memory exhausted")
)

// LoadError reports why a module was refused at Load (bad imports, missing
// exports, wrong ABI version, compile or initialisation failure).
type LoadError struct {
	Plugin  string
	Version string
	Msg     string
	Err     error
}

// Error formats the error.
func (e *LoadError) Error() string {
	s := fmt.Sprintf("plugin %s@%s refused: %s", e.Plugin, e.Version, e.Msg)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying error.
func (e *LoadError) Unwrap() error { return e.Err }
