// Basic usage (pymemcache's "Basic Usage"): store a value and read it back.
//
//	cd bindings/go && go run ./examples/basic
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

	mcrs "github.com/mcrs-project/mcrs-go"
)

func servers() []string {
	if s := os.Getenv("MCRS_SERVERS"); s != "" {
		return strings.Split(s, ",")
	}
	return []string{"localhost:11211"}
}

func main() {
	client, err := mcrs.New(servers())
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background() // or a request\'s context: every call takes one

	if err := client.Set(ctx, "some_key", "some_value"); err != nil {
		log.Fatal(err)
	}
	result, found, err := client.Get(ctx, "some_key")
	if err != nil {
		log.Fatal(err)
	}
	if !found {
		log.Fatal("some_key: not found")
	}
	fmt.Printf("some_key = %v\n", result)
}
