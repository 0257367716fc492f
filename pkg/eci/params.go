package eci

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
)

// encodeParams flattens a request struct into RPC query parameters using the
// `eci` struct tags: nested structs join names with ".", slices become
// Name.1, Name.2, ... as the OpenAPI expects. Zero values are left out so the
// cloud applies its own defaults; pointers send their value even when zero,
// which is how a caller says "explicitly 0".
func encodeParams(req any) map[string]string {
	out := map[string]string{}
	encodeValue(out, "", reflect.ValueOf(req))
	return out
}

func encodeValue(out map[string]string, prefix string, v reflect.Value) {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return
		}
		elem := v.Elem()
		if elem.Kind() != reflect.Struct {
			out[prefix] = scalar(elem)
			return
		}
		v = elem
	}
	switch v.Kind() {
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			name := t.Field(i).Tag.Get("eci")
			if name == "" || name == "-" {
				continue
			}
			encodeValue(out, join(prefix, name), v.Field(i))
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			encodeValue(out, join(prefix, strconv.Itoa(i+1)), v.Index(i))
		}
	default:
		if v.IsZero() {
			return
		}
		out[prefix] = scalar(v)
	}
}

func scalar(v reflect.Value) string {
	switch v.Kind() {
	case reflect.Float32, reflect.Float64:
		// The SDK's typed requests send floats this way; the cloud accepts it.
		return strconv.FormatFloat(v.Float(), 'f', 6, 64)
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	default:
		return fmt.Sprint(v.Interface())
	}
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// jsonList encodes ids the way list-valued parameters such as
// ContainerGroupIds travel: as one JSON array string.
func jsonList(ids []string) string {
	b, _ := json.Marshal(ids)
	return string(b)
}
