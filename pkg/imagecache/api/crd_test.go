package api

import (
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// crdFile is the chart's CustomResourceDefinition of ImageCache.
const crdFile = "../../../charts/ack-virtual-node/crds/imagecaches.yaml"

// schemaNode is the part of an OpenAPI v3 schema the test walks.
type schemaNode struct {
	Type       string                `json:"type"`
	Properties map[string]schemaNode `json:"properties"`
	Items      *schemaNode           `json:"items"`
}

// TestCRDSchemaHasEveryField: the apiserver prunes every field its
// structural schema does not list, so a field of the Go types missing
// from the chart's CRD would be dropped on every write without an error
// (a status the controller writes and never reads back). Each JSON field
// of the spec, the status and a status event is in the schema, and the
// schema lists nothing the types do not have.
func TestCRDSchemaHasEveryField(t *testing.T) {
	raw, err := os.ReadFile(crdFile)
	if err != nil {
		t.Fatal(err)
	}
	var crd struct {
		Spec struct {
			Group    string `json:"group"`
			Names    struct{ Kind, Plural string }
			Versions []struct {
				Name   string `json:"name"`
				Schema struct {
					OpenAPIV3Schema schemaNode `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(raw, &crd); err != nil {
		t.Fatalf("%s: %v", crdFile, err)
	}
	if crd.Spec.Group != Group || crd.Spec.Names.Kind != Kind || crd.Spec.Names.Plural != Resource {
		t.Errorf("%s names %s %s/%s, want %s %s/%s", crdFile, crd.Spec.Names.Kind, crd.Spec.Group, crd.Spec.Names.Plural, Kind, Group, Resource)
	}
	var root *schemaNode
	for i, v := range crd.Spec.Versions {
		if v.Name == Version {
			root = &crd.Spec.Versions[i].Schema.OpenAPIV3Schema
		}
	}
	if root == nil {
		t.Fatalf("%s has no version %s", crdFile, Version)
	}
	status := root.Properties["status"]
	events := status.Properties["events"].Items
	if events == nil {
		t.Fatalf("%s: status.events has no items schema", crdFile)
	}
	for _, tc := range []struct {
		path string
		typ  reflect.Type
		node schemaNode
	}{
		{"spec", reflect.TypeOf(ImageCacheSpec{}), root.Properties["spec"]},
		{"status", reflect.TypeOf(ImageCacheStatus{}), status},
		{"status.events[]", reflect.TypeOf(Event{}), *events},
	} {
		want := jsonFields(tc.typ)
		var have []string
		for k := range tc.node.Properties {
			have = append(have, k)
		}
		sort.Strings(have)
		if !reflect.DeepEqual(have, want) {
			t.Errorf("%s: schema %s lists %v, the Go type %s has %v: add the missing fields to the CRD (or remove the extra ones)",
				crdFile, tc.path, have, tc.typ, want)
		}
	}
}

// jsonFields are the JSON names of t's fields, sorted.
func jsonFields(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}
