package mcrs_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mcrs "github.com/mcrs-project/mcrs-go"
)

// stop SIGSTOPs the server (it accepts nothing and answers nothing) until
// the returned function resumes it; it is resumed at the end of t anyway.
func stop(t *testing.T, s *memcachedServer) (resume func()) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// the signal is asynchronous: wait until the kernel shows it stopped
	stat := fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid)
	for i := 0; i < 200; i++ {
		b, err := os.ReadFile(stat)
		if err != nil || strings.Contains(string(b), ") T ") {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	var once sync.Once
	resume = func() { once.Do(func() { s.cmd.Process.Signal(syscall.SIGCONT) }) }
	t.Cleanup(resume)
	return resume
}

func wantCtxErr(t *testing.T, err, ctxErr, sentinel error) {
	t.Helper()
	if !errors.Is(err, ctxErr) || !errors.Is(err, sentinel) {
		t.Fatalf("error %v (%T); want errors.Is %v and %v", err, err, ctxErr, sentinel)
	}
	var e *mcrs.Error
	if !errors.As(err, &e) || e.Op == "" {
		t.Fatalf("error %#v is not an *mcrs.Error with its op", err)
	}
}

func TestCtxAlreadyDone(t *testing.T) {
	c, _ := setup(t)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	expired, cancel2 := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel2()
	calls := map[string]func(context.Context) error{
		"Set":     func(x context.Context) error { return c.Set(x, "k", "v") },
		"Get":     func(x context.Context) error { _, _, err := c.Get(x, "k"); return err },
		"GetMany": func(x context.Context) error { _, err := c.GetMany(x, []string{"k"}); return err },
		"Incr":    func(x context.Context) error { _, _, err := c.Incr(x, "n", 1); return err },
		"Delete":  func(x context.Context) error { return c.Delete(x, "k") },
		"Stats":   func(x context.Context) error { _, err := c.Stats(x); return err },
		"Version": func(x context.Context) error { _, err := c.Version(x); return err },
		"Verbose": func(x context.Context) error { return c.Verbosity(x, 0) },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			wantCtxErr(t, call(cancelled), context.Canceled, mcrs.ErrCancelled)
			wantCtxErr(t, call(expired), context.DeadlineExceeded, mcrs.ErrTimeout)
		})
	}
	// the client is fine afterwards
	if err := c.Set(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, c, "k"); got != "v" {
		t.Fatalf("k = %v", got)
	}
}

// On a stalled server a ctx deadline shorter than the client's Timeout
// ends the call on time, a cancel ends it at once, and once the server
// resumes every reply goes to its own request (no wrong value).
func TestCtxStalledServer(t *testing.T) {
	c, s := setup(t, mcrs.Timeout(5*time.Second))
	for _, k := range []string{"a", "b", "c"} {
		if err := c.Set(ctx, k, "value of "+k); err != nil {
			t.Fatal(err)
		}
	}
	resume := stop(t, s)

	// deadline: 100 ms, returned within 150 ms
	for i := 0; i < 3; i++ {
		dctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		t0 := time.Now()
		_, _, err := c.Get(dctx, "a")
		took := time.Since(t0)
		cancel()
		wantCtxErr(t, err, context.DeadlineExceeded, mcrs.ErrTimeout)
		if took < 100*time.Millisecond || took > 150*time.Millisecond {
			t.Fatalf("Get with a 100ms deadline on a stalled server took %v", took)
		}
	}

	// cancel: returns at once
	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { _, _, err := c.Get(cctx, "b"); errc <- err }()
	time.Sleep(50 * time.Millisecond)
	select {
	case err := <-errc:
		t.Fatalf("Get returned before the cancel: %v", err)
	default:
	}
	t0 := time.Now()
	cancel()
	err := <-errc
	if took := time.Since(t0); took > 20*time.Millisecond {
		t.Fatalf("Get took %v to return after its cancel", took)
	}
	wantCtxErr(t, err, context.Canceled, mcrs.ErrCancelled)

	// requests given up on still get their replies later: a Set and Gets
	// of other keys queued behind them must see their own values
	setCtx, cancelSet := context.WithTimeout(ctx, 50*time.Millisecond)
	wantCtxErr(t, c.Set(setCtx, "c", "new value of c", mcrs.Noreply(false)), context.DeadlineExceeded, mcrs.ErrTimeout)
	cancelSet()
	resume()
	for k, want := range map[string]string{"a": "value of a", "b": "value of b", "c": "new value of c"} {
		v, found, err := c.Get(ctx, k)
		if err != nil || !found || v != want {
			t.Fatalf("after resume: Get(%s) = %v, %v, %v; want %q", k, v, found, err, want)
		}
	}
	m, err := c.GetMany(ctx, []string{"a", "b", "c", "zz"})
	if err != nil || len(m) != 3 || m["a"] != "value of a" || m["c"] != "new value of c" {
		t.Fatalf("after resume: GetMany = %v, %v", m, err)
	}
}

