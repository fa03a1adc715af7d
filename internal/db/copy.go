package db

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strings"
)

// ErrNotEmpty is returned by Copy when the target database already holds
// data: a copy runs once, into a database nothing else has written.
var ErrNotEmpty = errors.New("db: the target database is not empty")

// TableCopy is what Copy moved of one table and the checks it made.
type TableCopy struct {
	Table string
	// Rows is the number of rows, equal in source and target.
	Rows int64
	// Hash is an order-independent digest of the table's rows (the sum of
	// each row's SHA-256, modulo 2^256), equal in source and target.
	Hash string
}

// CheckEmpty returns ErrNotEmpty unless d holds no table but an empty
// schema_migrations (what Open creates).
func CheckEmpty(ctx context.Context, d *sql.DB) error {
	tables, err := listTables(ctx, d, EngineOf(d))
	if err != nil {
		return err
	}
	if len(tables) > 0 {
		return fmt.Errorf("%w: it has tables (%s); was it migrated already?", ErrNotEmpty, strings.Join(tables, ", "))
	}
	var n int
	if err := d.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil {
		return fmt.Errorf("db: %w", err)
	}
	if n > 0 {
		return fmt.Errorf("%w: schema_migrations has %d rows", ErrNotEmpty, n)
	}
	return nil
}

// Copy copies every table of the SQLite database src into the PostgreSQL
// database dst, which must have been empty (CheckEmpty) and then migrated
// to exactly src's schema versions by the same components. It runs in one
// transaction on dst: the rows the migrations seeded are replaced, every
// table is filled in foreign-key order, identity counters are moved past
// the copied ids, and each table's row count and digest are compared with
// src's before COMMIT. On any difference nothing is committed.
//
// src must not be written while Copy runs (stop the gateway first).
func Copy(ctx context.Context, src, dst *sql.DB) ([]TableCopy, error) {
	if EngineOf(src) != SQLite || EngineOf(dst) != Postgres {
		return nil, errors.New("db: Copy moves a SQLite database into PostgreSQL")
	}
	if err := sameVersions(ctx, src, dst); err != nil {
		return nil, err
	}
	srcTables, err := listTables(ctx, src, SQLite)
	if err != nil {
		return nil, err
	}
	order, err := fkOrder(ctx, dst)
	if err != nil {
		return nil, err
	}
	if a, b := slices.Sorted(slices.Values(srcTables)), slices.Sorted(slices.Values(order)); !slices.Equal(a, b) {
		return nil, fmt.Errorf("db: the two schemas hold different tables: source %v, target %v", a, b)
	}
	tx, err := dst.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("db: copy: %w", err)
	}
	defer tx.Rollback()
	for _, t := range slices.Backward(order) {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+quoteIdent(t)); err != nil {
			return nil, fmt.Errorf("db: copy: clear %s: %w", t, err)
		}
	}
	var report []TableCopy
	for _, t := range order {
		cols, err := pgColumns(ctx, tx, t)
		if err != nil {
			return nil, err
		}
		n, sum, err := copyTable(ctx, src, tx, t, cols)
		if err != nil {
			return nil, err
		}
		dn, dsum, err := digest(ctx, tx, t, cols)
		if err != nil {
			return nil, err
		}
		if dn != n || dsum != sum {
			return nil, fmt.Errorf("db: copy: %s differs after the copy: source %d rows %x, target %d rows %x", t, n, sum, dn, dsum)
		}
		if err := advanceIdentities(ctx, tx, t, cols); err != nil {
			return nil, err
		}
		report = append(report, TableCopy{Table: t, Rows: n, Hash: hex.EncodeToString(sum[:])})
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("db: copy: commit: %w", err)
	}
	return report, nil
}

type column struct {
	name     string
	bytes    bool // bytea
	identity bool
}

type queryer interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

func listTables(ctx context.Context, d queryer, e Engine) ([]string, error) {
	q := `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'schema_migrations'`
	if e == Postgres {
		q = `SELECT table_name FROM information_schema.tables
			WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name <> 'schema_migrations'`
	}
	return queryStrings(ctx, d, q)
}

