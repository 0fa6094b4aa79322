package mcrs_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mcrs-project/mcrs-go"
)

// One server dead, one stalled, one healthy: GetMany gives every hit of the
// healthy server within the timeout, and a *PartialError that lists each
// other key with its reason.
func TestGetManyPartialWithADeadAndAStalledServer(t *testing.T) {
	s := []*memcachedServer{newServer(t), newServer(t), newServer(t)}
	addrs := []string{s[0].Addr, s[1].Addr, s[2].Addr}
	c := newClient(t, addrs, mcrs.Timeout(300*time.Millisecond), mcrs.ConnectTimeout(300*time.Millisecond),
		mcrs.DefaultNoreply(false))
	keys := make([]string, 60)
	for i := range keys {
		keys[i] = fmt.Sprintf("partial:%d", i)
		if err := c.Set(ctx, keys[i], keys[i]); err != nil {
			t.Fatal(err)
		}
	}
	home := map[string]int{}
	for i, a := range addrs {
		d := newClient(t, []string{a})
		m, err := d.GetMany(ctx, keys)
		if err != nil {
			t.Fatal(err)
		}
		for k := range m {
			home[k] = i
		}
	}
	s[0].Kill()
	resume := stop(t, s[1])
	defer resume()

	t0 := time.Now()
	m, err := c.GetMany(ctx, keys)
	if took := time.Since(t0); took > 450*time.Millisecond {
		t.Fatalf("GetMany took %v", took)
	}
	var pe *mcrs.PartialError
	if !errors.As(err, &pe) || !errors.Is(err, mcrs.ErrPartial) {
		t.Fatalf("want a *PartialError, got %v", err)
	}
	failed := map[string]*mcrs.Error{}
	for _, f := range pe.Failed {
		failed[f.Key] = f.Err
	}
	live := 0
	for _, k := range keys {
		switch home[k] {
		case 2:
			live++
			if m[k] != k {
				t.Errorf("%s: got %v", k, m[k])
			}
		case 1:
			if e := failed[k]; e == nil || !(errors.Is(e, mcrs.ErrTimeout) || errors.Is(e, mcrs.ErrServerDown)) {
				t.Errorf("stalled server's key %s: %v", k, e)
			}
		default:
			if e := failed[k]; e == nil || !(errors.Is(e, mcrs.ErrConnectFailed) || errors.Is(e, mcrs.ErrServerDown)) {
				t.Errorf("dead server's key %s: %v", k, e)
			}
		}
	}
	if len(m) != live || len(pe.Failed) != len(keys)-live || live == 0 {
		t.Fatalf("%d hits (want %d), %d failed of %d", len(m), live, len(pe.Failed), len(keys))
	}
	// the failed keys' reasons are reachable through errors.Is on the whole error
	if !errors.Is(err, mcrs.ErrTimeout) && !errors.Is(err, mcrs.ErrServerDown) {
		t.Errorf("errors.Is does not see the stalled server's failure: %v", err)
	}
	t.Logf("%v", err)
}

// The client's counters after gets, a kill and the failover options.
func TestCountersAndFailoverOptions(t *testing.T) {
	s := []*memcachedServer{newServer(t), newServer(t)}
	c := newClient(t, []string{s[0].Addr, s[1].Addr}, mcrs.DefaultNoreply(false),
		mcrs.FailoverTTL(30*time.Second), mcrs.MaxTrackedKeys(1000), mcrs.MaxValueSize(1<<20),
		mcrs.Timeout(300*time.Millisecond), mcrs.ConnectTimeout(300*time.Millisecond))
	for i := 0; i < 20; i++ {
		k := fmt.Sprintf("ctr:%d", i)
		if err := c.Set(ctx, k, "v"); err != nil {
			t.Fatal(err)
		}
		if _, found, err := c.Get(ctx, k); err != nil || !found {
			t.Fatal(found, err)
		}
		if _, found, err := c.Get(ctx, k+":missing"); err != nil || found {
			t.Fatal(found, err)
		}
	}
	m, err := c.Counters()
	if err != nil {
		t.Fatal(err)
	}
	var hits, misses, commands uint64
	for _, srv := range []string{s[0].Addr, s[1].Addr} {
		if m[srv] == nil {
			t.Fatalf("no counters for %s: %v", srv, m)
		}
		hits += m[srv]["hits"]
		misses += m[srv]["misses"]
		commands += m[srv]["commands"]
	}
	if hits != 20 || misses != 20 || commands < 60 {
		t.Fatalf("hits %d misses %d commands %d", hits, misses, commands)
	}
	s[0].Kill()
	for i := 0; i < 20; i++ {
		c.Get(ctx, fmt.Sprintf("ctr:%d", i))
	}
	m, _ = c.Counters()
	if f := m[s[0].Addr]["connect_failures"] + m[s[0].Addr]["closed"]; f == 0 {
		t.Fatalf("the kill was not counted: %v", m[s[0].Addr])
	}
	if _, err := mcrs.New([]string{s[1].Addr}, mcrs.MaxValueSize(0)); err == nil {
		t.Fatal("MaxValueSize(0) accepted")
	}
	c.Close()
	if _, err := c.Counters(); !errors.Is(err, mcrs.ErrClosed) {
		t.Fatalf("Counters after Close: %v", err)
	}
}
