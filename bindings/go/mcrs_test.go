package mcrs_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	mcrs "github.com/mcrs-project/mcrs-go"
)

func mustGet(t *testing.T, c *mcrs.Client, key string) any {
	t.Helper()
	v, found, err := c.Get(ctx, key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if !found {
		t.Fatalf("Get(%q): miss", key)
	}
	return v
}

func mustMiss(t *testing.T, c *mcrs.Client, key string) {
	t.Helper()
	v, found, err := c.Get(ctx, key)
	if err != nil || found || v != nil {
		t.Fatalf("Get(%q) = %v, %v, %v; want a miss", key, v, found, err)
	}
}

func wantIs(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v (%T); want errors.Is(err, %v)", err, err, target)
	}
}

func TestLibraryVersion(t *testing.T) {
	if v := mcrs.LibraryVersion(); v == "" || !strings.Contains(v, ".") {
		t.Fatalf("LibraryVersion() = %q", v)
	}
	if got := mcrs.StatusText(mcrs.StatusTimeout); got != "timeout" {
		t.Fatalf("StatusText(timeout) = %q", got)
	}
	if got := mcrs.StatusText(mcrs.StatusServerDown); got == "unknown status" || got == "" {
		t.Fatalf("StatusText(server down) = %q", got)
	}
	if got := mcrs.StatusText(999); got != "unknown status" {
		t.Fatalf("StatusText(999) = %q", got)
	}
}

