package mcrs

import (
	"fmt"
	"reflect"
	"strconv"
)

// Flag values of pymemcache's serde (pymemcache.serde), which the default
// serde shares so that Go, Python, C and Node clients read each other's items.
const (
	FlagBytes      uint32 = 0      // raw bytes
	FlagPickle     uint32 = 1 << 0 // a pickled Python object (not decodable in Go)
	FlagInteger    uint32 = 1 << 1 // an integer in ASCII decimal
	FlagLong       uint32 = 1 << 2 // a Python 2 long in ASCII decimal
	FlagCompressed uint32 = 1 << 3 // compressed (pymemcache's CompressedSerde)
	FlagText       uint32 = 1 << 4 // UTF-8 text
)

// Serde turns values into stored bytes plus 32-bit flags and back: the
// seed's serializer / deserializer hooks (pymemcache's `serde`). A Client
// calls it from many goroutines at once, so it must be safe for concurrent use.
type Serde interface {
	// Serialize encodes value, stored under key, into bytes and flags.
	Serialize(key string, value any) ([]byte, uint32, error)
	// Deserialize decodes the bytes and flags read for key. data belongs to
	// the callee: it is a fresh copy that may be kept or modified.
	Deserialize(key string, data []byte, flags uint32) (any, error)
}

// SerializerFunc is the shape of Serde.Serialize as a function.
type SerializerFunc func(key string, value any) ([]byte, uint32, error)

// DeserializerFunc is the shape of Serde.Deserialize as a function.
type DeserializerFunc func(key string, data []byte, flags uint32) (any, error)

// SerdeFunc makes a Serde out of two functions, like pymemcache's
// `Client(..., serializer=f, deserializer=g)`. A nil function falls back to
// DefaultSerde's.
func SerdeFunc(serialize SerializerFunc, deserialize DeserializerFunc) Serde {
	if serialize == nil {
		serialize = DefaultSerde.Serialize
	}
	if deserialize == nil {
		deserialize = DefaultSerde.Deserialize
	}
	return funcSerde{serialize, deserialize}
}

type funcSerde struct {
	ser SerializerFunc
	de  DeserializerFunc
}

func (f funcSerde) Serialize(key string, value any) ([]byte, uint32, error) {
	return f.ser(key, value)
}

func (f funcSerde) Deserialize(key string, data []byte, flags uint32) (any, error) {
	return f.de(key, data, flags)
}

// DefaultSerde is the serde a Client uses unless WithSerde says otherwise. It
// follows pymemcache's pickle_serde for the types Go and Python share:
//
//	Serialize:   []byte -> flags 0 (as is)
//	             string -> flags 16 (FlagText; Go strings are stored as is,
//	                       Python expects UTF-8)
//	             int, int8..int64, uint, uint8..uint64 -> flags 2
//	                       (FlagInteger, ASCII decimal)
//	             types whose underlying kind is one of these (type ID string,
//	             json.RawMessage, ...) likewise
//	             anything else (bool, float, nil, structs, maps, ...) ->
//	                       an error matching ErrUnsupportedValue; use a custom
//	                       Serde (e.g. JSON) for those
//	Deserialize: flags 0 -> []byte
//	             FlagText set -> string
//	             FlagInteger or FlagLong set -> int64, or uint64 when the
//	                       number is above math.MaxInt64 (incr wraps at 2^64)
//	             FlagCompressed or FlagPickle set -> error (ErrUnsupportedValue)
//	             any other flags -> []byte (pymemcache returns the raw value)
//
// So a Go string reads back in Python as str, an int as int, []byte as bytes,
// and the reverse.
var DefaultSerde Serde = defaultSerde{}

type defaultSerde struct{}

func (defaultSerde) Serialize(key string, value any) ([]byte, uint32, error) {
	switch v := value.(type) {
	case []byte:
		return v, FlagBytes, nil
	case string:
		return []byte(v), FlagText, nil
	case int:
		return strconv.AppendInt(nil, int64(v), 10), FlagInteger, nil
	case int64:
		return strconv.AppendInt(nil, v, 10), FlagInteger, nil
	case int32:
		return strconv.AppendInt(nil, int64(v), 10), FlagInteger, nil
	case int16:
		return strconv.AppendInt(nil, int64(v), 10), FlagInteger, nil
	case int8:
		return strconv.AppendInt(nil, int64(v), 10), FlagInteger, nil
	case uint:
		return strconv.AppendUint(nil, uint64(v), 10), FlagInteger, nil
	case uint64:
		return strconv.AppendUint(nil, v, 10), FlagInteger, nil
	case uint32:
		return strconv.AppendUint(nil, uint64(v), 10), FlagInteger, nil
	case uint16:
		return strconv.AppendUint(nil, uint64(v), 10), FlagInteger, nil
	case uint8:
		return strconv.AppendUint(nil, uint64(v), 10), FlagInteger, nil
	}
	// named types (type ID string, json.RawMessage, ...) by their kind
	if value != nil {
		rv := reflect.ValueOf(value)
		switch rv.Kind() {
		case reflect.String:
			return []byte(rv.String()), FlagText, nil
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			return strconv.AppendInt(nil, rv.Int(), 10), FlagInteger, nil
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			return strconv.AppendUint(nil, rv.Uint(), 10), FlagInteger, nil
		case reflect.Slice:
			if rv.Type().Elem().Kind() == reflect.Uint8 {
				return rv.Bytes(), FlagBytes, nil
			}
		}
	}
	return nil, 0, fmt.Errorf("%w: the default serde cannot store a %T for key %q "+
		"([]byte, string and integers only; use WithSerde for other types)",
		ErrUnsupportedValue, value, key)
}

func (defaultSerde) Deserialize(key string, data []byte, flags uint32) (any, error) {
	switch {
	case flags == FlagBytes:
		return data, nil
	case flags&FlagCompressed != 0:
		return nil, fmt.Errorf("%w: key %q holds a compressed value (flags %d); "+
			"use a Serde that decompresses it", ErrUnsupportedValue, key, flags)
	case flags&FlagText != 0:
		return string(data), nil
	case flags&(FlagInteger|FlagLong) != 0:
		if n, err := strconv.ParseInt(string(data), 10, 64); err == nil {
			return n, nil
		}
		if n, err := strconv.ParseUint(string(data), 10, 64); err == nil {
			return n, nil
		}
		return nil, fmt.Errorf("%w: key %q has integer flags (%d) but its value %q "+
			"is not a 64-bit integer", ErrUnsupportedValue, key, flags, truncate(data))
	case flags&FlagPickle != 0:
		return nil, fmt.Errorf("%w: key %q holds a pickled Python object (flags %d); "+
			"read it with GetBytes or store it from Python as bytes, str or int",
			ErrUnsupportedValue, key, flags)
	default:
		return data, nil
	}
}

func truncate(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}