// Without a ctx deadline the client's Timeout bounds the call.
func TestClientTimeoutStalledServer(t *testing.T) {
	c, s := setup(t, mcrs.Timeout(200*time.Millisecond))
	if err := c.Set(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	resume := stop(t, s)
	t0 := time.Now()
	_, _, err := c.Get(ctx, "k")
	took := time.Since(t0)
	wantIs(t, err, mcrs.ErrTimeout)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a client timeout matched context.DeadlineExceeded: %v", err)
	}
	if took < 150*time.Millisecond || took > 2*time.Second {
		t.Fatalf("Get took %v with a 200ms timeout", took)
	}
	resume()
	// the timed-out request's connection was dropped or resynchronised
	deadline := time.Now().Add(3 * time.Second)
	for {
		v, found, err := c.Get(ctx, "k")
		if err == nil {
			if !found || v != "v" {
				t.Fatalf("after resume: Get = %v, %v", v, found)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after resume: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Many goroutines share one loop; some give up early (short deadlines,
// cancels). Every value that comes back is the right one.
func TestManyGoroutinesWithCancels(t *testing.T) {
	c, _ := setup(t)
	const goroutines, ops = 64, 200
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for i := 0; i < ops; i++ {
				k := fmt.Sprintf("m%d-%d", g, i%10)
				want := fmt.Sprintf("v%d-%d", g, i)
				if err := c.Set(ctx, k, want, mcrs.Noreply(false)); err != nil {
					errs <- err
					return
				}
				x, cancel := ctx, context.CancelFunc(func() {})
				switch r.IntN(4) {
				case 0:
					x, cancel = context.WithTimeout(ctx, time.Duration(r.IntN(200))*time.Microsecond)
				case 1:
					x, cancel = context.WithCancel(ctx)
					go cancel()
				}
				got, found, err := c.Get(x, k)
				cancel()
				switch {
				case err != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)):
				case err != nil:
					errs <- err
					return
				case !found || got != want:
					errs <- fmt.Errorf("Get(%s) = %v, %v; want %s", k, got, found, want)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// GetMany over a cluster of 3 servers: keys spread over all of them, one
// request per server, every value right; ctx cancels it like any call.
func TestClusterGetMany(t *testing.T) {
	s1, s2, s3 := newServer(t), newServer(t), newServer(t)
	c := newClient(t, []string{s1.Addr, s2.Addr, s3.Addr}, mcrs.DefaultNoreply(false))
	items := make(map[string]any)
	var keys []string
	for i := 0; i < 300; i++ {
		k := fmt.Sprintf("cluster:%d", i)
		keys = append(keys, k)
		items[k] = fmt.Sprintf("value %d", i)
	}
	failed, err := c.SetMany(ctx, items)
	if err != nil || len(failed) != 0 {
		t.Fatalf("SetMany = %v, %v", failed, err)
	}
	m, err := c.GetMany(ctx, append(keys, "absent"))
	if err != nil || len(m) != len(keys) {
		t.Fatalf("GetMany: %d values, %v", len(m), err)
	}
	for k, v := range items {
		if m[k] != v {
			t.Fatalf("GetMany[%s] = %v; want %v", k, m[k], v)
		}
	}
	st, err := c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*memcachedServer{s1, s2, s3} {
		if n := st[s.Addr]["curr_items"]; n == "" || n == "0" {
			t.Fatalf("%s holds %q items; the keys should be spread", s.Addr, n)
		}
	}
	// one stalled server: a deadline ends the call
	resume := stop(t, s2)
	dctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	m, err = c.GetMany(dctx, keys)
	t.Logf("GetMany with s2 stopped: %d values, %v, %v", len(m), err, time.Since(t0))
	if took := time.Since(t0); took > 150*time.Millisecond {
		t.Fatalf("GetMany with one stalled server took %v", took)
	}
	wantCtxErr(t, err, context.DeadlineExceeded, mcrs.ErrTimeout)
	resume()
	m, err = c.GetMany(ctx, keys)
	if err != nil || len(m) != len(keys) {
		t.Fatalf("GetMany after resume: %d values, %v", len(m), err)
	}
}

// Close while calls wait on a stalled server: they complete (with an
// error) and Close returns; later calls get ErrClosed.
func TestCloseWithStalledCalls(t *testing.T) {
	s := newServer(t)
	c, err := mcrs.New([]string{s.Addr}, mcrs.Timeout(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	c.Set(ctx, "k", "v")
	stop(t, s)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := c.Get(ctx, "k"); err == nil {
				t.Error("Get on a stalled server succeeded")
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	done := make(chan struct{})
	go func() { c.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hung")
	}
	wg.Wait()
	if _, _, err := c.Get(ctx, "k"); err != mcrs.ErrClosed {
		t.Fatalf("Get after Close: %v", err)
	}
}

// A lone goroutine's reads may take the blocking path (Client.solo), on
// another connection than the loop's: they must still see its noreply
// writes, made on the loop just before.
func TestSoloReadsSeeNoreplyWrites(t *testing.T) {
	s := newServer(t)
	c := newClient(t, []string{s.Addr}) // noreply by default
	for i := 0; i < 2000; i++ {
		want := fmt.Sprintf("v%d", i)
		if err := c.Set(ctx, "k", want); err != nil {
			t.Fatal(err)
		}
		for j := 0; j < 2; j++ { // the second read may be solo
			if got := mustGet(t, c, "k"); got != want {
				t.Fatalf("iteration %d: Get = %v after a noreply Set of %s", i, got, want)
			}
		}
		if i%100 == 0 {
			if _, _, err := c.Incr(ctx, "n", 1, mcrs.Noreply(true)); err != nil {
				t.Fatal(err)
			}
			if v, _, _ := c.Get(ctx, "n"); v != nil && i > 0 && fmt.Sprint(v) == "" {
				t.Fatal("n empty")
			}
		}
	}
}