func TestNewErrors(t *testing.T) {
	_, err := mcrs.New(nil)
	wantIs(t, err, mcrs.ErrNoServers)

	_, err = mcrs.New([]string{"localhost:notaport"})
	wantIs(t, err, mcrs.ErrInvalidArgument)
	var e *mcrs.Error
	if !errors.As(err, &e) || e.Key != "localhost:notaport" || e.Detail == "" {
		t.Fatalf("bad address error = %#v", err)
	}

	for name, opt := range map[string]mcrs.Option{
		"MaxPoolSize(0)":       mcrs.MaxPoolSize(0),
		"MaxPoolSize(-1)":      mcrs.MaxPoolSize(-1),
		"Timeout(0)":           mcrs.Timeout(0),
		"Timeout(-1s)":         mcrs.Timeout(-time.Second),
		"ConnectTimeout(0)":    mcrs.ConnectTimeout(0),
		"Distribution(9)":      mcrs.Distribution(9),
		"RetryAttempts(-1)":    mcrs.RetryAttempts(-1),
		"Weights(0)":           mcrs.Weights(map[string]uint32{"127.0.0.1:1": 0}),
		"DeadTimeout(50d)":     mcrs.DeadTimeout(50 * 24 * time.Hour),
		"RetryTimeout(-1ms)":   mcrs.RetryTimeout(-time.Millisecond),
		"PoolIdleTimeout(-1s)": mcrs.PoolIdleTimeout(-time.Second),
	} {
		_, err := mcrs.New([]string{"127.0.0.1:1"}, opt)
		if !errors.Is(err, mcrs.ErrInvalidArgument) {
			t.Errorf("New with %s: %v; want ErrInvalidArgument", name, err)
		}
	}
	_, err = mcrs.New([]string{"127.0.0.1:1"}, mcrs.KeyPrefix("bad prefix"))
	wantIs(t, err, mcrs.ErrInvalidKey)

	// every option at a valid value, and a nil option, are accepted
	c, err := mcrs.New([]string{"127.0.0.1:1", "unix:/tmp/nonexistent.sock", "[::1]:11211", "localhost"},
		mcrs.ConnectTimeout(200*time.Millisecond), mcrs.Timeout(time.Second),
		mcrs.NoDelay(false), mcrs.KeepAlive(true), mcrs.IgnoreExc(true), mcrs.DefaultNoreply(false),
		mcrs.KeyPrefix("p:"), mcrs.AllowUnicodeKeys(true), mcrs.MaxPoolSize(4),
		mcrs.RetryAttempts(3), mcrs.RetryTimeout(500*time.Microsecond), mcrs.DeadTimeout(time.Minute),
		mcrs.PoolIdleTimeout(time.Minute), mcrs.Distribution(mcrs.Ketama), mcrs.FlushOnRejoin(false),
		mcrs.Weights(map[string]uint32{"localhost": 3}), mcrs.WithSerde(nil), nil)
	if err != nil {
		t.Fatalf("New with all options: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestSetGetDefaultSerde(t *testing.T) {
	c, _ := setup(t)
	cases := []struct {
		key  string
		in   any
		want any
	}{
		{"str", "some_value", "some_value"},
		{"utf8", "héllo wörld ✓", "héllo wörld ✓"},
		{"empty_str", "", ""},
		{"bytes", []byte{0, 1, 2, 0xff}, []byte{0, 1, 2, 0xff}},
		{"empty_bytes", []byte{}, []byte{}},
		{"nil_bytes", []byte(nil), []byte{}},
		{"int", 42, int64(42)},
		{"neg", -17, int64(-17)},
		{"int8", int8(-8), int64(-8)},
		{"int16", int16(1600), int64(1600)},
		{"int32", int32(-32), int64(-32)},
		{"int64", int64(math.MinInt64), int64(math.MinInt64)},
		{"uint", uint(7), int64(7)},
		{"uint8", uint8(255), int64(255)},
		{"uint16", uint16(65535), int64(65535)},
		{"uint32", uint32(math.MaxUint32), int64(math.MaxUint32)},
		{"uint64", uint64(math.MaxUint64), uint64(math.MaxUint64)},
		{"named_str", myString("named"), "named"},
		{"named_int", myInt(5), int64(5)},
		{"named_bytes", myBytes("raw"), []byte("raw")},
		{"big", bytes.Repeat([]byte("x"), 500_000), bytes.Repeat([]byte("x"), 500_000)},
	}
	for _, tc := range cases {
		if err := c.Set(ctx, tc.key, tc.in); err != nil {
			t.Fatalf("Set(%q, %v): %v", tc.key, tc.in, err)
		}
		if got := mustGet(t, c, tc.key); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Get(%q) = %#v (%T); want %#v (%T)", tc.key, got, got, tc.want, tc.want)
		}
	}
	// the raw bytes and flags on the wire are pymemcache's
	raw, found, err := c.GetBytes(ctx, "int")
	if err != nil || !found || string(raw) != "42" {
		t.Fatalf("GetBytes(int) = %q, %v, %v", raw, found, err)
	}
	raw, _, _ = c.GetBytes(ctx, "utf8")
	if string(raw) != "héllo wörld ✓" {
		t.Fatalf("GetBytes(utf8) = %q", raw)
	}
	if raw, found, err := c.GetBytes(ctx, "nope"); err != nil || found || raw != nil {
		t.Fatalf("GetBytes(miss) = %q, %v, %v", raw, found, err)
	}
	mustMiss(t, c, "nope")
}

type myString string
type myInt int
type myBytes []byte

func TestDefaultSerdeDirect(t *testing.T) {
	s := mcrs.DefaultSerde
	for _, tc := range []struct {
		in    any
		data  string
		flags uint32
	}{
		{"abc", "abc", mcrs.FlagText},
		{[]byte("abc"), "abc", mcrs.FlagBytes},
		{123, "123", mcrs.FlagInteger},
		{int64(-5), "-5", mcrs.FlagInteger},
		{uint64(18446744073709551615), "18446744073709551615", mcrs.FlagInteger},
	} {
		data, flags, err := s.Serialize("k", tc.in)
		if err != nil || string(data) != tc.data || flags != tc.flags {
			t.Errorf("Serialize(%#v) = %q, %d, %v", tc.in, data, flags, err)
		}
	}
	for _, bad := range []any{nil, true, 1.5, float32(2), struct{}{}, map[string]int{}, []int{1}, &[]byte{}} {
		if _, _, err := s.Serialize("k", bad); !errors.Is(err, mcrs.ErrUnsupportedValue) {
			t.Errorf("Serialize(%#v): %v; want ErrUnsupportedValue", bad, err)
		}
	}
	for _, tc := range []struct {
		data  string
		flags uint32
		want  any
	}{
		{"x", 0, []byte("x")},
		{"x", mcrs.FlagText, "x"},
		{"42", mcrs.FlagInteger, int64(42)},
		{"42", mcrs.FlagLong, int64(42)},
		{"-42", mcrs.FlagInteger, int64(-42)},
		{"18446744073709551615", mcrs.FlagInteger, uint64(math.MaxUint64)},
		{"raw", 1 << 8, []byte("raw")}, // unknown flags: raw bytes, as pymemcache
	} {
		got, err := s.Deserialize("k", []byte(tc.data), tc.flags)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Deserialize(%q, %d) = %#v, %v; want %#v", tc.data, tc.flags, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		data  string
		flags uint32
	}{
		{"\x80\x04K\x01.", mcrs.FlagPickle},
		{"x", mcrs.FlagCompressed | mcrs.FlagText},
		{"12x", mcrs.FlagInteger},
		{"99999999999999999999999", mcrs.FlagLong},
	} {
		if _, err := s.Deserialize("k", []byte(tc.data), tc.flags); !errors.Is(err, mcrs.ErrUnsupportedValue) {
			t.Errorf("Deserialize(%q, %d): %v; want ErrUnsupportedValue", tc.data, tc.flags, err)
		}
	}
}

func TestWrongValueType(t *testing.T) {
	c, _ := setup(t)
	for _, v := range []any{3.14, true, nil, struct{ A int }{1}, map[string]any{"a": 1}} {
		err := c.Set(ctx, "k", v)
		wantIs(t, err, mcrs.ErrUnsupportedValue)
		if !strings.Contains(err.Error(), "WithSerde") {
			t.Errorf("error should point to WithSerde: %v", err)
		}
	}
	mustMiss(t, c, "k")
	_, err := c.SetMany(ctx, map[string]any{"a": "ok", "b": 1.5})
	wantIs(t, err, mcrs.ErrUnsupportedValue)
	mustMiss(t, c, "a") // nothing was sent
	wantIs(t, c.Cas(ctx, "k", 2.5, 1), mcrs.ErrUnsupportedValue)

	// a Python-pickled value cannot be read with the default serde, but its
	// bytes can
	if err := rawWriter(t, c).Set(ctx, "pickled", flagged{[]byte("\x80\x04K\x01."), mcrs.FlagPickle}); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.Get(ctx, "pickled")
	wantIs(t, err, mcrs.ErrUnsupportedValue)
	if b, found, err := c.GetBytes(ctx, "pickled"); err != nil || !found || string(b) != "\x80\x04K\x01." {
		t.Fatalf("GetBytes(pickled) = %q, %v, %v", b, found, err)
	}
	_, err = c.GetMany(ctx, []string{"pickled"})
	wantIs(t, err, mcrs.ErrUnsupportedValue)
	_, err = c.GetsMany(ctx, []string{"pickled"})
	wantIs(t, err, mcrs.ErrUnsupportedValue)
	_, _, _, err = c.Gets(ctx, "pickled")
	wantIs(t, err, mcrs.ErrUnsupportedValue)
}

// flagged is a value with explicit flags, for flagSerde.
type flagged struct {
	data  []byte
	flags uint32
}

// flagSerde stores flagged values as given, other values as the default
// serde does; built with SerdeFunc and a nil deserializer (the default).
var flagSerde = mcrs.SerdeFunc(func(key string, v any) ([]byte, uint32, error) {
	if f, ok := v.(flagged); ok {
		return f.data, f.flags, nil
	}
	return mcrs.DefaultSerde.Serialize(key, v)
}, nil)

// rawWriter is a client on c's server that writes flagged values.
func rawWriter(t *testing.T, c *mcrs.Client) *mcrs.Client {
	t.Helper()
	st, err := c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return newClient(t, keysOf(st), mcrs.WithSerde(flagSerde), mcrs.DefaultNoreply(false))
}

func TestSerdeFuncFlags(t *testing.T) {
	c, _ := setup(t, mcrs.WithSerde(flagSerde))
	if err := c.Set(ctx, "f", flagged{[]byte("77"), mcrs.FlagInteger}); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, c, "f"); got != int64(77) {
		t.Fatalf("Get(f) = %#v", got)
	}
	if err := c.Set(ctx, "s", "plain"); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, c, "s"); got != "plain" {
		t.Fatalf("Get(s) = %#v", got)
	}
}

