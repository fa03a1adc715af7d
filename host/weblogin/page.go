package weblogin

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"html/template"
	"net/http"
)

// Form field names posted by the page (the gsp* names are Google's query
// parameters, carried along so the POST can verify the request again).
const (
	paramVersion     = "gspMajorVersion"
	paramRequest     = "gspAuthenticationRequest"
	paramAssociation = "gspAssociationId"
	paramCallback    = "gspCallbackUrl"
	paramResult      = "gspResult"
	paramResponse    = "gspAuthenticationResponse"
	fieldCSRF        = "csrf"
	fieldAccount     = "account"
	fieldPassword    = "password"
	fieldAction      = "action"
)

// pageData fills page.
type pageData struct {
	Nonce    string
	Merchant string
	// Form is set for the login form; otherwise Message is an error page.
	Form    bool
	Message string
	// Form fields.
	Action  string
	Hidden  []hidden
	Account string
	Error   string
	Locked  bool
}

type hidden struct{ Name, Value string }

// page is the whole UI: no scripts, no external assets; the one inline
// style element is allowed by the response's CSP nonce.
var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{if .Form}}Sign in{{else}}Cannot continue{{end}} · {{.Merchant}}</title>
<style nonce="{{.Nonce}}">
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;min-height:100vh;background:#f1f3f4;color:#202124;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;display:flex;align-items:flex-start;justify-content:center}
main{width:100%;max-width:420px;margin:24px 16px;padding:28px 24px;background:#fff;border-radius:16px;box-shadow:0 1px 3px rgba(0,0,0,.15)}
h1{margin:0 0 4px;font-size:1.4rem}
.lead{margin:0 0 20px;color:#5f6368}
label{display:block;margin:16px 0 6px;font-weight:600;font-size:.95rem}
input{display:block;width:100%;padding:12px 14px;font-size:1rem;border:1px solid #9aa0a6;border-radius:8px;background:#fff;color:inherit}
input:focus{outline:2px solid #1a73e8;outline-offset:1px;border-color:#1a73e8}
.actions{display:flex;flex-direction:column;gap:10px;margin-top:24px}
button{width:100%;min-height:48px;padding:12px;font-size:1rem;font-weight:600;border-radius:24px;border:0;cursor:pointer}
.primary{background:#1a73e8;color:#fff}
.secondary{background:#fff;color:#1a73e8;border:1px solid #dadce0}
.error{margin:0 0 8px;padding:12px 14px;border-radius:8px;background:#fce8e6;color:#a50e0e}
.note{margin:20px 0 0;font-size:.85rem;color:#5f6368}
</style>
</head>
<body>
<main>
<h1>{{.Merchant}}</h1>
{{- if .Form}}
<p class="lead">Sign in to link your account with Google.</p>
{{- with .Error}}
<p class="error" id="error" role="alert">{{.}}</p>
{{- end}}
<form method="post" action="{{.Action}}">
{{- range .Hidden}}
<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{- end}}
<label for="account">Account ID</label>
<input id="account" name="account" autocomplete="username" autocapitalize="none" spellcheck="false" maxlength="128" required value="{{.Account}}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" maxlength="256" required>
<div class="actions">
<button id="login" class="primary" type="submit" name="action" value="login"{{if .Locked}} disabled{{end}}>Sign in</button>
<button id="cancel" class="secondary" type="submit" name="action" value="cancel" formnovalidate>Cancel</button>
</div>
</form>
<p class="note">You will return to Google after signing in.</p>
{{- else}}
<p class="error" id="error" role="alert">{{.Message}}</p>
<p class="note">Nothing was linked. Close this page and start again from Google.</p>
{{- end}}
</main>
</body>
</html>
`))

// newNonce returns a fresh CSP nonce.
func newNonce() string {
	var b [18]byte
	_, _ = rand.Read(b[:]) // never fails since Go 1.24
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// setHeaders sets the security headers of every page response.
// formOrigin, if set, is the callback origin the form's redirect goes to.
func setHeaders(h http.Header, nonce, formOrigin string) {
	formAction := "'self'"
	if formOrigin != "" {
		formAction += " " + formOrigin
	}
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'nonce-"+nonce+"'; form-action "+formAction+
		"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Strict-Transport-Security", "max-age=31536000")
}

// render writes the page with status.
func render(w http.ResponseWriter, status int, d pageData, formOrigin string) {
	d.Nonce = newNonce()
	var buf bytes.Buffer
	if err := page.Execute(&buf, d); err != nil {
		// The template is fixed and its data plain strings: cannot fail.
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	setHeaders(w.Header(), d.Nonce, formOrigin)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
