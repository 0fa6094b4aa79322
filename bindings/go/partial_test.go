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
