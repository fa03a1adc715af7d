package ledger

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
)

// TestKVQuota: usage is kept exactly through puts, overwrites and deletes;
// a change set that would take a namespace above its quota fails with
// ErrKVQuota and leaves nothing of itself (nor of the record committed with
// it); deletes always pass; another namespace is not affected.
func TestKVQuota(t *testing.T) {
	l, _ := openTest(t, Options{KVQuota: KVQuota{MaxKeys: 4, MaxBytes: 100}})
	ctx := context.Background()
	apply := func(code, ns string, ch ...KVChange) error {
		return l.Apply(ctx, func(tx *Tx) error {
			if err := tx.ApplyKV(ns, ch); err != nil {
				return err
			}
			return tx.CreateCode(newCode(code))
		})
	}
	usage := func(ns string) KVUsage {
		u, err := l.KVUsage(ctx, ns)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	steps := []struct {
		name    string
		changes []KVChange
		wantErr bool
		want    KVUsage
	}{
		{"two keys", []KVChange{{Key: "a", Value: []byte("0123456789")}, {Key: "b", Value: []byte("xy")}}, false, KVUsage{2, 14}},
		{"overwrite shrinks", []KVChange{{Key: "a", Value: []byte("01")}}, false, KVUsage{2, 6}},
		{"same key twice in one set", []KVChange{{Key: "c", Value: []byte("1")}, {Key: "c", Value: []byte("123")}}, false, KVUsage{3, 10}},
		{"bytes over quota", []KVChange{{Key: "d", Value: []byte(strings.Repeat("z", 95))}}, true, KVUsage{3, 10}},
		{"keys over quota", []KVChange{{Key: "d", Value: []byte("1")}, {Key: "e", Value: []byte("1")}}, true, KVUsage{3, 10}},
		{"up to the key quota", []KVChange{{Key: "d", Value: []byte("1")}}, false, KVUsage{4, 12}},
		{"delete", []KVChange{{Key: "a", Delete: true}, {Key: "nope", Delete: true}}, false, KVUsage{3, 9}},
	}
	for i, st := range steps {
		code := "code-" + strconv.Itoa(i)
		err := apply(code, testMerchant, st.changes...)
		if st.wantErr != (err != nil) || (st.wantErr && !errors.Is(err, ErrKVQuota)) {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := usage(testMerchant); got != st.want {
			t.Fatalf("%s: usage %+v, want %+v", st.name, got, st.want)
		}
		if st.wantErr {
			if _, ok, _ := l.KVGet(ctx, testMerchant, st.changes[0].Key); ok {
				t.Fatalf("%s: a refused change was stored", st.name)
			}
			if codeExists(t, l, code) {
				t.Fatalf("%s: the record committed with the refused change set was stored", st.name)
			}
		}
	}
	// The counter matches the table it summarises.
	var keys, bytes int64
	if err := l.DB().QueryRow(`SELECT COUNT(*), COALESCE(SUM(octet_length(key) + octet_length(value)), 0) FROM kv WHERE namespace = ?`,
		testMerchant).Scan(&keys, &bytes); err != nil {
		t.Fatal(err)
	}
	if got := usage(testMerchant); got != (KVUsage{keys, bytes}) {
		t.Fatalf("usage %+v, table %d keys %d bytes", got, keys, bytes)
	}
	// Another merchant has its own quota.
	if err := apply("code-other", "other", KVChange{Key: "a", Value: []byte(strings.Repeat("q", 90))}); err != nil {
		t.Fatal(err)
	}
}

// TestKVUsageMigrationBackfills: a database written before migration 3
// (plugin KV but no kv_usage) gets its usage counted when it is opened.
func TestKVUsageMigrationBackfills(t *testing.T) {
	l, path := openTest(t, Options{})
	ctx := context.Background()
	if err := l.Apply(ctx, func(tx *Tx) error {
		return tx.ApplyKV(testMerchant, []KVChange{{Key: "a", Value: []byte("123")}, {Key: "bb", Value: []byte("4")}})
	}); err != nil {
		t.Fatal(err)
	}
	// Take the database back to before migration 3 (and the later ones).
	for _, q := range []string{`DROP TABLE kv_usage`, `DROP TABLE merchant_quotas`, `DROP TABLE login_failures`,
		`DELETE FROM schema_migrations WHERE component = 'ledger' AND version >= 3`} {
		if _, err := l.DB().Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	l2, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if u, err := l2.KVUsage(ctx, testMerchant); err != nil || u != (KVUsage{Keys: 2, Bytes: 7}) {
		t.Fatalf("usage after migration %+v %v, want 2 keys, 7 bytes", u, err)
	}
}

// TestKVQuotaOverride: a merchant's own quota replaces the default for its
// namespace only; zero fields take the default again; lowering it below
// the usage leaves only deletions.
func TestKVQuotaOverride(t *testing.T) {
	l, _ := openTest(t, Options{KVQuota: KVQuota{MaxKeys: 2, MaxBytes: 1000}})
	ctx := context.Background()
	const other = "other"
	mustApply(t, l, func(tx *Tx) error { return tx.CreateMerchant(Merchant{ID: other, Name: "Other"}) })
	put := func(ns string, keys ...string) error {
		var ch []KVChange
		for _, k := range keys {
			ch = append(ch, KVChange{Key: k, Value: []byte("v")})
		}
		return l.Apply(ctx, func(tx *Tx) error { return tx.ApplyKV(ns, ch) })
	}
	setQuota := func(q KVQuota) {
		mustApply(t, l, func(tx *Tx) error { return tx.SetMerchantQuotas(testMerchant, MerchantQuotas{KV: q}) })
	}
	setQuota(KVQuota{MaxKeys: 4})
	if q, err := l.KVQuotaOf(ctx, testMerchant); err != nil || q != (KVQuota{MaxKeys: 4, MaxBytes: 1000}) {
		t.Fatalf("quota of %s: %+v %v", testMerchant, q, err)
	}
	if q, err := l.KVQuotaOf(ctx, other); err != nil || q != l.KVQuota() {
		t.Fatalf("quota of %s: %+v %v, want the default", other, q, err)
	}
	steps := []struct {
		name string
		ns   string
		keys []string
		ok   bool
	}{
		{"own quota: 4 keys", testMerchant, []string{"a", "b", "c", "d"}, true},
		{"own quota: a fifth", testMerchant, []string{"e"}, false},
		{"the other keeps the default: 2", other, []string{"a", "b"}, true},
		{"the other's third", other, []string{"c"}, false},
	}
	for _, s := range steps {
		if err := put(s.ns, s.keys...); (err == nil) != s.ok || (err != nil && !errors.Is(err, ErrKVQuota)) {
			t.Fatalf("%s: %v, want ok=%v", s.name, err, s.ok)
		}
	}
	setQuota(KVQuota{}) // back to the default of 2, below the usage of 4
	if err := put(testMerchant, "e"); !errors.Is(err, ErrKVQuota) {
		t.Fatalf("growth over the default: %v", err)
	}
	if err := l.Apply(ctx, func(tx *Tx) error { return tx.ApplyKV(testMerchant, []KVChange{{Key: "a", Delete: true}}) }); err != nil {
		t.Fatalf("a deletion under a lowered quota: %v", err)
	}
	if err := l.Apply(ctx, func(tx *Tx) error {
		return tx.SetMerchantQuotas(testMerchant, MerchantQuotas{KV: KVQuota{MaxKeys: -1}})
	}); err == nil {
		t.Fatal("a negative quota was accepted")
	}
}

// TestMerchantQuotas: a merchant's own limits round-trip, are listed, and
// the zero value returns it to the host's.
func TestMerchantQuotas(t *testing.T) {
	l, _ := openTest(t, Options{})
	ctx := context.Background()
	want := MerchantQuotas{KV: KVQuota{MaxBytes: 4096}, LogBytesPerMinute: 2048, PluginVersions: 3, PluginBytes: 1 << 20, PluginMemoryMiB: 32}
	mustApply(t, l, func(tx *Tx) error { return tx.SetMerchantQuotas(testMerchant, want) })
	if got, err := l.MerchantQuotas(ctx, testMerchant); err != nil || got != want {
		t.Fatalf("quotas %+v %v, want %+v", got, err, want)
	}
	if all, err := l.AllMerchantQuotas(ctx); err != nil || len(all) != 1 || all[testMerchant] != want {
		t.Fatalf("all quotas %+v %v", all, err)
	}
	mustApply(t, l, func(tx *Tx) error { return tx.SetMerchantQuotas(testMerchant, MerchantQuotas{}) })
	if all, err := l.AllMerchantQuotas(ctx); err != nil || len(all) != 0 {
		t.Fatalf("after reset %+v %v", all, err)
	}
	for _, bad := range []MerchantQuotas{{LogBytesPerMinute: -1}, {PluginVersions: -1}, {KV: KVQuota{MaxBytes: -1}},
		{PluginBytes: -1}, {PluginMemoryMiB: -1}} {
		if err := l.Apply(ctx, func(tx *Tx) error { return tx.SetMerchantQuotas(testMerchant, bad) }); err == nil {
			t.Errorf("negative quotas %+v accepted", bad)
		}
	}
}
