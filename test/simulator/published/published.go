// Package published holds the ECI OpenAPI surface (product Eci, version
// 2018-08-08) as the vendor publishes it: per operation, every request
// parameter and every response field with its type. The tables are
// embedded test data copied from the vendor's API metadata (June 2025);
// see README.md. The simulator refuses parameters that are not published
// here, and tests walk the client's types against them.
package published

import (
	"embed"
	"fmt"
	"path"
	"strings"
	"sync"
)

//go:embed tables/*.tsv
var tables embed.FS

// Param is one published request parameter. Name is the wire pattern with
// "N" for every list index, e.g. "Container.N.EnvironmentVar.N.Key".
type Param struct {
	Name        string
	Type        string
	Description string
}

// Field is one published response field. Path is the JSON path: names
// joined with ".", "[]" after an array, "{}" after a map, e.g.
// "ContainerGroups[].Containers[].Name". Type is the element type for
// arrays ("string", "object", ...), "object" for objects and maps.
type Field struct {
	Path string
	Type string
}

// Operation is the published surface of one action.
type Operation struct {
	Name   string
	Params map[string]Param
	Fields map[string]Field
}

// CommonParams are the RPC-style common parameters the SDK adds to every
// call (signature v1). They are published once for all operations, not in
// the per-operation tables. RegionId is not among them: each table lists
// it where the operation takes it.
var CommonParams = map[string]bool{
	"Action": true, "Version": true, "Format": true, "AccessKeyId": true,
	"Signature": true, "SignatureMethod": true, "SignatureVersion": true,
	"SignatureNonce": true, "SignatureType": true, "Timestamp": true,
	"SecurityToken": true, "BearerToken": true,
}

var load = sync.OnceValues(parseAll)

// Operations returns every published operation by action name. The result
// is shared: callers must not modify it.
func Operations() (map[string]*Operation, error) { return load() }

// Lookup returns the published operation of action.
func Lookup(action string) (*Operation, bool) {
	ops, err := load()
	if err != nil {
		return nil, false
	}
	op, ok := ops[action]
	return op, ok
}

// Pattern turns a wire parameter name into its published pattern: every
// dot-separated segment made only of digits (a list index) becomes "N",
// so "Container.3.EnvironmentVar.12.Key" gives
// "Container.N.EnvironmentVar.N.Key".
func Pattern(name string) string {
	segs := strings.Split(name, ".")
	for i, s := range segs {
		if s != "" && strings.Trim(s, "0123456789") == "" {
			segs[i] = "N"
		}
	}
	return strings.Join(segs, ".")
}

// Param returns the published parameter that the wire name matches.
func (o *Operation) Param(name string) (Param, bool) {
	p, ok := o.Params[Pattern(name)]
	return p, ok
}

func parseAll() (map[string]*Operation, error) {
	files, err := tables.ReadDir("tables")
	if err != nil {
		return nil, err
	}
	out := map[string]*Operation{}
	for _, f := range files {
		if path.Ext(f.Name()) != ".tsv" {
			continue
		}
		b, err := tables.ReadFile("tables/" + f.Name())
		if err != nil {
			return nil, err
		}
		op, err := Parse(string(b))
		if err != nil {
			return nil, fmt.Errorf("published table %s: %w", f.Name(), err)
		}
		if want := strings.TrimSuffix(f.Name(), ".tsv"); op.Name != want {
			return nil, fmt.Errorf("published table %s: names operation %q", f.Name(), op.Name)
		}
		out[op.Name] = op
	}
	return out, nil
}

// Parse reads one table: a "# Action (...)" title, the request parameters
// ("name<TAB>type<TAB>description"), a "# Response fields" heading, then
// the response fields ("path<TAB>type").
func Parse(text string) (*Operation, error) {
	op := &Operation{Params: map[string]Param{}, Fields: map[string]Field{}}
	response := false
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		if strings.HasPrefix(line, "#") {
			h := strings.TrimSpace(strings.TrimPrefix(line, "#"))
			switch {
			case op.Name == "":
				op.Name, _, _ = strings.Cut(h, " ")
			case strings.HasPrefix(h, "Response fields"):
				response = true
			}
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) < 2 || cols[0] == "" || cols[1] == "" {
			return nil, fmt.Errorf("line %d: want name<TAB>type, got %q", i+1, line)
		}
		if response {
			op.Fields[cols[0]] = Field{Path: cols[0], Type: cols[1]}
			continue
		}
		p := Param{Name: cols[0], Type: cols[1]}
		if len(cols) > 2 {
			p.Description = cols[2]
		}
		op.Params[p.Name] = p
	}
	if op.Name == "" {
		return nil, fmt.Errorf("no \"# Action\" title line")
	}
	if len(op.Fields) == 0 {
		return nil, fmt.Errorf("no response fields")
	}
	return op, nil
}
