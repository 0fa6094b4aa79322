package mcrs_test

// A lone caller with a cancellable ctx runs the event loop itself
// (driver.solo): its ctx still ends the wait on a stalled server, and the
// connection is in step afterwards.

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	mcrs "github.com/mcrs-project/mcrs-go"
)

func TestSoloCtxStalledServer(t *testing.T) {
	var solos atomic.Int64
	mcrs.SetSoloHook(func(string) { solos.Add(1) })
	t.Cleanup(func() { mcrs.SetSoloHook(nil) })
	c, s := setup(t, mcrs.Timeout(5*time.Second))
	sctx, cancel0 := context.WithTimeout(ctx, time.Second)
	defer cancel0()
	if err := c.Set(sctx, "k", "before", mcrs.Noreply(false)); err != nil {
		t.Fatal(err)
	}
	if v, found, err := c.Get(sctx, "k"); err != nil || !found || v != "before" {
		t.Fatalf("Get = %v, %v, %v", v, found, err)
	}
	if solos.Load() != 2 {
		t.Fatalf("%d of 2 calls took the solo path", solos.Load())
	}
	resume := stop(t, s)

	// deadline: returns at it, through the solo path
	for i := 0; i < 3; i++ {
		time.Sleep(10 * time.Millisecond) // the driver takes over the Get in flight
		n := solos.Load()
		dctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		t0 := time.Now()
		_, _, err := c.Get(dctx, "k")
		took := time.Since(t0)
		cancel()
		wantCtxErr(t, err, context.DeadlineExceeded, mcrs.ErrTimeout)
		if took < 100*time.Millisecond || took > 150*time.Millisecond {
			t.Fatalf("solo Get with a 100ms deadline on a stalled server took %v", took)
		}
		if solos.Load() != n+1 {
			t.Fatalf("the Get did not take the solo path")
		}
	}
	// a write given up on: its reply comes later, matched to it
	dctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	wantCtxErr(t, c.Set(dctx, "k", "after", mcrs.Noreply(false)), context.DeadlineExceeded, mcrs.ErrTimeout)
	cancel()

	// cancel: returns at once
	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	time.Sleep(10 * time.Millisecond) // the driver takes over the Set in flight
	n := solos.Load()
	go func() { _, _, err := c.Get(cctx, "k"); errc <- err }()
	time.Sleep(50 * time.Millisecond)
	t0 := time.Now()
	cancel()
	err := <-errc
	if took := time.Since(t0); took > 20*time.Millisecond {
		t.Fatalf("solo Get took %v to return after its cancel", took)
	}
	wantCtxErr(t, err, context.Canceled, mcrs.ErrCancelled)
	if solos.Load() != n+1 {
		t.Fatalf("the cancelled Get did not take the solo path")
	}

	// resumed: the requests given up on get their replies, and each later
	// call its own (the Set given up on was processed)
	resume()
	for i := 0; i < 20; i++ {
		gctx, cancel := context.WithTimeout(ctx, time.Second)
		v, found, err := c.Get(gctx, "k")
		cancel()
		if err != nil || !found || v != "after" {
			t.Fatalf("after resume: Get = %v, %v, %v; want \"after\"", v, found, err)
		}
		want := fmt.Sprint("v", i)
		if err := c.Set(ctx, "k2", want, mcrs.Noreply(false)); err != nil {
			t.Fatal(err)
		}
		if got := mustGet(t, c, "k2"); got != want {
			t.Fatalf("k2 = %v, want %q", got, want)
		}
	}
}
