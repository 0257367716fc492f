package eci

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
)

// Annotations are the annotations DescribeContainerGroupStatus reports for
// a group. The published type is a string holding a JSON object
// ("{\"k8s.aliyun.com/eci-instance-id\":\"eci-...\"}"). The field is
// optional and informational, so decoding is lenient: a plain object is
// taken too (non-string values as their JSON text), and anything else (a
// number, a string that is not a JSON object) leaves the map empty rather
// than failing the whole page of statuses.
type Annotations map[string]string

// UnmarshalJSON implements the lenient decoding described on Annotations.
func (a *Annotations) UnmarshalJSON(b []byte) error {
	*a = nil
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		b = []byte(s)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return nil
	}
	out := make(Annotations, len(m))
	for k, v := range m {
		var str string
		if err := json.Unmarshal(v, &str); err == nil {
			out[k] = str
		} else {
			out[k] = string(v)
		}
	}
	*a = out
	return nil
}

// UnmarshalJSON decodes one item of DescribeContainerGroupStatus. When a
// field has a type other than the one expected, that field alone is left
// at its zero value and named in Undecoded; the other fields, and the rest
// of the page, are kept. Only an item that is not a JSON object fails.
func (g *GroupStatus) UnmarshalJSON(b []byte) error {
	type plain GroupStatus
	var p plain
	if err := json.Unmarshal(b, &p); err == nil {
		*g = GroupStatus(p)
		return nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*g = GroupStatus{}
	v := reflect.ValueOf(g).Elem()
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		val, ok := raw[name]
		if !ok {
			for k, rv := range raw { // encoding/json matches keys ignoring case
				if strings.EqualFold(k, name) {
					val, ok = rv, true
					break
				}
			}
		}
		if !ok {
			continue
		}
		if err := json.Unmarshal(val, v.Field(i).Addr().Interface()); err != nil {
			v.Field(i).SetZero()
			g.Undecoded = append(g.Undecoded, name+" ("+strconv.Quote(abbrev(string(val)))+")")
		}
	}
	return nil
}

// abbrev shortens a raw JSON value for a message.
func abbrev(s string) string {
	const max = 60
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