func TestStoreCommands(t *testing.T) {
	c, _ := setup(t)
	// add
	if err := c.Add(ctx, "k", "v1"); err != nil {
		t.Fatal(err)
	}
	wantIs(t, c.Add(ctx, "k", "v2"), mcrs.ErrNotStored)
	if got := mustGet(t, c, "k"); got != "v1" {
		t.Fatalf("after add: %v", got)
	}
	// replace
	if err := c.Replace(ctx, "k", "v3"); err != nil {
		t.Fatal(err)
	}
	wantIs(t, c.Replace(ctx, "absent", "x"), mcrs.ErrNotStored)
	mustMiss(t, c, "absent")
	// append / prepend keep the stored flags (text)
	if err := c.Append(ctx, "k", "-end"); err != nil {
		t.Fatal(err)
	}
	if err := c.Prepend(ctx, "k", "start-"); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, c, "k"); got != "start-v3-end" {
		t.Fatalf("after append/prepend: %v", got)
	}
	wantIs(t, c.Append(ctx, "absent", "x"), mcrs.ErrNotStored)
	wantIs(t, c.Prepend(ctx, "absent", "x"), mcrs.ErrNotStored)
	// an integer can be extended with digits and stays an integer
	c.Set(ctx, "n", 12)
	c.Append(ctx, "n", 3)
	if got := mustGet(t, c, "n"); got != int64(123) {
		t.Fatalf("append to int: %#v", got)
	}

	var e *mcrs.Error
	err := c.Add(ctx, "k", "again")
	if !errors.As(err, &e) || e.Status != mcrs.StatusNotStored || e.Op != "add" || e.Key != "k" {
		t.Fatalf("Add error = %#v", err)
	}
	if msg := err.Error(); msg != `mcrs: add "k": not stored` {
		t.Fatalf("message %q", msg)
	}
	if errors.Is(err, mcrs.ErrExists) || e.Timeout() {
		t.Fatal("NOT_STORED must match only ErrNotStored")
	}
}

func TestExpire(t *testing.T) {
	t.Parallel() // sleeps; uses its own server
	c, _ := setup(t)
	if err := c.Set(ctx, "e", "v", mcrs.Expire(1)); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, "past", "v", mcrs.ExpireAt(time.Now().Add(-time.Hour))); err != nil {
		t.Fatal(err)
	}
	mustGet(t, c, "e")
	mustMiss(t, c, "past")
	wantIs(t, c.Set(ctx, "x", "v", mcrs.Expire(-1)), mcrs.ErrInvalidArgument)
	wantIs(t, c.Set(ctx, "x", "v", mcrs.Expire(math.MaxInt32+1)), mcrs.ErrInvalidArgument)
	time.Sleep(2100 * time.Millisecond)
	mustMiss(t, c, "e")
}

func TestGetsCas(t *testing.T) {
	c, _ := setup(t)
	if _, cas, found, err := c.Gets(ctx, "k"); err != nil || found || cas != 0 {
		t.Fatalf("Gets(miss) = %v %v %v", cas, found, err)
	}
	c.Set(ctx, "k", "v1")
	v, cas, found, err := c.Gets(ctx, "k")
	if err != nil || !found || v != "v1" || cas == 0 {
		t.Fatalf("Gets = %v %v %v %v", v, cas, found, err)
	}
	if err := c.Cas(ctx, "k", "v2", cas); err != nil {
		t.Fatalf("Cas: %v", err)
	}
	wantIs(t, c.Cas(ctx, "k", "v3", cas), mcrs.ErrExists) // stale
	wantIs(t, c.Cas(ctx, "absent", "v", 1), mcrs.ErrNotFound)
	if got := mustGet(t, c, "k"); got != "v2" {
		t.Fatalf("after cas: %v", got)
	}
	// Cas with noreply: no outcome reported
	_, cas, _, _ = c.Gets(ctx, "k")
	if err := c.Cas(ctx, "k", 5, cas, mcrs.Noreply(true)); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, c, "k"); got != int64(5) {
		t.Fatalf("after noreply cas: %v", got)
	}
}

func TestGatGats(t *testing.T) {
	t.Parallel() // sleeps; uses its own server
	c, _ := setup(t)
	c.Set(ctx, "k", "v", mcrs.Expire(1))
	v, found, err := c.Gat(ctx, "k", 100)
	if err != nil || !found || v != "v" {
		t.Fatalf("Gat = %v %v %v", v, found, err)
	}
	v, cas, found, err := c.Gats(ctx, "k", 100)
	if err != nil || !found || v != "v" || cas == 0 {
		t.Fatalf("Gats = %v %v %v %v", v, cas, found, err)
	}
	if _, found, err := c.Gat(ctx, "absent", 1); err != nil || found {
		t.Fatalf("Gat(miss) = %v %v", found, err)
	}
	if _, _, found, err := c.Gats(ctx, "absent", 1); err != nil || found {
		t.Fatalf("Gats(miss) = %v %v", found, err)
	}
	_, _, err = c.Gat(ctx, "k", -1)
	wantIs(t, err, mcrs.ErrInvalidArgument)
	time.Sleep(1500 * time.Millisecond)
	mustGet(t, c, "k") // the touch kept it
}

