package mcrs_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	mcrs "github.com/mcrs-project/mcrs-go"
)

// pyScript reads or writes items with pymemcache and pymemcache.serde's
// pickle_serde (the flags the default Go serde shares): a base Client for one
// server, a HashClient (rendezvous, as mcrs.Rendezvous) for several.
//
//	python3 -c pyScript read  host:port[,host:port...] key...   -> JSON {key: [type, value] | null}
//	python3 -c pyScript write host:port[,host:port...] < JSON {key: [type, value]}
//
// Values are described as ["str", s], ["int", decimal], ["bytes", hex] or
// ["bool", b]; anything else as [type name, repr].
const pyScript = `
import json, sys
from pymemcache.client.base import Client
from pymemcache.client.hash import HashClient
from pymemcache.serde import pickle_serde

mode, servers = sys.argv[1], sys.argv[2].split(",")
def hostport(s):
    h, p = s.rsplit(":", 1)
    return (h, int(p))
if len(servers) == 1:
    c = Client(hostport(servers[0]), serde=pickle_serde)
else:
    c = HashClient([hostport(s) for s in servers], serde=pickle_serde)

def describe(v):
    if v is None: return None
    if type(v) is bytes: return ["bytes", v.hex()]
    if type(v) is str: return ["str", v]
    if type(v) is bool: return ["bool", v]
    if type(v) is int: return ["int", str(v)]
    return [type(v).__name__, repr(v)]

def build(d):
    t, v = d
    return {"str": lambda: v, "int": lambda: int(v), "bytes": lambda: bytes.fromhex(v),
            "bool": lambda: bool(v)}[t]()

if mode == "read":
    print(json.dumps({k: describe(c.get(k)) for k in sys.argv[3:]}))
else:
    for k, d in json.load(sys.stdin).items():
        if not c.set(k, build(d), noreply=False):
            sys.exit("set %s failed" % k)
`

// needPymemcache skips the test when python3 or pymemcache is missing.
func needPymemcache(t *testing.T) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("interop test skipped: python3 not found in PATH")
	}
	if out, err := exec.Command(py, "-c", "import pymemcache.serde, pymemcache.client.hash").CombinedOutput(); err != nil {
		t.Skipf("interop test skipped: pymemcache is not importable (pip install pymemcache): %v\n%s", err, out)
	}
	return py
}

func pyRead(t *testing.T, py string, servers []string, keys ...string) map[string][]any {
	t.Helper()
	args := append([]string{"-c", pyScript, "read", strings.Join(servers, ",")}, keys...)
	out, err := exec.Command(py, args...).Output()
	if err != nil {
		t.Fatalf("python read: %v\n%s", err, stderrOf(err))
	}
	var got map[string][]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("python output %q: %v", out, err)
	}
	return got
}

func pyWrite(t *testing.T, py string, servers []string, items map[string][]any) {
	t.Helper()
	in, _ := json.Marshal(items)
	cmd := exec.Command(py, "-c", pyScript, "write", strings.Join(servers, ","))
	cmd.Stdin = bytes.NewReader(in)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("python write: %v\n%s", err, out)
	}
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

