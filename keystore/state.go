package keystore

import "slices"

// transitions is the key state machine. Promotion to primary happens only
// from active; the key it replaces is demoted to active in the same
// transaction (never by a direct SetState), so there is never a moment
// without a primary during a rotation. primary→disabled is the one way to
// drop a primary without a successor: the emergency exit for a compromised
// key. destroyed is final.
var transitions = map[State][]State{
	StatePending:   {StateActive, StateDisabled},
	StateActive:    {StatePrimary, StateRetiring, StateDisabled},
	StatePrimary:   {StateDisabled},
	StateRetiring:  {StateActive, StateDisabled},
	StateDisabled:  {StateActive, StateDestroyed},
	StateDestroyed: nil,
}

// CanTransition reports whether SetState allows from → to.
func CanTransition(from, to State) bool {
	return slices.Contains(transitions[from], to)
}

// validState reports whether s is one of the six states.
func validState(s State) bool {
	_, ok := transitions[s]
	return ok
}

// holdsPrivateInMemory reports whether snapshots carry the decrypted private
// half of a self key in state s. Disabled keys are kept at rest only, so a
// key taken out of service also leaves process memory.
func holdsPrivateInMemory(s State) bool {
	switch s {
	case StatePending, StateActive, StatePrimary, StateRetiring:
		return true
	}
	return false
}