func queryStrings(ctx context.Context, d queryer, q string, args ...any) ([]string, error) {
	rows, err := d.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("db: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("db: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func sameVersions(ctx context.Context, src, dst *sql.DB) error {
	const q = `SELECT component || ':' || CAST(version AS TEXT) FROM schema_migrations ORDER BY 1`
	a, err := queryStrings(ctx, src, q)
	if err != nil {
		return err
	}
	b, err := queryStrings(ctx, dst, q)
	if err != nil {
		return err
	}
	if !slices.Equal(a, b) {
		return fmt.Errorf("db: source and target schemas differ (source %v, target %v): migrate both with this build first", a, b)
	}
	return nil
}

// fkOrder lists dst's tables so that every table comes after the tables
// its foreign keys reference.
func fkOrder(ctx context.Context, dst *sql.DB) ([]string, error) {
	tables, err := listTables(ctx, dst, Postgres)
	if err != nil {
		return nil, err
	}
	slices.Sort(tables)
	rows, err := dst.QueryContext(ctx, `SELECT c.conrelid::regclass::text, c.confrelid::regclass::text
		FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
		WHERE c.contype = 'f' AND n.nspname = current_schema()`)
	if err != nil {
		return nil, fmt.Errorf("db: foreign keys: %w", err)
	}
	defer rows.Close()
	deps := map[string][]string{}
	for rows.Next() {
		var from, to string
		if err := rows.Scan(&from, &to); err != nil {
			return nil, fmt.Errorf("db: foreign keys: %w", err)
		}
		if from != to {
			deps[from] = append(deps[from], to)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(t string) error
	visit = func(t string) error {
		switch state[t] {
		case 1:
			return fmt.Errorf("db: foreign keys form a cycle through %s", t)
		case 2:
			return nil
		}
		state[t] = 1
		for _, d := range deps[t] {
			if err := visit(d); err != nil {
				return err
			}
		}
		state[t] = 2
		order = append(order, t)
		return nil
	}
	for _, t := range tables {
		if err := visit(t); err != nil {
			return nil, err
		}
	}
	return order, nil
}

func pgColumns(ctx context.Context, tx *sql.Tx, table string) ([]column, error) {
	rows, err := tx.QueryContext(ctx, `SELECT column_name, data_type, is_identity FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position`, table)
	if err != nil {
		return nil, fmt.Errorf("db: columns of %s: %w", table, err)
	}
	defer rows.Close()
	var cols []column
	for rows.Next() {
		var name, typ, ident string
		if err := rows.Scan(&name, &typ, &ident); err != nil {
			return nil, err
		}
		cols = append(cols, column{name: name, bytes: typ == "bytea", identity: ident == "YES"})
	}
	return cols, rows.Err()
}

func columnList(cols []column) string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = quoteIdent(c.name)
	}
	return strings.Join(names, ", ")
}

// copyTable streams src's rows of table into dst and returns their count
// and digest.
func copyTable(ctx context.Context, src *sql.DB, tx *sql.Tx, table string, cols []column) (int64, [32]byte, error) {
	var sum [32]byte
	rows, err := src.QueryContext(ctx, `SELECT `+columnList(cols)+` FROM `+quoteIdent(table))
	if err != nil {
		return 0, sum, fmt.Errorf("db: copy: read %s: %w", table, err)
	}
	defer rows.Close()
	ph := strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ")
	ins, err := tx.PrepareContext(ctx, `INSERT INTO `+quoteIdent(table)+` (`+columnList(cols)+`) OVERRIDING SYSTEM VALUE VALUES (`+ph+`)`)
	if err != nil {
		return 0, sum, fmt.Errorf("db: copy: %s: %w", table, err)
	}
	defer ins.Close()
	n, err := eachRow(rows, len(cols), func(vals []any) error {
		for i, c := range cols {
			// SQLite's dynamic typing may hand back text from a BLOB
			// column or bytes from a TEXT one; the target's type decides.
			switch v := vals[i].(type) {
			case string:
				if c.bytes {
					vals[i] = []byte(v)
				}
			case []byte:
				if !c.bytes {
					vals[i] = string(v)
				}
			}
		}
		if _, err := ins.ExecContext(ctx, vals...); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		addDigest(&sum, rowDigest(vals))
		return nil
	})
	if err != nil {
		return 0, sum, fmt.Errorf("db: copy %s: %w", table, err)
	}
	return n, sum, nil
}

// digest reads table back from dst inside the copy's transaction.
func digest(ctx context.Context, tx *sql.Tx, table string, cols []column) (int64, [32]byte, error) {
	var sum [32]byte
	rows, err := tx.QueryContext(ctx, `SELECT `+columnList(cols)+` FROM `+quoteIdent(table))
	if err != nil {
		return 0, sum, fmt.Errorf("db: verify %s: %w", table, err)
	}
	defer rows.Close()
	n, err := eachRow(rows, len(cols), func(vals []any) error {
		addDigest(&sum, rowDigest(vals))
		return nil
	})
	if err != nil {
		return 0, sum, fmt.Errorf("db: verify %s: %w", table, err)
	}
	return n, sum, nil
}

// eachRow scans every row of rows (ncols columns, as driver values) into
// one reused slice and hands it to fn; it returns how many rows it read.
func eachRow(rows *sql.Rows, ncols int, fn func(vals []any) error) (int64, error) {
	vals := make([]any, ncols)
	ptrs := make([]any, ncols)
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var n int64
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return n, err
		}
		if err := fn(vals); err != nil {
			return n, err
		}
		n++
	}
	return n, rows.Err()
}

