// Serialization with the seed's JSON serializer and deserializer
// (pymemcache's `Client(..., serializer=json_serializer,
// deserializer=json_deserializer)`), passed as two functions.
//
//	cd bindings/go && go run ./examples/serde
//
// The servers come from MCRS_SERVERS (comma-separated host:port list),
// default localhost:11211.
package main

import (
	"context"
	"encoding/json"
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

func jsonSerializer(key string, value any) ([]byte, uint32, error) {
	if s, ok := value.(string); ok {
		return []byte(s), 1, nil
	}
	b, err := json.Marshal(value)
	return b, 2, err
}

func jsonDeserializer(key string, data []byte, flags uint32) (any, error) {
	switch flags {
	case 1:
		return string(data), nil
	case 2:
		var v any
		err := json.Unmarshal(data, &v)
		return v, err
	}
	return nil, fmt.Errorf("unknown serialization format %d", flags)
}

func main() {
	client, err := mcrs.New(servers(),
		mcrs.WithSerde(mcrs.SerdeFunc(jsonSerializer, jsonDeserializer)))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background() // or a request\'s context: every call takes one

	if err := client.Set(ctx, "key", map[string]any{"a": "b", "c": "d"}); err != nil {
		log.Fatal(err)
	}
	result, _, err := client.Get(ctx, "key")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("key = %v\n", result)
}
