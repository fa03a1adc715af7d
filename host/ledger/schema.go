package ledger

import "github.com/otpcgate/otpcgate/internal/db"

// Component is the name under which the ledger's migrations are versioned
// in schema_migrations.
const Component = "ledger"

// migrations is the ledger schema. Released versions never change; add a new
// version for every change. Times are Unix milliseconds (UTC), money is
// int64 micros with an ISO 4217 currency code next to it.
var migrations = []db.Migration{
	{Version: 1, SQL: `
CREATE TABLE merchants (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	status     TEXT NOT NULL CHECK (status IN ('active','disabled')),
	created_ms INTEGER NOT NULL
);

CREATE TABLE piaids (
	piaid       TEXT PRIMARY KEY,
	merchant_id TEXT NOT NULL REFERENCES merchants(id),
	created_ms  INTEGER NOT NULL
);
CREATE INDEX piaids_merchant ON piaids(merchant_id);

-- One row per request answered with HTTP 200; never any other status.
CREATE TABLE idempotency (
	piaid        TEXT NOT NULL,
	request_id   TEXT NOT NULL,
	method       TEXT NOT NULL,
	request_hash BLOB NOT NULL,
	status       INTEGER NOT NULL CHECK (status = 200),
	body         BLOB NOT NULL,
	created_ms   INTEGER NOT NULL,
	PRIMARY KEY (piaid, request_id)
) WITHOUT ROWID;
CREATE INDEX idempotency_created ON idempotency(created_ms);

-- Reference numbers; (piaid, transaction_id) is the generateReferenceNumber key.
CREATE TABLE codes (
	piaid            TEXT NOT NULL,
	transaction_id   TEXT NOT NULL,
	merchant_id      TEXT NOT NULL,
	account_id       TEXT NOT NULL,
	gpt_hash         BLOB NOT NULL,
	amount_micros    INTEGER NOT NULL CHECK (amount_micros > 0),
	currency         TEXT NOT NULL,
	printable        TEXT,
	barcode          TEXT,
	state            TEXT NOT NULL CHECK (state IN
	                   ('issued','paid','partially_refunded','refunded','cancelled','expired')),
	expires_ms       INTEGER,
	paid_ms          INTEGER,
	paid_micros      INTEGER NOT NULL DEFAULT 0,
	integrator_tx_id TEXT,
	refunded_micros  INTEGER NOT NULL DEFAULT 0 CHECK (refunded_micros >= 0 AND refunded_micros <= paid_micros),
	created_ms       INTEGER NOT NULL,
	updated_ms       INTEGER NOT NULL,
	PRIMARY KEY (piaid, transaction_id)
) WITHOUT ROWID;
-- A printable string identifies one payable code per merchant at the till.
CREATE UNIQUE INDEX codes_live_printable ON codes(merchant_id, printable)
	WHERE state = 'issued' AND printable IS NOT NULL;
CREATE INDEX codes_printable ON codes(merchant_id, printable);
CREATE INDEX codes_expiry ON codes(expires_ms) WHERE state = 'issued';

CREATE TABLE refunds (
	piaid          TEXT NOT NULL,
	refund_id      TEXT NOT NULL,
	transaction_id TEXT NOT NULL,
	amount_micros  INTEGER NOT NULL CHECK (amount_micros > 0),
	currency       TEXT NOT NULL,
	kind           TEXT NOT NULL CHECK (kind IN ('sync','async')),
	state          TEXT NOT NULL CHECK (state IN ('succeeded','declined','acknowledged','failed')),
	result         BLOB,
	created_ms     INTEGER NOT NULL,
	updated_ms     INTEGER NOT NULL,
	PRIMARY KEY (piaid, refund_id),
	FOREIGN KEY (piaid, transaction_id) REFERENCES codes(piaid, transaction_id)
) WITHOUT ROWID;
CREATE INDEX refunds_tx ON refunds(piaid, transaction_id);

-- Only a hash of the Google payment token is kept, never the token.
CREATE TABLE associations (
	piaid           TEXT NOT NULL,
	association_id  TEXT NOT NULL,
	request_id      TEXT NOT NULL,
	issuer_id       TEXT NOT NULL,
	gpt_hash        BLOB NOT NULL,
	account_id      TEXT NOT NULL,
	auth_request_id TEXT NOT NULL,
	created_ms      INTEGER NOT NULL,
	PRIMARY KEY (piaid, association_id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX associations_gpt ON associations(piaid, gpt_hash);

CREATE TABLE auth_sessions (
	auth_request_id TEXT PRIMARY KEY,
	piaid           TEXT NOT NULL,
	account_id      TEXT NOT NULL,
	result          TEXT NOT NULL,
	created_ms      INTEGER NOT NULL,
	consumed_ms     INTEGER
);

CREATE TABLE statements (
	piaid        TEXT NOT NULL,
	statement_id TEXT NOT NULL,
	summary      BLOB NOT NULL,
	state        TEXT NOT NULL CHECK (state IN ('notified','accepted','accepted_with_modifications')),
	created_ms   INTEGER NOT NULL,
	updated_ms   INTEGER NOT NULL,
	PRIMARY KEY (piaid, statement_id)
) WITHOUT ROWID;

CREATE TABLE kv (
	namespace  TEXT NOT NULL,
	key        TEXT NOT NULL,
	value      BLOB NOT NULL,
	updated_ms INTEGER NOT NULL,
	PRIMARY KEY (namespace, key)
) WITHOUT ROWID;

CREATE TABLE outbox (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	merchant_id     TEXT NOT NULL,
	piaid           TEXT NOT NULL,
	method          TEXT NOT NULL,
	request_id      TEXT NOT NULL,
	payload         BLOB NOT NULL,
	ordering_key    TEXT NOT NULL,
	state           TEXT NOT NULL CHECK (state IN ('pending','delivered','dead')),
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_ms INTEGER NOT NULL,
	last_error      TEXT NOT NULL DEFAULT '',
	created_ms      INTEGER NOT NULL,
	delivered_ms    INTEGER,
	UNIQUE (piaid, request_id)
);
CREATE INDEX outbox_pending ON outbox(ordering_key, id) WHERE state = 'pending';
CREATE INDEX outbox_due ON outbox(next_attempt_ms) WHERE state = 'pending';

CREATE TABLE audit (
	id      INTEGER PRIMARY KEY AUTOINCREMENT,
	at_ms   INTEGER NOT NULL,
	actor   TEXT NOT NULL,
	action  TEXT NOT NULL,
	subject TEXT NOT NULL,
	before  BLOB,
	after   BLOB
);
CREATE INDEX audit_subject ON audit(subject, id);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
	BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
	BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
`},
	// 2: what each PIAID takes, decided by the host before a plugin is
	// asked (AmountRules). No row: any currency, any positive amount.
	{Version: 2, SQL: `
CREATE TABLE piaid_rules (
	piaid      TEXT PRIMARY KEY REFERENCES piaids(piaid),
	currencies TEXT NOT NULL DEFAULT '',
	min_micros INTEGER NOT NULL DEFAULT 0 CHECK (min_micros >= 0),
	max_micros INTEGER NOT NULL DEFAULT 0 CHECK (max_micros >= 0),
	updated_ms INTEGER NOT NULL
) WITHOUT ROWID;
`},
	// 3: each namespace's plugin KV usage, kept by ApplyKV so that the
	// per-merchant quota is checked without scanning the namespace.
	{Version: 3, SQL: `
CREATE TABLE kv_usage (
	namespace TEXT PRIMARY KEY,
	keys      INTEGER NOT NULL,
	bytes     INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO kv_usage(namespace, keys, bytes)
	SELECT namespace, COUNT(*), SUM(length(CAST(key AS BLOB)) + length(value)) FROM kv GROUP BY namespace;
`},
	// 4: per-merchant quota overrides; 0 (or no row) takes the ledger's
	// default (Options.KVQuota).
	{Version: 4, SQL: `
CREATE TABLE merchant_quotas (
	merchant_id  TEXT PRIMARY KEY REFERENCES merchants(id),
	kv_max_keys  INTEGER NOT NULL DEFAULT 0 CHECK (kv_max_keys >= 0),
	kv_max_bytes INTEGER NOT NULL DEFAULT 0 CHECK (kv_max_bytes >= 0),
	updated_ms   INTEGER NOT NULL
) WITHOUT ROWID;
`},
	// 5: failed sign-ins on the login page, per merchant and account (its
	// hash): a lockout survives a restart and is shared by every host.
	{Version: 5, SQL: `
CREATE TABLE login_failures (
	merchant_id TEXT NOT NULL,
	account     TEXT NOT NULL,
	failures    INTEGER NOT NULL CHECK (failures > 0),
	until_ms    INTEGER NOT NULL,
	PRIMARY KEY (merchant_id, account)
) WITHOUT ROWID;
CREATE INDEX login_failures_until ON login_failures(until_ms);
`},
	// 6: more of a merchant's own limits (0: the host's).
	{Version: 6, SQL: `
ALTER TABLE merchant_quotas ADD COLUMN log_bytes_per_minute INTEGER NOT NULL DEFAULT 0 CHECK (log_bytes_per_minute >= 0);
ALTER TABLE merchant_quotas ADD COLUMN plugin_versions INTEGER NOT NULL DEFAULT 0 CHECK (plugin_versions >= 0);
ALTER TABLE merchant_quotas ADD COLUMN plugin_bytes INTEGER NOT NULL DEFAULT 0 CHECK (plugin_bytes >= 0);
ALTER TABLE merchant_quotas ADD COLUMN plugin_memory_mib INTEGER NOT NULL DEFAULT 0 CHECK (plugin_memory_mib >= 0);
`},
}
