package admin

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	merchants "github.com/otpcgate/otpcgate/host/merchant"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// MerchantEvents handles the events that start on the merchant's side
// (host/merchant.Service implements it). The merchant API is the HTTP face
// of it, scoped like every merchant route to the token's own merchant.
type MerchantEvents interface {
	ReportPayment(ctx context.Context, merchantID string, p merchants.Payment) (merchants.PaymentResult, error)
	ReportRefundResult(ctx context.Context, merchantID string, o merchants.RefundOutcome) (merchants.RefundOutcomeResult, error)
	AcceptStatement(ctx context.Context, merchantID string, a merchants.Acceptance) (merchants.AcceptanceResult, error)
	StatementDetails(ctx context.Context, merchantID, piaid, statementID string, offset, count int32) (*otpc.RemittanceStatementDetailsResponse, error)
}

// eventError maps the merchant service's errors to statuses with the next
// step to take.
func eventError(err error) error {
	var ref *otpc.Refusal
	switch {
	case errors.As(err, &ref):
		// The merchant's own plugin said no: its member's 4xx, never a retry.
		return fail(ref.Result.HTTPStatus(), err.Error(), "the merchant plugin refused this event ("+ref.Member()+"); nothing was recorded")
	case errors.Is(err, merchants.ErrInvalid):
		return fail(http.StatusBadRequest, err.Error(), "fix the request; nothing was recorded")
	case errors.Is(err, merchants.ErrNotFound):
		return fail(http.StatusNotFound, err.Error(), "check the printable code / transaction, refund or statement id")
	case errors.Is(err, merchants.ErrConflict):
		return fail(http.StatusConflict, err.Error(), "the ledger already records something else for this; use a new key only for a new event")
	case errors.Is(err, merchants.ErrUnavailable):
		return fail(http.StatusServiceUnavailable, err.Error(), "retry with the same key; nothing was recorded")
	}
	return err
}

func (s *Server) events() (MerchantEvents, error) {
	if s.d.Events == nil {
		return nil, fail(http.StatusServiceUnavailable, "merchant events are not served by this host", "")
	}
	return s.d.Events, nil
}

func (s *Server) reportPayment(c echo.Context) error {
	ev, err := s.events()
	if err != nil {
		return err
	}
	var p merchants.Payment
	if err := bind(c, maxJSONBody, &p); err != nil {
		return err
	}
	res, err := ev.ReportPayment(c.Request().Context(), c.Param("id"), p)
	if err != nil {
		return eventError(err)
	}
	return c.JSON(http.StatusOK, res)
}

func (s *Server) reportRefundResult(c echo.Context) error {
	ev, err := s.events()
	if err != nil {
		return err
	}
	var o merchants.RefundOutcome
	if err := bind(c, maxJSONBody, &o); err != nil {
		return err
	}
	res, err := ev.ReportRefundResult(c.Request().Context(), c.Param("id"), o)
	if err != nil {
		return eventError(err)
	}
	return c.JSON(http.StatusOK, res)
}

// acceptBody is the optional body of a statement acceptance.
type acceptBody struct {
	Modification *otpc.AcceptRemittanceStatementWithModificationsRequest `json:"modification,omitempty"`
}

func (s *Server) acceptStatement(c echo.Context) error {
	ev, err := s.events()
	if err != nil {
		return err
	}
	var b acceptBody
	if c.Request().ContentLength != 0 {
		if err := bind(c, maxJSONBody, &b); err != nil {
			return err
		}
	}
	res, err := ev.AcceptStatement(c.Request().Context(), c.Param("id"), merchants.Acceptance{
		PIAID: c.Param("piaid"), StatementID: c.Param("statement"), Modification: b.Modification,
	})
	if err != nil {
		return eventError(err)
	}
	return c.JSON(http.StatusOK, res)
}

func (s *Server) statementDetails(c echo.Context) error {
	ev, err := s.events()
	if err != nil {
		return err
	}
	offset, count := int32(0), int32(1000)
	for name, dst := range map[string]*int32{"offset": &offset, "count": &count} {
		if v := c.QueryParam(name); v != "" {
			n, err := strconv.ParseInt(v, 10, 32)
			if err != nil || n < 0 || (name == "count" && (n == 0 || n > 1000)) {
				return fail(http.StatusBadRequest, name+" must be a non-negative integer (count 1-1000)", "")
			}
			*dst = int32(n)
		}
	}
	res, err := ev.StatementDetails(c.Request().Context(), c.Param("id"), c.Param("piaid"), c.Param("statement"), offset, count)
	if err != nil {
		return eventError(err)
	}
	return c.JSONBlob(http.StatusOK, res.AppendJSON(nil))
}
