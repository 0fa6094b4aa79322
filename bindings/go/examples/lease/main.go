// A cached function under a lease (stampede protection): many goroutines
// ask for the same expensive value at once, and only one of them computes
// it; after an invalidation the others are served the stale value while
// one recomputes.
//
//	cd bindings/go && go run ./examples/lease
//	examples/run_example.sh go:lease     # from the repository root, with a private memcached
//
// The servers come from MCRS_SERVERS (comma-separated host:port list),
// default localhost:11211.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mcrs "github.com/mcrs-project/mcrs-go"
)

func servers() []string {
	if s := os.Getenv("MCRS_SERVERS"); s != "" {
		return strings.Split(s, ",")
	}
	return []string{"localhost:11211"}
}

// computations counts the calls of the expensive function.
var computations atomic.Int64

// loadReport is the expensive function: a slow query, say.
func loadReport(ctx context.Context, version string) (any, error) {
	computations.Add(1)
	select {
	case <-time.After(50 * time.Millisecond):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return "report " + version, nil
}

// report is the cached function users write: the cached value when there is
// one (fresh, or stale while someone recomputes), else computed by the one
// caller that holds the lease and stored for 5 minutes.
func report(ctx context.Context, c *mcrs.Client, key, version string) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second) // how long a caller waits at most
	defer cancel()
	return c.GetOrCompute(ctx, key, 10 /* lease TTL, s */, func(ctx context.Context) (any, error) {
		return loadReport(ctx, version)
	}, mcrs.Expire(300))
}

// herd calls report from n goroutines at once and counts the values seen.
func herd(c *mcrs.Client, n int, key, version string) map[any]int {
	var mu sync.Mutex
	seen := map[any]int{}
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := report(context.Background(), c, key, version)
			if err != nil {
				log.Fatal(err)
			}
			mu.Lock()
			seen[v]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	return seen
}

func main() {
	c, err := mcrs.New(servers())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	key := fmt.Sprintf("example:lease:%d", time.Now().UnixNano())

	seen := herd(c, 20, key, "v1")
	fmt.Printf("20 callers on a cold key: computed %d time(s); values %v\n", computations.Load(), seen)

	// the source changed: mark the cached value stale instead of deleting it
	if err := c.Invalidate(ctx, key, 30); err != nil {
		log.Fatal(err)
	}
	computations.Store(0)
	seen = herd(c, 20, key, "v2")
	fmt.Printf("20 callers after invalidate: computed %d time(s); %d served the stale value meanwhile\n",
		computations.Load(), seen["report v1"])
	v, _, err := c.Get(ctx, key)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s = %v\n", key[:len("example:lease")], v)
}
