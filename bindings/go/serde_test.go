package mcrs_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"

	mcrs "github.com/mcrs-project/mcrs-go"
)

// The seed's JSON serializer / deserializer (pymemcache docs,
// "Serialization"), as two Go functions for mcrs.SerdeFunc.
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

func TestJSONSerde(t *testing.T) {
	c, s := setup(t, mcrs.WithSerde(mcrs.SerdeFunc(jsonSerializer, jsonDeserializer)))
	in := map[string]any{
		"a": 1, "b": "two", "c": []any{1.5, true, nil}, "d": map[string]any{"nested": "yes"},
	}
	if err := c.Set(ctx, "key", in); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"a": 1.0, "b": "two", "c": []any{1.5, true, nil}, "d": map[string]any{"nested": "yes"},
	}
	if got := mustGet(t, c, "key"); !reflect.DeepEqual(got, want) {
		t.Fatalf("JSON round trip = %#v", got)
	}
	if err := c.Set(ctx, "s", "plain"); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetMany(ctx, []string{"key", "s"})
	if err != nil || !reflect.DeepEqual(got, map[string]any{"key": want, "s": "plain"}) {
		t.Fatalf("GetMany = %#v, %v", got, err)
	}
	// a struct goes through json.Marshal too
	type point struct{ X, Y int }
	if err := c.Set(ctx, "p", point{1, 2}); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, c, "p"); !reflect.DeepEqual(got, map[string]any{"X": 1.0, "Y": 2.0}) {
		t.Fatalf("struct = %#v", got)
	}
	// the flags are the serializer's: the default serde sees 1 as pickle
	def := newClient(t, []string{s.Addr})
	_, _, err = def.Get(ctx, "s")
	if !errors.Is(err, mcrs.ErrUnsupportedValue) {
		t.Fatalf("default serde on flags 1: %v", err)
	}
	// a serializer error is returned as is, and nothing is stored
	if err := c.Set(ctx, "bad", func() {}); err == nil {
		t.Fatal("json.Marshal of a func should fail")
	}
	mustMiss(t, c, "bad")
	// a deserializer error too
	c2 := newClient(t, []string{s.Addr}, mcrs.WithSerde(mcrs.SerdeFunc(nil, jsonDeserializer)))
	c2.Set(ctx, "b", []byte("x")) // default serializer: flags 0
	if _, _, err := c2.Get(ctx, "b"); err == nil || err.Error() != "unknown serialization format 0" {
		t.Fatalf("deserializer error = %v", err)
	}
}

// A Serde implemented as a type works as well as SerdeFunc.
type upperSerde struct{}

func (upperSerde) Serialize(key string, v any) ([]byte, uint32, error) {
	return []byte(fmt.Sprint(v)), 7, nil
}

func (upperSerde) Deserialize(key string, data []byte, flags uint32) (any, error) {
	return fmt.Sprintf("%s/%d/%s", key, flags, data), nil
}

func TestSerdeInterface(t *testing.T) {
	c, _ := setup(t, mcrs.WithSerde(upperSerde{}))
	c.Set(ctx, "k", 3.5)
	if got := mustGet(t, c, "k"); got != "k/7/3.5" {
		t.Fatalf("custom serde: %v", got)
	}
	v, cas, found, err := c.Gets(ctx, "k")
	if err != nil || !found || cas == 0 || v != "k/7/3.5" {
		t.Fatalf("Gets = %v %v %v %v", v, cas, found, err)
	}
}