func TestGetManyGetsMany(t *testing.T) {
	c, _ := setup(t)
	c.Set(ctx, "a", "A")
	c.Set(ctx, "b", 2)
	c.Set(ctx, "c", []byte("C"))
	got, err := c.GetMany(ctx, []string{"a", "b", "c", "missing", "a"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"a": "A", "b": int64(2), "c": []byte("C")}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("GetMany = %#v", got)
	}
	empty, err := c.GetMany(ctx, nil)
	if err != nil || empty == nil || len(empty) != 0 {
		t.Fatalf("GetMany(nil) = %#v, %v", empty, err)
	}
	gm, err := c.GetsMany(ctx, []string{"a", "b", "missing"})
	if err != nil || len(gm) != 2 || gm["a"].Value != "A" || gm["b"].Value != int64(2) || gm["a"].CAS == 0 {
		t.Fatalf("GetsMany = %#v, %v", gm, err)
	}
	_, cas, _, _ := c.Gets(ctx, "a")
	if gm["a"].CAS != cas {
		t.Fatalf("GetsMany cas %d, Gets cas %d", gm["a"].CAS, cas)
	}
	if err := c.Cas(ctx, "a", "A2", gm["a"].CAS); err != nil {
		t.Fatal(err)
	}
	// many keys (several pipelined chunks)
	items := map[string]any{}
	var keys []string
	for i := 0; i < 1000; i++ {
		k := fmt.Sprintf("key%d", i)
		keys = append(keys, k)
		if i%3 != 0 {
			items[k] = i
		}
	}
	if failed, err := c.SetMany(ctx, items); err != nil || len(failed) != 0 {
		t.Fatalf("SetMany = %v, %v", failed, err)
	}
	got, err = c.GetMany(ctx, keys)
	if err != nil || len(got) != len(items) {
		t.Fatalf("GetMany(1000) = %d items, %v", len(got), err)
	}
	for k, v := range items {
		if got[k] != int64(v.(int)) {
			t.Fatalf("GetMany[%s] = %#v; want %v", k, got[k], v)
		}
	}
	// an invalid key fails the whole call
	_, err = c.GetMany(ctx, []string{"a", "bad key"})
	wantIs(t, err, mcrs.ErrInvalidKey)
	_, err = c.GetsMany(ctx, []string{""})
	wantIs(t, err, mcrs.ErrInvalidKey)
}

func TestSetMany(t *testing.T) {
	c, _ := setup(t)
	failed, err := c.SetMany(ctx, map[string]any{"x": "1", "y": 2, "z": []byte("3")}, mcrs.Expire(100))
	if err != nil || len(failed) != 0 {
		t.Fatalf("SetMany = %v, %v", failed, err)
	}
	got, _ := c.GetMany(ctx, []string{"x", "y", "z"})
	if !reflect.DeepEqual(got, map[string]any{"x": "1", "y": int64(2), "z": []byte("3")}) {
		t.Fatalf("after SetMany: %#v", got)
	}
	// too large for the server (default item size 1 MB): reported as failed
	big := bytes.Repeat([]byte("b"), 2<<20)
	failed, err = c.SetMany(ctx, map[string]any{"ok1": "v", "big": big, "ok2": "w"})
	if err != nil || !reflect.DeepEqual(failed, []string{"big"}) {
		t.Fatalf("SetMany with a too large value = %v, %v", failed, err)
	}
	mustGet(t, c, "ok1")
	mustGet(t, c, "ok2")
	mustMiss(t, c, "big")
	// with noreply nothing is known to fail
	failed, err = c.SetMany(ctx, map[string]any{"big": big, "n": "v"}, mcrs.Noreply(true))
	if err != nil || len(failed) != 0 {
		t.Fatalf("SetMany noreply = %v, %v", failed, err)
	}
	if got := mustGet(t, c, "n"); got != "v" {
		t.Fatal(got)
	}
	if failed, err := c.SetMany(ctx, nil); err != nil || failed != nil {
		t.Fatalf("SetMany(nil) = %v, %v", failed, err)
	}
	_, err = c.SetMany(ctx, map[string]any{"bad key": 1})
	wantIs(t, err, mcrs.ErrInvalidKey)
	// a single too large Set is a server error
	wantIs(t, c.Set(ctx, "big", big), mcrs.ErrServerError)
}

