package simulator

import (
	"encoding/json"
	"math"
	"sort"
	"strconv"
	"strings"
)

// params is a view of flat RPC parameters under a dotted prefix, e.g. the
// keys of "Container.2." with that prefix removed. The prefix is kept so
// that errors can name the full parameter ("Container.2.Cpu").
type params struct {
	m      map[string]string
	prefix string
}

func newParams(m map[string]string) params { return params{m: m} }

// name is the full wire name of key k.
func (p params) name(k string) string { return p.prefix + k }

func (p params) has(k string) bool {
	_, ok := p.m[k]
	return ok
}

func (p params) str(k string) string { return p.m[k] }

func (p params) required(k string) (string, *apiError) {
	v := strings.TrimSpace(p.m[k])
	if v == "" {
		return "", errMissing(p.name(k))
	}
	return v, nil
}

// boolean parses "true"/"false" (any case); absent gives def.
func (p params) boolean(k string, def bool) (bool, *apiError) {
	v, ok := p.m[k]
	if !ok || v == "" {
		return def, nil
	}
	switch strings.ToLower(v) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, errInvalid(p.name(k), "%q is not a boolean", v)
}

// integer parses a decimal integer within [lo, hi]; absent gives def.
func (p params) integer(k string, def, lo, hi int64) (int64, *apiError) {
	v, ok := p.m[k]
	if !ok || v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		// The SDK formats some integers as floats ("1.000000").
		f, ferr := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if ferr != nil || f != math.Trunc(f) {
			return 0, errInvalid(p.name(k), "%q is not an integer", v)
		}
		n = int64(f)
	}
	if n < lo || n > hi {
		return 0, errInvalid(p.name(k), "%d is out of range [%d, %d]", n, lo, hi)
	}
	return n, nil
}

// float parses a number within [lo, hi]; absent gives 0 and false.
func (p params) float(k string, lo, hi float64) (float64, bool, *apiError) {
	v, ok := p.m[k]
	if !ok || v == "" {
		return 0, false, nil
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false, errInvalid(p.name(k), "%q is not a number", v)
	}
	if f < lo || f > hi {
		return 0, false, errInvalid(p.name(k), "%v is out of range [%v, %v]", f, lo, hi)
	}
	return f, true, nil
}

// indexed groups keys "prefix.N" (leaf=true) or "prefix.N.rest" (leaf=false)
// by N in ascending order. N must be a positive integer.
func (p params) indexed(prefix string, leaf bool) ([]int, map[int]map[string]string, *apiError) {
	pre := prefix + "."
	groups := map[int]map[string]string{}
	for k, v := range p.m {
		if !strings.HasPrefix(k, pre) {
			continue
		}
		rest := k[len(pre):]
		idx, tail, hasTail := strings.Cut(rest, ".")
		if hasTail == leaf {
			continue
		}
		n, err := strconv.Atoi(idx)
		if err != nil || n < 1 {
			return nil, nil, errInvalid(p.name(prefix+"."+idx), "list index must be a positive integer")
		}
		if groups[n] == nil {
			groups[n] = map[string]string{}
		}
		groups[n][tail] = v
	}
	order := make([]int, 0, len(groups))
	for n := range groups {
		order = append(order, n)
	}
	sort.Ints(order)
	return order, groups, nil
}

// list returns the objects of a repeated structure "prefix.N.field".
func (p params) list(prefix string) ([]params, *apiError) {
	order, groups, err := p.indexed(prefix, false)
	if err != nil {
		return nil, err
	}
	out := make([]params, 0, len(order))
	for _, n := range order {
		out = append(out, params{m: groups[n], prefix: p.prefix + prefix + "." + strconv.Itoa(n) + "."})
	}
	return out, nil
}

// hasList reports whether any "prefix.N..." key is present.
func (p params) hasList(prefix string) bool {
	pre := prefix + "."
	for k := range p.m {
		if strings.HasPrefix(k, pre) {
			return true
		}
	}
	return false
}

// strings returns the values of a repeated scalar "prefix.N".
func (p params) strings(prefix string) ([]string, *apiError) {
	order, groups, err := p.indexed(prefix, true)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(order))
	for _, n := range order {
		out = append(out, groups[n][""])
	}
	return out, nil
}

// sub returns the view of keys under "prefix." (a nested object).
func (p params) sub(prefix string) params {
	pre := prefix + "."
	m := map[string]string{}
	for k, v := range p.m {
		if strings.HasPrefix(k, pre) {
			m[k[len(pre):]] = v
		}
	}
	return params{m: m, prefix: p.prefix + pre}
}

// jsonStrings parses a parameter that carries a JSON array of strings,
// such as ContainerGroupIds, with at most max items.
func (p params) jsonStrings(k string, max int) ([]string, bool, *apiError) {
	v := strings.TrimSpace(p.m[k])
	if v == "" {
		return nil, false, nil
	}
	var out []string
	if err := json.Unmarshal([]byte(v), &out); err != nil {
		return nil, false, errInvalid(p.name(k), "must be a JSON array of strings, e.g. [\"a\",\"b\"]")
	}
	if len(out) > max {
		return nil, false, errInvalid(p.name(k), "at most %d items are allowed, got %d", max, len(out))
	}
	return out, true, nil
}
