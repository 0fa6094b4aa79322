package mcrs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"time"

	mcrs "github.com/mcrs-project/mcrs-go"
)

// The examples run against a memcached that the tests start; its address is
// in sharedAddr (in your code: "localhost:11211").

// Basic usage, as in pymemcache's documentation.
func Example() {
	ctx := context.Background() // or the context of the request being served
	client, err := mcrs.New([]string{sharedAddr})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	if err := client.Set(ctx, "some_key", "some_value"); err != nil {
		log.Fatal(err)
	}
	result, found, err := client.Get(ctx, "some_key")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(result, found)
	// Output: some_value true
}

// Values written with the default serde keep their type: []byte, string and
// integers, with pymemcache's flags.
func ExampleDefaultSerde() {
	ctx := context.Background() // or the context of the request being served
	client, _ := mcrs.New([]string{sharedAddr})
	defer client.Close()

	client.Set(ctx, "ex:bytes", []byte{1, 2, 3})
	client.Set(ctx, "ex:text", "héllo")
	client.Set(ctx, "ex:int", 42)
	values, _ := client.GetMany(ctx, []string{"ex:bytes", "ex:text", "ex:int", "ex:missing"})
	for _, k := range []string{"ex:bytes", "ex:text", "ex:int", "ex:missing"} {
		v, ok := values[k]
		fmt.Printf("%s: %T %v %v\n", k, v, v, ok)
	}
	// Output:
	// ex:bytes: []uint8 [1 2 3] true
	// ex:text: string héllo true
	// ex:int: int64 42 true
	// ex:missing: <nil> <nil> false
}

// The seed's JSON serializer and deserializer, passed as two functions.
func ExampleSerdeFunc() {
	ctx := context.Background() // or the context of the request being served
	jsonSerializer := func(key string, value any) ([]byte, uint32, error) {
		if s, ok := value.(string); ok {
			return []byte(s), 1, nil
		}
		b, err := json.Marshal(value)
		return b, 2, err
	}
	jsonDeserializer := func(key string, data []byte, flags uint32) (any, error) {
		switch flags {
		case 1:
			return string(data), nil
		case 2:
			var v any
			return v, json.Unmarshal(data, &v)
		}
		return nil, errors.New("unknown serialization format")
	}
	client, _ := mcrs.New([]string{sharedAddr},
		mcrs.WithSerde(mcrs.SerdeFunc(jsonSerializer, jsonDeserializer)))
	defer client.Close()

	client.Set(ctx, "ex:json", map[string]any{"a": "b", "c": "d"})
	result, _, _ := client.Get(ctx, "ex:json")
	fmt.Println(result)
	// Output: map[a:b c:d]
}

// Check-and-set: Gets reads the cas unique, Cas stores only if it is unchanged.
func ExampleClient_Cas() {
	ctx := context.Background() // or the context of the request being served
	client, _ := mcrs.New([]string{sharedAddr})
	defer client.Close()

	client.Set(ctx, "ex:cas", 1)
	_, cas, _, _ := client.Gets(ctx, "ex:cas")
	fmt.Println(client.Cas(ctx, "ex:cas", 2, cas))
	err := client.Cas(ctx, "ex:cas", 3, cas) // stale cas unique
	fmt.Println(errors.Is(err, mcrs.ErrExists))
	// Output:
	// <nil>
	// true
}

// Noreply is on by default for storage commands, as in pymemcache: a failed
// condition is only reported when the call waits for the reply.
func ExampleNoreply() {
	ctx := context.Background() // or the context of the request being served
	client, _ := mcrs.New([]string{sharedAddr})
	defer client.Close()

	client.Set(ctx, "ex:noreply", "v", mcrs.Expire(60))
	fmt.Println(client.Add(ctx, "ex:noreply", "w"))
	fmt.Println(client.Add(ctx, "ex:noreply", "w", mcrs.Noreply(false)))
	// Output:
	// <nil>
	// mcrs: add "ex:noreply": not stored
}

// Incr and Decr report a missing key with found == false.
func ExampleClient_Incr() {
	ctx := context.Background() // or the context of the request being served
	client, _ := mcrs.New([]string{sharedAddr}, mcrs.Timeout(500*time.Millisecond))
	defer client.Close()

	client.Delete(ctx, "ex:counter")
	_, found, _ := client.Incr(ctx, "ex:counter", 1)
	fmt.Println(found)
	client.Set(ctx, "ex:counter", 10)
	n, _, _ := client.Incr(ctx, "ex:counter", 5)
	fmt.Println(n)
	// Output:
	// false
	// 15
}
