package mcrs_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mcrs "github.com/mcrs-project/mcrs-go"
)

// leaseAll runs n LeaseGet of key at once.
func leaseAll(t *testing.T, c *mcrs.Client, n int, key string) []mcrs.Lease {
	t.Helper()
	out := make([]mcrs.Lease, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			l, err := c.LeaseGet(ctx, key, 30)
			if err != nil {
				t.Errorf("LeaseGet: %v", err)
			}
			out[i] = l
		}()
	}
	close(start)
	wg.Wait()
	return out
}

func count(ls []mcrs.Lease, s mcrs.LeaseState) (n int, last mcrs.Lease) {
	for _, l := range ls {
		if l.State == s {
			n++
			last = l
		}
	}
	return n, last
}

func TestLeaseColdKeyOneWonRestWait(t *testing.T) {
	c, _ := setup(t)
	ls := leaseAll(t, c, 16, "lease:cold")
	won, w := count(ls, mcrs.LeaseWon)
	wait, _ := count(ls, mcrs.LeaseWait)
	if won != 1 || wait != 15 {
		t.Fatalf("won %d wait %d: %+v", won, wait, ls)
	}
	if w.Token == 0 || w.Item != nil {
		t.Fatalf("winner on a miss: %+v", w)
	}
	if err := c.LeaseSet(ctx, "lease:cold", "computed", w.Token, mcrs.Expire(60)); err != nil {
		t.Fatal(err)
	}
	hit, err := c.LeaseGet(ctx, "lease:cold", 30)
	if err != nil || hit.State != mcrs.LeaseHit || hit.Item == nil || hit.Item.Value != "computed" {
		t.Fatalf("after LeaseSet: %+v %v", hit, err)
	}
	if hit.Item.TTL < 55 || hit.Item.TTL > 60 {
		t.Fatalf("ttl %d", hit.Item.TTL)
	}
}

func TestLeaseInvalidateOneWonRestStale(t *testing.T) {
	c, _ := setup(t)
	if err := c.Set(ctx, "lease:item", "old", mcrs.Expire(300)); err != nil {
		t.Fatal(err)
	}
	if err := c.Invalidate(ctx, "lease:item", 30); err != nil {
		t.Fatal(err)
	}
	if err := c.Invalidate(ctx, "lease:absent", 30); !errors.Is(err, mcrs.ErrNotFound) {
		t.Fatalf("invalidate of an absent key: %v", err)
	}
	ls := leaseAll(t, c, 16, "lease:item")
	won, w := count(ls, mcrs.LeaseWon)
	stale, _ := count(ls, mcrs.LeaseStale)
	if won != 1 || stale != 15 {
		t.Fatalf("won %d stale %d", won, stale)
	}
	for _, l := range ls {
		if l.Item == nil || l.Item.Value != "old" || l.Item.TTL > 30 {
			t.Fatalf("stale value: %+v", l)
		}
	}
	if err := c.LeaseSet(ctx, "lease:item", "new", w.Token); err != nil {
		t.Fatal(err)
	}
}

func TestLeaseLostRaceIsExists(t *testing.T) {
	c, _ := setup(t)
	c.Set(ctx, "lease:race", "v1", mcrs.Expire(300))
	c.Invalidate(ctx, "lease:race", 60)
	a, _ := c.LeaseGet(ctx, "lease:race", 30)
	c.Invalidate(ctx, "lease:race", 60)
	b, _ := c.LeaseGet(ctx, "lease:race", 30)
	if a.State != mcrs.LeaseWon || b.State != mcrs.LeaseWon {
		t.Fatalf("%v %v", a.State, b.State)
	}
	if err := c.LeaseSet(ctx, "lease:race", "from-a", a.Token); !errors.Is(err, mcrs.ErrExists) {
		t.Fatalf("lost lease: %v", err)
	}
	if err := c.LeaseSet(ctx, "lease:race", "from-b", b.Token); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := c.Get(ctx, "lease:race"); v != "from-b" {
		t.Fatalf("%v", v)
	}
	if _, err := c.LeaseGet(ctx, "lease:race", -1); !errors.Is(err, mcrs.ErrInvalidArgument) {
		t.Fatalf("negative lease ttl: %v", err)
	}
	if _, err := c.LeaseGet(ctx, "lease:race", 0); !errors.Is(err, mcrs.ErrInvalidArgument) {
		t.Fatalf("zero lease ttl: %v", err)
	}
	if _, err := c.LeaseGet(ctx, "a b", 5); !errors.Is(err, mcrs.ErrInvalidKey) {
		t.Fatalf("bad key: %v", err)
	}
}

// herd runs n goroutines of GetOrCompute on one cold key (50 ms compute)
// and returns how often the compute function ran.
func herd(t *testing.T, c *mcrs.Client, n int, key string) int64 {
	var calls atomic.Int64
	fn := func(context.Context) (any, error) {
		calls.Add(1)
		time.Sleep(50 * time.Millisecond)
		return "expensive", nil
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			cx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			v, err := c.GetOrCompute(cx, key, 10, fn, mcrs.Expire(60))
			if err != nil || v != "expensive" {
				t.Errorf("GetOrCompute: %v %v", v, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	return calls.Load()
}

func TestGetOrComputeHerdComputesOnce(t *testing.T) {
	c, _ := setup(t)
	if n := herd(t, c, 16, "lease:herd16"); n != 1 {
		t.Fatalf("16 goroutines: compute ran %d times", n)
	}
	n := herd(t, c, 64, "lease:herd64")
	if n != 1 {
		t.Fatalf("64 goroutines: compute ran %d times", n)
	}
	t.Logf("64 goroutines on one cold key under a lease: %d backend call(s)", n)
}

func TestGetOrComputeWaitEndsWithCtx(t *testing.T) {
	c, _ := setup(t)
	// someone holds the lease and never sets
	if l, err := c.LeaseGet(ctx, "lease:held", 30); err != nil || l.State != mcrs.LeaseWon {
		t.Fatalf("%+v %v", l, err)
	}
	cx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	ran := false
	_, err := c.GetOrCompute(cx, "lease:held", 30, func(context.Context) (any, error) { ran = true; return "x", nil })
	if !errors.Is(err, context.DeadlineExceeded) || ran {
		t.Fatalf("waiting past the deadline: %v (ran %v)", err, ran)
	}
	// a failing compute is the caller's error
	boom := errors.New("boom")
	_, err = c.GetOrCompute(ctx, "lease:fails", 30, func(context.Context) (any, error) { return nil, boom })
	if !errors.Is(err, boom) {
		t.Fatalf("%v", err)
	}
}

func TestLeaseNobodyFulfilsExpires(t *testing.T) {
	c, _ := setup(t)
	first, err := c.LeaseGet(ctx, "lease:abandoned", 2)
	if err != nil || first.State != mcrs.LeaseWon {
		t.Fatalf("%+v %v", first, err)
	}
	if l, _ := c.LeaseGet(ctx, "lease:abandoned", 2); l.State != mcrs.LeaseWait {
		t.Fatalf("second caller: %v", l.State)
	}
	time.Sleep(3200 * time.Millisecond) // memcached's clock ticks in whole seconds
	next, err := c.LeaseGet(ctx, "lease:abandoned", 2)
	if err != nil || next.State != mcrs.LeaseWon || next.Token == first.Token {
		t.Fatalf("after lease_ttl: %+v %v", next, err)
	}
	if err := c.LeaseSet(ctx, "lease:abandoned", "late", first.Token); !errors.Is(err, mcrs.ErrExists) {
		t.Fatalf("expired lease: %v", err)
	}
}
