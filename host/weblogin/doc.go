// Package weblogin serves the integrator-hosted login page of OTPC v2
// web-redirect authentication (spec §8, flow steps 1–2 of §1.3).
//
// Google sends the user's browser with an HTTPS GET to
//
//	{merchant base path}/authenticate?gspMajorVersion=2
//	    &gspAuthenticationRequest=<sealed AuthenticationRequest>
//	    &gspCallbackUrl=<where to send the user back>
//	    [&gspAssociationId=<association to re-authenticate>]
//
// (the path below the base path is Config.Path, DefaultPath by default).
// The page opens the sealed request with the merchant's keyset (it must be
// signed by Google's key), shows a login form, lets the merchant's plugin
// check the credentials (OpAuthenticate), records the outcome as a ledger
// AuthSession keyed by the request's requestId, and redirects the browser
// to the callback with gspResult (100, 201 or 202) and a sealed
// AuthenticationResponse echoing requestId and associationId. Google's
// later associateAccount refers to that requestId.
//
// # Callback URL
//
// The spec's AuthenticationRequest [S] has requestId, associationId and
// paymentIntegratorAccountId only: Google does not put the callback inside
// the sealed request, so gspCallbackUrl arrives unprotected in the query
// string. An attacker could otherwise re-point a genuine request at their
// own site and collect the sealed response, so the callback must match one
// of the merchant's configured prefixes (Config.Callbacks): https only, same
// host and port, path below the prefix's path, no user info, no fragment.
// A callback that does not match gets an error page, never a redirect.
//
// # Protections
//
//   - The sealed request is verified again on every POST; a requestId that
//     already has an AuthSession (finished, cancelled or declined) is
//     refused, so a request cannot be replayed, and two concurrent
//     submissions cannot both succeed (the ledger insert is the arbiter).
//   - CSRF: the form carries an HMAC token over merchant, requestId and
//     expiry, keyed by a per-process secret, which must also be presented
//     in a SameSite=Strict, HttpOnly, Secure __Host- cookie.
//   - Rate limits: attempts per client IP per window (in memory), and
//     failed attempts per account, which lock the account's logins for a
//     while; those are kept in the ledger (by a hash of the account), so a
//     restart, another host or a flood of other names cannot lift a lock.
//   - Security headers: a CSP of default-src 'none' with a per-response
//     style nonce, form-action limited to the page and the callback's
//     origin (browsers apply form-action to the redirect after a POST),
//     frame-ancestors 'none', X-Frame-Options DENY, Cache-Control no-store,
//     Referrer-Policy no-referrer (the page's URL holds the sealed request).
//   - URLs up to Config.MaxURLBytes (2,048, the spec's figure) are served;
//     longer ones get a 414 page. POST bodies are bounded.
//   - Logs never carry the password, the sealed messages or the account id
//     in clear (a short hash identifies the account).
package weblogin
