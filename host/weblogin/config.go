package weblogin

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/otpcgate/otpcgate/host/envelope"
	"github.com/otpcgate/otpcgate/host/plugincall"
	"github.com/otpcgate/otpcgate/keystore"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// DefaultPath is where the page lives below a merchant's base path.
const DefaultPath = "/authenticate"

// AllMerchants is the Config.Callbacks key whose prefixes apply to every
// merchant.
const AllMerchants = "*"

// Errors.
var (
	// ErrConfig reports an invalid Config.
	ErrConfig = errors.New("weblogin: bad config")
	// ErrUnknownMerchant is returned by a Directory for a base path that
	// serves no merchant.
	ErrUnknownMerchant = errors.New("weblogin: unknown merchant")
)

// Config tunes the login pages. The zero value is valid except that no
// callback is allowed until Callbacks names some.
type Config struct {
	// Path is the page's path below each merchant's base path. Default
	// DefaultPath.
	Path string
	// Callbacks maps a merchant id (or AllMerchants) to the https URL
	// prefixes gspCallbackUrl may start with, e.g.
	// "https://payments.google.com/payments/apis-secure/". See the
	// package doc for why an allow-list is needed.
	Callbacks map[string][]string
	// MaxURLBytes is the longest request URI served. Default 2048 (spec §8).
	MaxURLBytes int
	// FormTTL is how long a rendered form may be submitted. Default 15 min.
	FormTTL time.Duration
	// AccountMaxFailures failed logins within AccountLockout (counted from
	// the first) lock an account until the window ends. The count is kept
	// in the ledger, so a restart or a flood of other names does not lift
	// a lockout. Defaults 5 and 15 min.
	AccountMaxFailures int
	AccountLockout     time.Duration
	// IPMaxAttempts login attempts per IPWindow (counted from the first)
	// are allowed from one client address, across merchants. Counted in
	// the ledger like lockouts, so every host sharing the database
	// enforces one limit. Defaults 30 and 10 min.
	IPMaxAttempts int
	IPWindow      time.Duration
	// Secret keys the CSRF tokens. The gateway derives it from the KEK, so
	// every host sharing a database accepts the forms the others served.
	// Default: 32 random bytes per process (forms die with the process).
	Secret []byte
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger gets one line per outcome; never credentials. Default discard.
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	if c.Path == "" {
		c.Path = DefaultPath
	}
	if !strings.HasPrefix(c.Path, "/") || strings.HasSuffix(c.Path, "/") || strings.ContainsAny(c.Path, "?#%") {
		return c, fmt.Errorf("%w: path %q", ErrConfig, c.Path)
	}
	if c.MaxURLBytes <= 0 {
		c.MaxURLBytes = 2048
	}
	if c.FormTTL <= 0 {
		c.FormTTL = 15 * time.Minute
	}
	if c.AccountMaxFailures <= 0 {
		c.AccountMaxFailures = 5
	}
	if c.AccountLockout <= 0 {
		c.AccountLockout = 15 * time.Minute
	}
	if c.IPMaxAttempts <= 0 {
		c.IPMaxAttempts = 30
	}
	if c.IPWindow <= 0 {
		c.IPWindow = 10 * time.Minute
	}
	if len(c.Secret) == 0 {
		c.Secret = make([]byte, 32)
		_, _ = rand.Read(c.Secret) // never fails since Go 1.24
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// Merchant is what the page needs to know about one integration.
type Merchant struct {
	// ID is the merchant id (the plugin's KV namespace).
	ID string
	// Name is shown on the page; default ID.
	Name string
	// Codec and Keyset open Google's request and seal the response: the
	// keyset holds our private keys (self) and Google's public keys (peer).
	Codec  envelope.Codec
	Keyset func(ctx context.Context) (*keystore.Keyset, error)
	// PIAIDs are the merchant's payment integrator account ids. A request
	// naming a PIAID must name one of them; a request naming none is
	// accepted only if there is exactly one.
	PIAIDs []string
	// PluginID is the runtime plugin that checks credentials; default ID.
	PluginID string
	// Disabled merchants show an error page.
	Disabled bool
}

// Directory finds the merchant served at a base path ("" for the root);
// it returns ErrUnknownMerchant for a path that serves none. It is asked
// on every request, so it follows reloads.
type Directory interface {
	LoginMerchant(ctx context.Context, basePath string) (*Merchant, error)
}

// Plugins calls merchant plugins; *plugincall.Service implements it.
type Plugins interface {
	Call(ctx context.Context, t plugincall.Target, op otpc.Op, now time.Time, in, out otpc.Message) (plugincall.Changes, error)
}

// prefix is one parsed callback allow-list entry.
type prefix struct {
	host string // host[:port], lower case
	path string // always ends with "/"
}

func parsePrefix(raw string) (prefix, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return prefix{}, fmt.Errorf("%w: callback prefix %q: %w", ErrConfig, raw, err)
	}
	if u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return prefix{}, fmt.Errorf("%w: callback prefix %q must be https://host[:port]/path without query or fragment", ErrConfig, raw)
	}
	p := u.EscapedPath()
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return prefix{host: strings.ToLower(u.Host), path: p}, nil
}

// allows reports whether u (already parsed) is below the prefix. A prefix
// "https://h/cb/" allows "https://h/cb/x" and "https://h/cb" itself.
func (p prefix) allows(u *url.URL) bool {
	if strings.ToLower(u.Host) != p.host {
		return false
	}
	path := u.EscapedPath()
	return path+"/" == p.path || strings.HasPrefix(path, p.path)
}
