// Using a memcached cluster (pymemcache's HashClient): keys are spread over
// several servers. With the default Rendezvous distribution the placement is
// pymemcache's, so Go and Python clients of the same servers share items.
//
//	MCRS_SERVERS=127.0.0.1:11211,127.0.0.1:11212 go run ./examples/cluster
//
// The servers come from MCRS_SERVERS (comma-separated host:port list),
// default localhost:11211 (a cluster of one).
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"sort"
	"strings"

	mcrs "github.com/mcrs-project/mcrs-go"
)

func servers() []string {
	if s := os.Getenv("MCRS_SERVERS"); s != "" {
		return strings.Split(s, ",")
	}
	return []string{"localhost:11211"}
}

func main() {
	client, err := mcrs.New(servers(), mcrs.Distribution(mcrs.Rendezvous))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background() // or a request\'s context: every call takes one

	if err := client.Set(ctx, "some_key", "some value"); err != nil {
		log.Fatal(err)
	}
	result, _, err := client.Get(ctx, "some_key")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("some_key = %v\n", result)

	// multi-key commands are split by server, one pipelined request each
	items := map[string]any{}
	var keys []string
	for i := 0; i < 100; i++ {
		k := fmt.Sprintf("cluster_key_%d", i)
		items[k] = i
		keys = append(keys, k)
	}
	failed, err := client.SetMany(ctx, items, mcrs.Noreply(false))
	if err != nil {
		log.Fatal(err)
	}
	values, err := client.GetMany(ctx, keys)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("stored %d keys (%d failed), read back %d\n", len(items), len(failed), len(values))

	stats, err := client.Stats(ctx)
	if err != nil {
		log.Fatal(err)
	}
	var addrs []string
	for addr := range stats {
		addrs = append(addrs, addr)
	}
	sort.Strings(addrs)
	for _, addr := range addrs {
		fmt.Printf("%s holds %s items\n", addr, stats[addr]["curr_items"])
	}
	if err := client.DeleteMany(ctx, keys); err != nil {
		log.Fatal(err)
	}
}