func TestInteropGoWritesPythonReads(t *testing.T) {
	py := needPymemcache(t)
	c, s := setup(t)
	items := map[string]any{
		"go_str":       "héllo wörld ✓",
		"go_empty_str": "",
		"go_int":       42,
		"go_neg":       int64(-7),
		"go_u64":       uint64(18446744073709551615),
		"go_bytes":     []byte{0, 0xff, 'b', 'i', 'n'},
		"go_empty":     []byte{},
	}
	for k, v := range items {
		if err := c.Set(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	got := pyRead(t, py, []string{s.Addr}, append(keysOf(items), "go_missing")...)
	want := map[string][]any{
		"go_str":       {"str", "héllo wörld ✓"},
		"go_empty_str": {"str", ""},
		"go_int":       {"int", "42"},
		"go_neg":       {"int", "-7"},
		"go_u64":       {"int", "18446744073709551615"},
		"go_bytes":     {"bytes", "00ff62696e"},
		"go_empty":     {"bytes", ""},
		"go_missing":   nil,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("pymemcache read\n got %v\nwant %v", got, want)
	}
}

func TestInteropPythonWritesGoReads(t *testing.T) {
	py := needPymemcache(t)
	c, s := setup(t)
	pyWrite(t, py, []string{s.Addr}, map[string][]any{
		"py_str":       {"str", "grüße ✓"},
		"py_empty_str": {"str", ""},
		"py_int":       {"int", "1234567"},
		"py_neg":       {"int", "-5"},
		"py_big":       {"int", "18446744073709551615"},
		"py_bytes":     {"bytes", "0001fe"},
		"py_bool":      {"bool", true}, // pickled by pymemcache
	})
	want := map[string]any{
		"py_str":       "grüße ✓",
		"py_empty_str": "",
		"py_int":       int64(1234567),
		"py_neg":       int64(-5),
		"py_big":       uint64(18446744073709551615),
		"py_bytes":     []byte{0, 1, 0xfe},
	}
	for k, w := range want {
		if got := mustGet(t, c, k); !reflect.DeepEqual(got, w) {
			t.Errorf("Get(%s) = %#v (%T); want %#v (%T)", k, got, got, w, w)
		}
	}
	got, err := c.GetMany(ctx, keysOf(want))
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("GetMany = %#v, %v", got, err)
	}
	// an int written by Python can be incremented and stays an int for both
	if v, _, err := c.Incr(ctx, "py_int", 1); err != nil || v != 1234568 {
		t.Fatalf("Incr = %v, %v", v, err)
	}
	if got := pyRead(t, py, []string{s.Addr}, "py_int"); !reflect.DeepEqual(got["py_int"], []any{"int", "1234568"}) {
		t.Fatalf("python after incr: %v", got)
	}
	// a pickled Python object is an error for the default serde, raw bytes
	// for GetBytes
	_, _, err = c.Get(ctx, "py_bool")
	wantIs(t, err, mcrs.ErrUnsupportedValue)
	if b, found, err := c.GetBytes(ctx, "py_bool"); err != nil || !found || len(b) == 0 {
		t.Fatalf("GetBytes(py_bool) = %q %v %v", b, found, err)
	}
}

// A Go cluster client with the default Rendezvous distribution places keys
// where pymemcache's HashClient does, so both find each other's items.
func TestInteropClusterPlacement(t *testing.T) {
	py := needPymemcache(t)
	servers := []string{newServer(t).Addr, newServer(t).Addr, newServer(t).Addr}
	c := newClient(t, servers, mcrs.DefaultNoreply(false))
	pyItems := map[string][]any{}
	var pyKeys, goKeys []string
	for i := 0; i < 60; i++ {
		k := fmt.Sprintf("pykey:%d", i)
		pyItems[k] = []any{"int", fmt.Sprint(i)}
		pyKeys = append(pyKeys, k)
		g := fmt.Sprintf("gokey:%d", i)
		if err := c.Set(ctx, g, "v"+fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
		goKeys = append(goKeys, g)
	}
	pyWrite(t, py, servers, pyItems)
	for i, k := range pyKeys {
		if got := mustGet(t, c, k); got != int64(i) {
			t.Fatalf("Go Get(%s) = %#v", k, got)
		}
	}
	got := pyRead(t, py, servers, goKeys...)
	for i, k := range goKeys {
		if !reflect.DeepEqual(got[k], []any{"str", fmt.Sprintf("v%d", i)}) {
			t.Fatalf("pymemcache HashClient get(%s) = %v", k, got[k])
		}
	}
	// and the items really are spread over the three servers
	st, err := c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range servers {
		if n := st[s]["curr_items"]; n == "" || n == "0" {
			t.Fatalf("server %s holds no item (stats %v)", s, n)
		}
	}
}
