package published

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
)

// wireAliases are names of the metadata that are artefacts of the vendor's
// SDK generator, with the name that travels on the wire (see
// tables/README.md): "StartedAtstartedAt" is the running container's
// start time.
var wireAliases = map[string]string{"StartedAtstartedAt": "StartedAt"}

// Field returns the published response field at path (exact case).
func (o *Operation) Field(path string) (Field, bool) {
	if f, ok := o.Fields[path]; ok {
		return f, ok
	}
	for p, f := range o.Fields {
		if aliased(p) == path {
			return f, true
		}
	}
	return Field{}, false
}

// FieldFold is Field ignoring case, the way encoding/json matches keys.
func (o *Operation) FieldFold(path string) (Field, bool) {
	if f, ok := o.Field(path); ok {
		return f, ok
	}
	for p, f := range o.Fields {
		if strings.EqualFold(aliased(p), path) {
			return f, true
		}
	}
	return Field{}, false
}

func aliased(path string) string {
	for from, to := range wireAliases {
		if strings.HasSuffix(path, "."+from) {
			return strings.TrimSuffix(path, from) + to
		}
	}
	return path
}

// isMapPath reports whether path (or one of its parents) is a published
// map ("Attributes{}"), whose keys are free.
func (o *Operation) isMapPath(path string) bool {
	_, ok := o.Fields[path+"{}"]
	return ok
}

// CheckJSON walks a JSON answer of the operation and returns one message
// per value whose path is not published (exact case, as the simulator must
// render it) or whose JSON type does not fit the published type. null
// values are accepted wherever the path is published.
func (o *Operation) CheckJSON(body []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return []string{fmt.Sprintf("%s: answer is not JSON: %v", o.Name, err)}
	}
	var out []string
	o.walk("", v, &out)
	sort.Strings(out)
	return out
}

func (o *Operation) walk(path string, v any, out *[]string) {
	switch x := v.(type) {
	case map[string]any:
		if path != "" {
			if o.isMapPath(path) {
				return
			}
			f, ok := o.Field(path)
			if !ok {
				*out = append(*out, fmt.Sprintf("%s: %s is not a published response field", o.Name, path))
				return
			}
			if f.Type != "object" {
				*out = append(*out, fmt.Sprintf("%s: %s is an object, published as %s", o.Name, path, f.Type))
				return
			}
		}
		for k, e := range x {
			p := k
			if path != "" {
				p = path + "." + k
			}
			o.walk(p, e, out)
		}
	case []any:
		f, ok := o.Field(path + "[]")
		if !ok {
			if _, scalar := o.Field(path); scalar {
				*out = append(*out, fmt.Sprintf("%s: %s is an array, published as a single %s", o.Name, path, o.Fields[path].Type))
			} else {
				*out = append(*out, fmt.Sprintf("%s: %s[] is not a published response field", o.Name, path))
			}
			return
		}
		for _, e := range x {
			if e == nil {
				continue
			}
			if _, isObj := e.(map[string]any); isObj && f.Type == "object" {
				for k, ev := range e.(map[string]any) {
					o.walk(path+"[]."+k, ev, out)
				}
				continue
			}
			if msg := scalarMismatch(f.Type, e); msg != "" {
				*out = append(*out, fmt.Sprintf("%s: %s[] item %s", o.Name, path, msg))
			}
		}
	default:
		f, ok := o.Field(path)
		if !ok {
			if _, arr := o.Field(path + "[]"); arr {
				*out = append(*out, fmt.Sprintf("%s: %s is a single value, published as an array", o.Name, path))
				return
			}
			*out = append(*out, fmt.Sprintf("%s: %s is not a published response field", o.Name, path))
			return
		}
		if v == nil {
			return
		}
		if msg := scalarMismatch(f.Type, v); msg != "" {
			*out = append(*out, fmt.Sprintf("%s: %s %s", o.Name, path, msg))
		}
	}
}

// scalarMismatch describes how a JSON scalar does not fit typ, or "".
func scalarMismatch(typ string, v any) string {
	switch x := v.(type) {
	case string:
		if typ == "string" {
			return ""
		}
		return fmt.Sprintf("is a JSON string %q, published as %s", x, typ)
	case bool:
		if typ == "bool" {
			return ""
		}
		return fmt.Sprintf("is a JSON boolean, published as %s", typ)
	case json.Number:
		switch typ {
		case "float32", "float64":
			return ""
		case "int32", "int64":
			n, err := x.Int64()
			if err != nil {
				return fmt.Sprintf("is %s, published as an integer (%s)", x, typ)
			}
			if typ == "int32" && (n < math.MinInt32 || n > math.MaxInt32) {
				return fmt.Sprintf("is %s, out of the published int32 range", x)
			}
			return ""
		}
		return fmt.Sprintf("is a JSON number %s, published as %s", x, typ)
	case map[string]any:
		return fmt.Sprintf("is an object, published as %s", typ)
	case []any:
		return fmt.Sprintf("is an array, published as %s", typ)
	}
	return fmt.Sprintf("has an unexpected JSON type %T", v)
}

// ScalarKind groups published scalar types for callers comparing Go
// types: "string", "bool", "int" (int32/int64), "float" (float32/float64);
// "object" for objects and maps.
func ScalarKind(typ string) string {
	switch typ {
	case "int32", "int64":
		return "int"
	case "float32", "float64":
		return "float"
	case "string", "bool", "object":
		return typ
	}
	if strings.HasPrefix(typ, "map[") {
		return "object"
	}
	return typ
}
