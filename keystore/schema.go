package keystore

import "github.com/otpcgate/otpcgate/internal/db"

// migrations is the keystore's schema, applied by db.Migrate under the
// component name "keystore". Times are Unix nanoseconds (0 = never expires).
var migrations = []db.Migration{{Version: 1, SQL: v1 + v1VersionRow, Postgres: db.Postgres.TranslateDDL(v1)},
	// 2: the change counter gets a typed table of its own (it was an
	// integer kept in keystore_meta's BLOB column, which only SQLite's
	// dynamic typing allows).
	{Version: 2, SQL: `
CREATE TABLE keystore_version (
	id      INTEGER PRIMARY KEY CHECK (id = 1),
	version INTEGER NOT NULL
);
INSERT INTO keystore_version(id, version) SELECT 1, value FROM keystore_meta WHERE name = 'version';
DELETE FROM keystore_meta WHERE name = 'version';
`, Postgres: `
CREATE TABLE keystore_version (
	id      BIGINT PRIMARY KEY CHECK (id = 1),
	version BIGINT NOT NULL
);
INSERT INTO keystore_version(id, version) VALUES (1, 0);
`}}

const v1VersionRow = `INSERT INTO keystore_meta(name, value) VALUES ('version', 0);
`

const v1 = `
CREATE TABLE keystore_meta (
	name  TEXT PRIMARY KEY,
	value BLOB NOT NULL
);
CREATE TABLE keystore_keysets (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	kind       TEXT NOT NULL CHECK (kind IN ('pgp', 'jwk')),
	env        TEXT NOT NULL CHECK (env IN ('sandbox', 'production')),
	created_ns INTEGER NOT NULL,
	UNIQUE (name, env)
);
CREATE TABLE keystore_keys (
	keyset_id       TEXT NOT NULL REFERENCES keystore_keysets(id),
	id              TEXT NOT NULL,
	kind            TEXT NOT NULL CHECK (kind IN ('pgp', 'jwk')),
	owner           TEXT NOT NULL CHECK (owner IN ('self', 'peer')),
	state           TEXT NOT NULL CHECK (state IN ('pending', 'active', 'primary', 'retiring', 'disabled', 'destroyed')),
	algorithm       TEXT NOT NULL,
	user_id         TEXT NOT NULL DEFAULT '',
	can_encrypt     INTEGER NOT NULL,
	can_sign        INTEGER NOT NULL,
	created_ns      INTEGER NOT NULL,
	expires_ns      INTEGER NOT NULL DEFAULT 0,
	added_ns        INTEGER NOT NULL,
	updated_ns      INTEGER NOT NULL,
	public_material BLOB NOT NULL,
	private_sealed  BLOB,
	PRIMARY KEY (keyset_id, id),
	CHECK (owner = 'self' OR private_sealed IS NULL),
	CHECK (state <> 'destroyed' OR private_sealed IS NULL)
);
CREATE UNIQUE INDEX keystore_keys_one_primary ON keystore_keys(keyset_id, owner) WHERE state = 'primary';
CREATE INDEX keystore_keys_expires ON keystore_keys(expires_ns) WHERE expires_ns > 0;
CREATE TABLE keystore_events (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT,
	at_ns      INTEGER NOT NULL,
	actor      TEXT NOT NULL,
	keyset_id  TEXT NOT NULL,
	key_id     TEXT NOT NULL DEFAULT '',
	from_state TEXT NOT NULL DEFAULT '',
	to_state   TEXT NOT NULL DEFAULT '',
	note       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX keystore_events_keyset ON keystore_events(keyset_id, seq);
`
