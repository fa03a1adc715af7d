package otpc

// Web-redirect authentication messages (spec §8). They travel signed and
// encrypted in the gspAuthenticationRequest / gspAuthenticationResponse
// query parameters, not as HTTP bodies.

// Values of the gspResult callback query parameter (spec §8) [V].
const (
	GSPResultSuccess       = 100 // the user authenticated
	GSPResultUserCancelled = 201 // the user cancelled
	GSPResultFatalError    = 202 // authentication failed for good
)

// AuthenticationRequest is what Google sends to the login page (OTPC type
// "Request") [S].
type AuthenticationRequest struct {
	// RequestID identifies this authentication; it becomes
	// authenticationRequestId in associateAccount.
	RequestID string `json:"requestId" otpc:"req,reqid"`
	// AssociationID, if set, is the account the user must authenticate as.
	AssociationID string `json:"associationId"`
	// PaymentIntegratorAccountID is the PIAID, optional [S].
	PaymentIntegratorAccountID string `json:"paymentIntegratorAccountId"`
}

// AuthenticationResponse is what the login page sends back to Google
// (OTPC type "Response") [V summary, S].
type AuthenticationResponse struct {
	// AssociationID echoes the request's associationId, if it had one.
	AssociationID string `json:"associationId"`
	// RequestID echoes the request's requestId (replay protection).
	RequestID string `json:"requestId" otpc:"req,reqid"`
	// AuthenticationResult is the outcome; it must be set when no further
	// server call follows, so otpcgate always sets it.
	AuthenticationResult *AuthenticationResult `json:"authenticationResult"`
}

// AuthenticationResult is the outcome of web authentication. Union: exactly
// one member [V].
//
//otpc:union
type AuthenticationResult struct {
	// Success: the user authenticated (gspResult 100).
	Success *Empty `json:"success"`
	// Cancelled: the user cancelled (gspResult 201).
	Cancelled *Empty `json:"cancelled"`
	// FatalError: authentication failed (gspResult 202).
	FatalError *Empty `json:"fatalError"`
}