func TestDelete(t *testing.T) {
	c, _ := setup(t)
	c.Set(ctx, "k", "v")
	if err := c.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	mustMiss(t, c, "k")
	wantIs(t, c.Delete(ctx, "k"), mcrs.ErrNotFound)
	if err := c.Delete(ctx, "k", mcrs.Noreply(true)); err != nil {
		t.Fatalf("noreply delete of a missing key: %v", err)
	}
	c.SetMany(ctx, map[string]any{"a": 1, "b": 2, "c": 3})
	if err := c.DeleteMany(ctx, []string{"a", "b", "missing"}); err != nil {
		t.Fatal(err)
	}
	got, _ := c.GetMany(ctx, []string{"a", "b", "c"})
	if !reflect.DeepEqual(got, map[string]any{"c": int64(3)}) {
		t.Fatalf("after DeleteMany: %#v", got)
	}
	if err := c.DeleteMany(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteMany(ctx, []string{"c"}, mcrs.Noreply(true)); err != nil {
		t.Fatal(err)
	}
	mustMiss(t, c, "c")
	wantIs(t, c.DeleteMany(ctx, []string{"ok", "bad\nkey"}), mcrs.ErrInvalidKey)
}

func TestIncrDecr(t *testing.T) {
	c, _ := setup(t)
	if v, found, err := c.Incr(ctx, "n", 1); err != nil || found || v != 0 {
		t.Fatalf("Incr(missing) = %v %v %v", v, found, err)
	}
	if v, found, err := c.Decr(ctx, "n", 1); err != nil || found || v != 0 {
		t.Fatalf("Decr(missing) = %v %v %v", v, found, err)
	}
	c.Set(ctx, "n", 10)
	if v, found, err := c.Incr(ctx, "n", 5); err != nil || !found || v != 15 {
		t.Fatalf("Incr = %v %v %v", v, found, err)
	}
	if v, found, err := c.Decr(ctx, "n", 20); err != nil || !found || v != 0 {
		t.Fatalf("Decr below 0 = %v %v %v", v, found, err)
	}
	c.Set(ctx, "w", uint64(math.MaxUint64))
	if v, _, err := c.Incr(ctx, "w", 2); err != nil || v != 1 {
		t.Fatalf("Incr wraps: %v %v", v, err)
	}
	// still an int for Get (flags are kept)
	c.Incr(ctx, "n", 41)
	if got := mustGet(t, c, "n"); got != int64(41) {
		t.Fatalf("Get after incr = %#v", got)
	}
	if v, found, err := c.Incr(ctx, "n", 1, mcrs.Noreply(true)); err != nil || !found || v != 0 {
		t.Fatalf("Incr noreply = %v %v %v", v, found, err)
	}
	if got := mustGet(t, c, "n"); got != int64(42) {
		t.Fatalf("Get after noreply incr = %#v", got)
	}
	c.Set(ctx, "s", "text")
	_, _, err := c.Incr(ctx, "s", 1)
	wantIs(t, err, mcrs.ErrClientError)
	var e *mcrs.Error
	if !errors.As(err, &e) || e.Detail == "" || !strings.Contains(err.Error(), e.Detail) {
		t.Fatalf("client error should carry the server's detail: %#v", err)
	}
	_, _, err = c.Decr(ctx, "bad key", 1)
	wantIs(t, err, mcrs.ErrInvalidKey)
}

func TestTouch(t *testing.T) {
	t.Parallel() // sleeps; uses its own server
	c, _ := setup(t)
	c.Set(ctx, "k", "v", mcrs.Expire(1))
	if err := c.Touch(ctx, "k", 100); err != nil {
		t.Fatal(err)
	}
	wantIs(t, c.Touch(ctx, "absent", 10), mcrs.ErrNotFound)
	if err := c.Touch(ctx, "absent", 10, mcrs.Noreply(true)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	mustGet(t, c, "k")
	if err := c.Touch(ctx, "k", 1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2100 * time.Millisecond)
	mustMiss(t, c, "k")
}

func TestStatsVersionFlushAdmin(t *testing.T) {
	t.Parallel() // sleeps; uses its own server
	c, s := setup(t)
	c.Set(ctx, "k", "v")
	st, err := c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 1 || st[s.Addr] == nil {
		t.Fatalf("Stats keys = %v; want [%s]", keysOf(st), s.Addr)
	}
	if st[s.Addr]["curr_items"] != "1" || st[s.Addr]["pid"] == "" {
		t.Fatalf("stats: curr_items=%q pid=%q", st[s.Addr]["curr_items"], st[s.Addr]["pid"])
	}
	set, err := c.Stats(ctx, "settings")
	if err != nil || set[s.Addr]["tcpport"] != fmt.Sprint(s.Port) {
		t.Fatalf("Stats(settings) tcpport = %q, %v", set[s.Addr]["tcpport"], err)
	}
	if _, err := c.Stats(ctx, "items"); err != nil {
		t.Fatal(err)
	}
	_, err = c.Stats(ctx, "bad\x01arg")
	wantIs(t, err, mcrs.ErrInvalidArgument)

	v, err := c.Version(ctx)
	if err != nil || v == "" || !strings.Contains(v, ".") {
		t.Fatalf("Version = %q, %v", v, err)
	}
	if st[s.Addr]["version"] != v {
		t.Fatalf("Version %q, stats version %q", v, st[s.Addr]["version"])
	}

	if err := c.FlushAll(ctx); err != nil {
		t.Fatal(err)
	}
	mustMiss(t, c, "k")
	c.Set(ctx, "k", "v")
	// memcached counts whole seconds: a delay of 1 can take effect at once
	if err := c.FlushAll(ctx, mcrs.Delay(2), mcrs.Noreply(true)); err != nil {
		t.Fatal(err)
	}
	mustGet(t, c, "k")
	time.Sleep(3100 * time.Millisecond)
	mustMiss(t, c, "k")

	if err := c.Verbosity(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := c.Verbosity(ctx, 0, mcrs.Noreply(true)); err != nil {
		t.Fatal(err)
	}
	if err := c.CacheMemlimit(ctx, 100); err != nil {
		t.Fatal(err)
	}
	wantIs(t, c.CacheMemlimit(ctx, -1), mcrs.ErrInvalidArgument)
	if err := c.Quit(ctx); err != nil {
		t.Fatal(err)
	}
	c.Set(ctx, "after_quit", 1) // reconnects
	mustGet(t, c, "after_quit")
}

func keysOf[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func TestNoreplyDefaults(t *testing.T) {
	s := newServer(t)
	def := newClient(t, []string{s.Addr}) // pymemcache's default: noreply on
	wait := newClient(t, []string{s.Addr}, mcrs.DefaultNoreply(false))

	def.Set(ctx, "k", "v")
	mustGet(t, def, "k")
	// with noreply, failed conditions go unreported
	if err := def.Add(ctx, "k", "x"); err != nil {
		t.Fatalf("noreply add: %v", err)
	}
	if err := def.Replace(ctx, "absent", "x"); err != nil {
		t.Fatalf("noreply replace: %v", err)
	}
	if err := def.Delete(ctx, "absent"); err != nil {
		t.Fatalf("noreply delete: %v", err)
	}
	if err := def.Touch(ctx, "absent", 1); err != nil {
		t.Fatalf("noreply touch: %v", err)
	}
	if failed, err := def.SetMany(ctx, map[string]any{"big": bytes.Repeat([]byte("b"), 2<<20)}); err != nil || len(failed) != 0 {
		t.Fatalf("noreply set_many: %v %v", failed, err)
	}
	// ... unless the call asks to wait
	wantIs(t, def.Add(ctx, "k", "x", mcrs.Noreply(false)), mcrs.ErrNotStored)
	wantIs(t, def.Delete(ctx, "absent", mcrs.Noreply(false)), mcrs.ErrNotFound)
	// cas, incr and decr wait by default even so
	wantIs(t, def.Cas(ctx, "absent", "v", 1), mcrs.ErrNotFound)
	if _, found, err := def.Incr(ctx, "absent", 1); err != nil || found {
		t.Fatalf("incr default waits: %v %v", found, err)
	}
	// a client with DefaultNoreply(false) reports, unless told not to wait
	wantIs(t, wait.Add(ctx, "k", "x"), mcrs.ErrNotStored)
	if err := wait.Add(ctx, "k", "x", mcrs.Noreply(true)); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, wait, "k"); got != "v" {
		t.Fatalf("k = %v", got)
	}
}

func TestGetBytesInto(t *testing.T) {
	c, _ := setup(t, mcrs.DefaultNoreply(false))
	if err := c.Set(ctx, "into", []byte("hello into")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, flags, found, err := c.GetBytesInto(ctx, "into", buf)
	if err != nil || !found || string(buf[:n]) != "hello into" || flags != 0 {
		t.Fatalf("GetBytesInto = %d %d %v %v (%q)", n, flags, found, err, buf[:n])
	}
	// exactly the value's size fits; one byte less does not, and says how much is needed
	if n, _, found, err = c.GetBytesInto(ctx, "into", buf[:10]); err != nil || !found || n != 10 {
		t.Fatalf("exact fit: %d %v %v", n, found, err)
	}
	n, _, found, err = c.GetBytesInto(ctx, "into", buf[:9])
	wantIs(t, err, mcrs.ErrBufferTooSmall)
	if found || n != 10 {
		t.Fatalf("too small: n %d found %v", n, found)
	}
	// a miss, and an empty value into an empty buffer
	if n, _, found, err = c.GetBytesInto(ctx, "into-miss", buf); err != nil || found || n != 0 {
		t.Fatalf("miss: %d %v %v", n, found, err)
	}
	if err := c.Set(ctx, "into-empty", []byte{}); err != nil {
		t.Fatal(err)
	}
	if n, _, found, err = c.GetBytesInto(ctx, "into-empty", nil); err != nil || !found || n != 0 {
		t.Fatalf("empty: %d %v %v", n, found, err)
	}
	_, _, _, err = c.GetBytesInto(ctx, "bad key", buf)
	wantIs(t, err, mcrs.ErrInvalidKey)
}

// The event loops write each turn's requests at once: BufferNoreply only
// holds back the blocking admin commands, and FlushBuffers writes them.
func TestBufferNoreply(t *testing.T) {
	s := newServer(t)
	buffered := newClient(t, []string{s.Addr}, mcrs.BufferNoreply(true))
	reader := newClient(t, []string{s.Addr})
	for i := 0; i < 100; i++ {
		if err := buffered.Set(ctx, fmt.Sprintf("buf:%d", i), i); err != nil {
			t.Fatal(err)
		}
	}
	if err := buffered.Verbosity(ctx, 0, mcrs.Noreply(true)); err != nil {
		t.Fatal(err)
	}
	if err := buffered.FlushBuffers(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		v, found, err := reader.Get(ctx, "buf:99")
		if err != nil {
			t.Fatal(err)
		}
		if found {
			if fmt.Sprint(v) != "99" {
				t.Fatalf("buf:99 = %v", v)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("noreply sets never arrived")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestKeys(t *testing.T) {
	c, s := setup(t)
	long := strings.Repeat("k", 250)
	if err := c.Set(ctx, long, 1); err != nil {
		t.Fatalf("250-byte key: %v", err)
	}
	bad := []string{"", "with space", "tab\tkey", "new\nline", "nul\x00", "del\x7f", long + "k", "é"}
	for _, k := range bad {
		err := c.Set(ctx, k, "v")
		wantIs(t, err, mcrs.ErrInvalidKey)
		var e *mcrs.Error
		if !errors.As(err, &e) || e.Status != mcrs.StatusInvalidKey || e.Key != k || e.Detail == "" {
			t.Fatalf("Set(%q) error = %#v", k, err)
		}
		if !strings.Contains(err.Error(), e.Detail) {
			t.Fatalf("message %q lacks the library detail %q", err.Error(), e.Detail)
		}
		_, _, err = c.Get(ctx, k)
		wantIs(t, err, mcrs.ErrInvalidKey)
		_, _, _, err = c.Gets(ctx, k)
		wantIs(t, err, mcrs.ErrInvalidKey)
		wantIs(t, c.Delete(ctx, k), mcrs.ErrInvalidKey)
		wantIs(t, c.Touch(ctx, k, 0), mcrs.ErrInvalidKey)
		_, _, err = c.Incr(ctx, k, 1)
		wantIs(t, err, mcrs.ErrInvalidKey)
	}
	// unicode keys when allowed
	u := newClient(t, []string{s.Addr}, mcrs.AllowUnicodeKeys(true), mcrs.DefaultNoreply(false))
	if err := u.Set(ctx, "ключ", "значение"); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, u, "ключ"); got != "значение" {
		t.Fatalf("unicode key: %v", got)
	}
	wantIs(t, u.Set(ctx, "bad\xffutf8", 1), mcrs.ErrInvalidKey)

	// key prefix: on the wire only, and counted in the 250 bytes
	p := newClient(t, []string{s.Addr}, mcrs.KeyPrefix("app:"), mcrs.DefaultNoreply(false))
	if err := p.Set(ctx, "k", "prefixed"); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, p, "k"); got != "prefixed" {
		t.Fatal(got)
	}
	if got := mustGet(t, c, "app:k"); got != "prefixed" {
		t.Fatalf("raw read of the prefixed key: %v", got)
	}
	got, _ := p.GetMany(ctx, []string{"k"})
	if got["k"] != "prefixed" {
		t.Fatalf("GetMany with prefix: %#v", got)
	}
	wantIs(t, p.Set(ctx, strings.Repeat("k", 247), 1), mcrs.ErrInvalidKey)
	if err := p.Set(ctx, strings.Repeat("k", 246), 1); err != nil {
		t.Fatal(err)
	}
}

func TestClosed(t *testing.T) {
	c, _ := setup(t)
	c.Set(ctx, "k", "v")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	calls := map[string]func() error{
		"Set":      func() error { return c.Set(ctx, "k", "v") },
		"Add":      func() error { return c.Add(ctx, "k", "v") },
		"Replace":  func() error { return c.Replace(ctx, "k", "v") },
		"Append":   func() error { return c.Append(ctx, "k", "v") },
		"Prepend":  func() error { return c.Prepend(ctx, "k", "v") },
		"Cas":      func() error { return c.Cas(ctx, "k", "v", 1) },
		"Get":      func() error { _, _, err := c.Get(ctx, "k"); return err },
		"GetBytes": func() error { _, _, err := c.GetBytes(ctx, "k"); return err },
		"Gets":     func() error { _, _, _, err := c.Gets(ctx, "k"); return err },
		"Gat":      func() error { _, _, err := c.Gat(ctx, "k", 1); return err },
		"Gats":     func() error { _, _, _, err := c.Gats(ctx, "k", 1); return err },
		"GetMany":  func() error { _, err := c.GetMany(ctx, []string{"k"}); return err },
		"GetMany0": func() error { _, err := c.GetMany(ctx, nil); return err },
		"GetsMany": func() error { _, err := c.GetsMany(ctx, []string{"k"}); return err },
		"SetMany":  func() error { _, err := c.SetMany(ctx, map[string]any{"k": 1}); return err },
		"SetMany0": func() error { _, err := c.SetMany(ctx, nil); return err },
		"Delete":   func() error { return c.Delete(ctx, "k") },
		"DelMany":  func() error { return c.DeleteMany(ctx, []string{"k"}) },
		"DelMany0": func() error { return c.DeleteMany(ctx, nil) },
		"Incr":     func() error { _, _, err := c.Incr(ctx, "k", 1); return err },
		"Decr":     func() error { _, _, err := c.Decr(ctx, "k", 1); return err },
		"Touch":    func() error { return c.Touch(ctx, "k", 1) },
		"Stats":    func() error { _, err := c.Stats(ctx); return err },
		"Version":  func() error { _, err := c.Version(ctx); return err },
		"FlushAll": func() error { return c.FlushAll(ctx) },
		"Memlimit": func() error { return c.CacheMemlimit(ctx, 64) },
		"Verbose":  func() error { return c.Verbosity(ctx, 0) },
		"Quit":     func() error { return c.Quit(ctx) },
	}
	for name, call := range calls {
		if err := call(); err != mcrs.ErrClosed {
			t.Errorf("%s after Close: %v; want ErrClosed", name, err)
		}
	}
}

func TestCloseWhileInFlight(t *testing.T) {
	c, _ := setup(t)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; ; i++ {
				k := fmt.Sprintf("g%d-%d", g, i%50)
				err := c.Set(ctx, k, i)
				if err == nil {
					_, _, err = c.Get(ctx, k)
				}
				if err == mcrs.ErrClosed {
					return
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}(g)
	}
	time.Sleep(100 * time.Millisecond)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("call racing Close: %v", err)
	}
}

func TestConcurrentGoroutines(t *testing.T) {
	c, _ := setup(t, mcrs.MaxPoolSize(4))
	const goroutines, ops = 16, 300
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < ops; i++ {
				k := fmt.Sprintf("c%d-%d", g, i%20)
				want := fmt.Sprintf("v%d-%d", g, i)
				if err := c.Set(ctx, k, want); err != nil {
					errs <- err
					return
				}
				got, found, err := c.Get(ctx, k)
				if err != nil || !found || got != want {
					errs <- fmt.Errorf("Get(%s) = %v %v %v; want %s", k, got, found, err, want)
					return
				}
				if i%50 == 0 {
					m, err := c.GetMany(ctx, []string{k, "absent"})
					if err != nil || m[k] != want {
						errs <- fmt.Errorf("GetMany = %v %v", m, err)
						return
					}
				}
				if _, _, err := c.Incr(ctx, "counter", 1); err != nil {
					errs <- err
					return
				}
			}
		}(g)
	}
	c.Set(ctx, "counter", 0)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// every incr after the initial set is counted; some may come before it
	if v, _, _ := c.Incr(ctx, "counter", 0); v == 0 || v > goroutines*ops {
		t.Fatalf("counter = %d", v)
	}
}

func TestIgnoreExcKilledServer(t *testing.T) {
	s := newServer(t)
	ign := newClient(t, []string{s.Addr}, mcrs.IgnoreExc(true), mcrs.DefaultNoreply(false),
		mcrs.ConnectTimeout(200*time.Millisecond), mcrs.Timeout(200*time.Millisecond))
	strict := newClient(t, []string{s.Addr}, mcrs.DefaultNoreply(false),
		mcrs.ConnectTimeout(200*time.Millisecond), mcrs.Timeout(200*time.Millisecond))
	if err := ign.Set(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	mustGet(t, ign, "k")
	mustGet(t, strict, "k")
	s.Kill()

	// reads are misses with ignore_exc ...
	for i := 0; i < 2; i++ { // a pooled dead connection, then a failed connect
		mustMiss(t, ign, "k")
		if m, err := ign.GetMany(ctx, []string{"k", "j"}); err != nil || len(m) != 0 {
			t.Fatalf("GetMany on a dead server with IgnoreExc = %v, %v", m, err)
		}
		if _, _, found, err := ign.Gets(ctx, "k"); err != nil || found {
			t.Fatalf("Gets = %v, %v", found, err)
		}
		if m, err := ign.GetsMany(ctx, []string{"k"}); err != nil || len(m) != 0 {
			t.Fatalf("GetsMany = %v, %v", m, err)
		}
		if b, found, err := ign.GetBytes(ctx, "k"); err != nil || found || b != nil {
			t.Fatalf("GetBytes = %v, %v, %v", b, found, err)
		}
	}
	// ... but invalid keys are still errors, and writes still fail
	_, _, err := ign.Get(ctx, "bad key")
	wantIs(t, err, mcrs.ErrInvalidKey)
	if err := ign.Set(ctx, "k", "v"); err == nil {
		t.Fatal("Set on a dead server succeeded")
	}
	// without ignore_exc a read fails: first on the pooled connection, then
	// on connecting (NoServers/ServerDown are accepted should the library
	// ever take a lone dead server out)
	for i := 0; i < 3; i++ {
		_, _, err := strict.Get(ctx, "k")
		if err == nil {
			t.Fatal("Get on a dead server succeeded without IgnoreExc")
		}
		if !errors.Is(err, mcrs.ErrConnectFailed) && !errors.Is(err, mcrs.ErrIO) &&
			!errors.Is(err, mcrs.ErrUnexpectedClose) && !errors.Is(err, mcrs.ErrNoServers) &&
			!errors.Is(err, mcrs.ErrServerDown) {
			t.Fatalf("Get on a dead server: %v", err)
		}
		if i > 0 && errors.Is(err, mcrs.ErrIO) {
			t.Fatalf("Get on a dead server, attempt %d: %v; want a connect failure", i+1, err)
		}
	}
}

func TestConnectFailedAndTimeout(t *testing.T) {
	// nothing listens on this port
	port, err := freePortForTest()
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, []string{fmt.Sprintf("127.0.0.1:%d", port)}, mcrs.ConnectTimeout(200*time.Millisecond))
	_, _, err = c.Get(ctx, "k")
	wantIs(t, err, mcrs.ErrConnectFailed)
	var e *mcrs.Error
	if !errors.As(err, &e) || e.Op != "get" || e.Detail == "" {
		t.Fatalf("connect error = %#v", err)
	}

	// a peer that accepts but never answers (a deliberately broken server)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	silent := newClient(t, []string{l.Addr().String()}, mcrs.Timeout(150*time.Millisecond))
	start := time.Now()
	_, _, err = silent.Get(ctx, "k")
	wantIs(t, err, mcrs.ErrTimeout)
	if !errors.As(err, &e) || !e.Timeout() {
		t.Fatalf("Timeout() false for %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("timeout took %v", d)
	}
	_, err = silent.Version(ctx)
	wantIs(t, err, mcrs.ErrTimeout)
}

func freePortForTest() (int, error) { return freePort() }

func TestCluster(t *testing.T) {
	s1, s2 := newServer(t), newServer(t)
	for _, d := range []mcrs.DistributionKind{mcrs.Rendezvous, mcrs.Ketama, mcrs.Xxh3} {
		t.Run(fmt.Sprint(d), func(t *testing.T) {
			c := newClient(t, []string{s1.Addr, s2.Addr}, mcrs.Distribution(d), mcrs.DefaultNoreply(false))
			if err := c.FlushAll(ctx); err != nil {
				t.Fatal(err)
			}
			items := map[string]any{}
			var keys []string
			for i := 0; i < 200; i++ {
				k := fmt.Sprintf("ck%d", i)
				items[k] = i
				keys = append(keys, k)
			}
			if failed, err := c.SetMany(ctx, items); err != nil || len(failed) != 0 {
				t.Fatalf("SetMany = %v, %v", failed, err)
			}
			got, err := c.GetMany(ctx, keys)
			if err != nil || len(got) != 200 {
				t.Fatalf("GetMany = %d, %v", len(got), err)
			}
			for i := 0; i < 20; i++ {
				k := keys[i]
				if v := mustGet(t, c, k); v != int64(i) {
					t.Fatalf("Get(%s) = %v", k, v)
				}
			}
			st, err := c.Stats(ctx)
			if err != nil || len(st) != 2 {
				t.Fatalf("Stats = %v, %v", keysOf(st), err)
			}
			n1, n2 := st[s1.Addr]["curr_items"], st[s2.Addr]["curr_items"]
			if n1 == "0" || n2 == "0" || n1 == "" || n2 == "" {
				t.Fatalf("keys not spread: %s has %s, %s has %s", s1.Addr, n1, s2.Addr, n2)
			}
			if err := c.DeleteMany(ctx, keys); err != nil {
				t.Fatal(err)
			}
			if got, _ := c.GetMany(ctx, keys); len(got) != 0 {
				t.Fatalf("after DeleteMany: %d left", len(got))
			}
		})
	}
}

// Each key of a cluster lives on exactly one server.
func TestClusterKeyOnOneServer(t *testing.T) {
	s1, s2 := newServer(t), newServer(t)
	cl := newClient(t, []string{s1.Addr, s2.Addr}, mcrs.DefaultNoreply(false))
	one := newClient(t, []string{s1.Addr}, mcrs.DefaultNoreply(false))
	two := newClient(t, []string{s2.Addr}, mcrs.DefaultNoreply(false))
	for i := 0; i < 50; i++ {
		k := fmt.Sprintf("r%d", i)
		cl.Set(ctx, k, i)
		_, f1, _ := one.Get(ctx, k)
		_, f2, _ := two.Get(ctx, k)
		if f1 == f2 {
			t.Fatalf("key %s on both or neither server (%v, %v)", k, f1, f2)
		}
	}
}

func TestErrorType(t *testing.T) {
	e := &mcrs.Error{Status: mcrs.StatusTimeout, Op: "get", Key: "k", Detail: "read timed out after 1s"}
	if e.Error() != `mcrs: get "k": timeout: read timed out after 1s` {
		t.Fatalf("Error() = %q", e.Error())
	}
	var err error = fmt.Errorf("wrapped: %w", e)
	if !errors.Is(err, mcrs.ErrTimeout) || errors.Is(err, mcrs.ErrIO) || !e.Timeout() {
		t.Fatal("Is mismatch")
	}
	for _, st := range []int{-1, 0, 99} {
		e := &mcrs.Error{Status: st, Op: "x"}
		if errors.Is(e, mcrs.ErrTimeout) || errors.Is(e, nil) {
			t.Fatalf("status %d matched a sentinel", st)
		}
	}
	if (&mcrs.Error{Status: mcrs.StatusPanic}).Is(mcrs.ErrInternal) != true {
		t.Fatal("panic status should match ErrInternal")
	}
}

// A client that is never closed is freed by its cleanup once unreachable.
func TestUnclosedClientIsCollected(t *testing.T) {
	s := newServer(t)
	for i := 0; i < 20; i++ {
		c, err := mcrs.New([]string{s.Addr}, mcrs.DefaultNoreply(false))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Set(ctx, "k", i); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		runtime.GC()
		time.Sleep(20 * time.Millisecond)
	}
	// the server saw the connections close
	c := newClient(t, []string{s.Addr})
	st, err := c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cur := st[s.Addr]["curr_connections"]; cur == "" || len(cur) > 1 {
		t.Fatalf("curr_connections = %q after the unclosed clients were collected", cur)
	}
}

func TestUnixSocket(t *testing.T) {
	bin, err := exec.LookPath("memcached")
	if err != nil {
		t.Skip("memcached not found")
	}
	sock := filepath.Join(t.TempDir(), "mc.sock")
	args := []string{"-s", sock, "-U", "0", "-t", "1"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root")
	}
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; i < 500; i++ {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, addr := range []string{"unix:" + sock, sock} {
		c := newClient(t, []string{addr}, mcrs.DefaultNoreply(false))
		if err := c.Set(ctx, "k", addr); err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
		if got := mustGet(t, c, "k"); got != addr {
			t.Fatalf("%s: %v", addr, got)
		}
	}
}

func TestErrorMessageNoRepeat(t *testing.T) {
	e := &mcrs.Error{Status: mcrs.StatusInvalidKey, Op: "set", Key: "a b", Detail: "invalid key: key contains whitespace"}
	if got := e.Error(); got != `mcrs: set "a b": invalid key: key contains whitespace` {
		t.Fatalf("Error() = %q", got)
	}
}
