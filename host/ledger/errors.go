package ledger

import (
	"errors"
	"fmt"
)

// Sentinel errors. Check them with errors.Is; the pipeline maps them to the
// spec's error responses (noted per error).
var (
	// ErrNotFound: the looked-up row does not exist.
	ErrNotFound = errors.New("ledger: not found")
	// ErrClosed: the ledger was closed.
	ErrClosed = errors.New("ledger: closed")
	// ErrTxDone: a Tx was used after its closure returned.
	ErrTxDone = errors.New("ledger: transaction already finished")
	// ErrPanic: an Apply closure panicked; its changes were rolled back.
	ErrPanic = errors.New("ledger: commit closure panicked")
	// ErrCommitFailed: COMMIT failed; nothing of the batch is stored (503).
	ErrCommitFailed = errors.New("ledger: commit failed")

	// ErrIdempotencyViolation: same (PIAID, requestId) with a different
	// request (412 IDEMPOTENCY_VIOLATION).
	ErrIdempotencyViolation = errors.New("ledger: idempotency violation")
	// ErrAlreadyProcessed: the request was already answered; errors.As a
	// *ReplayError to get the stored record.
	ErrAlreadyProcessed = errors.New("ledger: request already processed")

	// ErrUnknownPIAID: the PIAID is not registered to a merchant (404).
	ErrUnknownPIAID = errors.New("ledger: unknown PIAID")
	// ErrMerchantDisabled: the merchant may not create new codes.
	ErrMerchantDisabled = errors.New("ledger: merchant disabled")
	// ErrDuplicate: a row with this key already exists.
	ErrDuplicate = errors.New("ledger: already exists")
	// ErrMerchantActive: the change needs the merchant disabled first.
	ErrMerchantActive = errors.New("ledger: merchant is active")
	// ErrInUse: a merchant or PIAID holds records and cannot be deleted or
	// released; errors.As an *InUseError for the counts.
	ErrInUse = errors.New("ledger: in use")

	// ErrUnknownTransaction: no code with this transaction id (404
	// invalidIdentifier).
	ErrUnknownTransaction = errors.New("ledger: unknown transaction")
	// ErrInvalidTransition: the state machine forbids the change (400
	// preconditionViolation); errors.As a *StateError for the states.
	ErrInvalidTransition = errors.New("ledger: invalid state transition")
	// ErrAlreadyPaid: a paid code cannot be cancelled (200 with the
	// "already paid" result member).
	ErrAlreadyPaid = errors.New("ledger: reference number already paid")
	// ErrCodeExpired: the code's expiry passed before the payment.
	ErrCodeExpired = errors.New("ledger: reference number expired")
	// ErrNotPaid: refunds need a paid code (400 preconditionViolation).
	ErrNotPaid = errors.New("ledger: transaction not paid")
	// ErrRefundExceedsRemaining: succeeded plus in-flight refunds would
	// exceed the paid amount (400 preconditionViolation).
	ErrRefundExceedsRemaining = errors.New("ledger: refund exceeds remaining amount")
	// ErrCurrencyMismatch: amount currency differs from the code's (400).
	ErrCurrencyMismatch = errors.New("ledger: currency mismatch")
	// ErrInvalidAmount: amount not positive or not the code's amount (400).
	ErrInvalidAmount = errors.New("ledger: invalid amount")
	// ErrPrintableInUse: another live code of the merchant shows the same
	// printable string.
	ErrPrintableInUse = errors.New("ledger: printable string in use by a live code")

	// ErrAssociationConflict: associationId or token already bound by a
	// different association attempt (HTTP error per spec §5.2).
	ErrAssociationConflict = errors.New("ledger: association conflict")
	// ErrAuthSessionConsumed: the authentication session was already used.
	ErrAuthSessionConsumed = errors.New("ledger: authentication session already consumed")

	// ErrKVQuota: a KV change set would take a namespace (a merchant's
	// plugin data) above its quota; nothing of it is committed.
	ErrKVQuota = errors.New("ledger: plugin kv quota exceeded")
	// ErrKVLimit: a KV change set breaks a size limit.
	ErrKVLimit = errors.New("ledger: kv limit exceeded")
)

// ReplayError carries the record of a request that was already answered,
// e.g. by another process that won the race to commit it.
type ReplayError struct{ Record Record }

// Error names the replayed request.
func (e *ReplayError) Error() string {
	return fmt.Sprintf("ledger: request %s already processed", e.Record.RequestID)
}

// Is makes errors.Is(err, ErrAlreadyProcessed) true.
func (e *ReplayError) Is(target error) bool { return target == ErrAlreadyProcessed }

// StateError describes a refused state transition.
type StateError struct {
	Kind string // "code", "refund", "statement"
	ID   string
	From string
	Op   string
	// Err is the specific sentinel (ErrInvalidTransition, ErrAlreadyPaid,
	// ErrNotPaid, ...).
	Err error
}

// Error describes the refused transition.
func (e *StateError) Error() string {
	return fmt.Sprintf("ledger: %s %s in state %s: cannot %s: %v", e.Kind, e.ID, e.From, e.Op, e.Err)
}

// Unwrap returns the specific sentinel.
func (e *StateError) Unwrap() error { return e.Err }
