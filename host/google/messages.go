package google

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"strings"
	"time"

	"github.com/otpcgate/otpcgate/host/ledger"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// Message is what every OTPC v2 message type of sdk/otpc implements.
type Message = otpc.Message

// request is a decoded request with access to its header.
type request struct {
	msg    Message
	header *otpc.RequestHeader
}

// response is an empty response value of a method with access to its
// header.
type response struct {
	msg    Message
	header *otpc.ResponseHeader
}

// newRequest returns an empty request of method, or false for a method that
// is not Google-hosted.
func newRequest(method string) (request, bool) {
	m, ok := otpc.LookupMethod(otpc.Google, method)
	if !ok {
		return request{}, false
	}
	r := m.NewRequest()
	return request{r, r.Header()}, true
}

// newResponse returns an empty response of method.
func newResponse(method string) (response, bool) {
	m, ok := otpc.LookupMethod(otpc.Google, method)
	if !ok {
		return response{}, false
	}
	r := m.NewResponse()
	return response{r, r.Header()}, true
}

// decodeRequest parses payload as a request of method.
func decodeRequest(method string, payload []byte) (request, error) {
	r, ok := newRequest(method)
	if !ok {
		return r, fmt.Errorf("%w: %q is not a Google-hosted method", ErrInvalidRequest, method)
	}
	if err := r.msg.UnmarshalJSON(payload); err != nil {
		return r, fmt.Errorf("%w: %s payload: %w", ErrInvalidRequest, method, err)
	}
	return r, nil
}

// stamp fills the header for one attempt: the stable requestId, the PIAID,
// protocol version 2 and a fresh requestTimestamp.
func stamp(h *otpc.RequestHeader, requestID, piaid string, now time.Time) {
	h.RequestID = requestID
	h.PaymentIntegratorAccountID = piaid
	h.ProtocolVersion = otpc.Version{Major: otpc.ProtocolMajor}
	h.RequestTimestamp = otpc.TimestampOf(now)
}

// NewRequestID returns a fresh random requestId (spec alphabet, 33
// characters).
func NewRequestID() string {
	var b [15]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return "otpcgate-" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// Notification describes one notification to queue in the outbox.
type Notification struct {
	// MerchantID owns the notification; the Resolver maps it to a route.
	MerchantID string
	// PIAID is the merchant's account id at Google (path and header).
	PIAID string
	// Method is the Google-hosted method, e.g.
	// otpc.MethodReferenceNumberPaidNotification.
	Method string
	// RequestID is the requestId, stable across retries. Empty means a
	// fresh one from NewRequestID.
	RequestID string
	// OrderingKey serialises delivery (use the transaction id, so a refund
	// result never overtakes its paid notification). Empty means RequestID.
	OrderingKey string
	// Request is the request message; its header is filled in here and
	// again on each attempt.
	Request Message
}

// OutboxItem turns n into the ledger outbox item the caller enqueues with
// tx.Enqueue in the same transaction as the change that causes it. The
// payload is the request JSON with a normalised header and no
// requestTimestamp (set on every attempt). The request must pass Validate
// (with any timestamp), otherwise ErrInvalidRequest: a notification that can
// never be delivered is refused before it is stored.
func OutboxItem(n Notification) (ledger.OutboxItem, error) {
	if n.MerchantID == "" || n.PIAID == "" || n.Request == nil {
		return ledger.OutboxItem{}, fmt.Errorf("%w: notification needs merchant, PIAID and request", ErrInvalidRequest)
	}
	if n.RequestID == "" {
		n.RequestID = NewRequestID()
	}
	if !otpc.ValidRequestID(n.RequestID) {
		return ledger.OutboxItem{}, fmt.Errorf("%w: requestId %q", ErrInvalidRequest, n.RequestID)
	}
	r, err := decodeRequest(n.Method, n.Request.AppendJSON(nil))
	if err != nil {
		return ledger.OutboxItem{}, err
	}
	stamp(r.header, n.RequestID, n.PIAID, time.Now())
	if err := r.msg.Validate(); err != nil {
		return ledger.OutboxItem{}, fmt.Errorf("%w: %s: %w", ErrInvalidRequest, n.Method, err)
	}
	r.header.RequestTimestamp = otpc.Timestamp{}
	key := n.OrderingKey
	if key == "" {
		key = n.RequestID
	}
	return ledger.OutboxItem{
		MerchantID: n.MerchantID, PIAID: n.PIAID, Method: n.Method, RequestID: n.RequestID,
		Payload: r.msg.AppendJSON(nil), OrderingKey: key,
	}, nil
}