func advanceIdentities(ctx context.Context, tx *sql.Tx, table string, cols []column) error {
	for _, c := range cols {
		if !c.identity {
			continue
		}
		q := fmt.Sprintf(`SELECT setval(pg_get_serial_sequence(?, ?), COALESCE(MAX(%s), 0) + 1, false) FROM %s`,
			quoteIdent(c.name), quoteIdent(table))
		if _, err := tx.ExecContext(ctx, q, table, c.name); err != nil {
			return fmt.Errorf("db: copy: identity of %s.%s: %w", table, c.name, err)
		}
	}
	return nil
}

// rowDigest hashes one row's values with their kinds, so that 1 and "1"
// differ but text and bytes with the same content (one value in SQLite's
// dynamic typing and PostgreSQL's static one) do not.
func rowDigest(vals []any) [32]byte {
	h := sha256.New()
	var b [9]byte
	for _, v := range vals {
		switch v := v.(type) {
		case nil:
			h.Write([]byte{'n'})
		case int64:
			b[0] = 'i'
			binary.BigEndian.PutUint64(b[1:], uint64(v))
			h.Write(b[:])
		case float64:
			b[0] = 'f'
			binary.BigEndian.PutUint64(b[1:], math.Float64bits(v))
			h.Write(b[:])
		case string:
			writeBytes(h, []byte(v))
		case []byte:
			writeBytes(h, v)
		default:
			writeBytes(h, fmt.Appendf(nil, "%T:%v", v, v))
		}
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func writeBytes(h interface{ Write([]byte) (int, error) }, p []byte) {
	var b [9]byte
	b[0] = 'b'
	binary.BigEndian.PutUint64(b[1:], uint64(len(p)))
	h.Write(b[:])
	h.Write(p)
}

// addDigest adds d to sum modulo 2^256 (big-endian), so a table's digest
// does not depend on row order.
func addDigest(sum *[32]byte, d [32]byte) {
	var carry uint64
	for i := 24; i >= 0; i -= 8 {
		var s uint64
		s, carry = bits.Add64(binary.BigEndian.Uint64(sum[i:]), binary.BigEndian.Uint64(d[i:]), carry)
		binary.BigEndian.PutUint64(sum[i:], s)
	}
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
