package eci_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator/published"
)

// fill sets every exported field of v, recursively, to a non-zero value
// of its kind (slices get two items), so that an encoder sends every
// parameter a request type can carry.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem())
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := 0; i < 2; i++ {
			fill(v.Index(i))
		}
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(7)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1.5)
	}
}

func filled[T any]() *T {
	v := new(T)
	fill(reflect.ValueOf(v).Elem())
	return v
}

// recorder is a loopback endpoint that keeps the parameters of every call
// and answers {"RequestId": ...}; the client's signing and transport run
// for real, so what it records is what the cloud would receive.
type recorder struct {
	mu    sync.Mutex
	calls map[string][]map[string]string
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	_ = req.ParseForm()
	params := map[string]string{}
	for k, v := range req.Form {
		params[k] = v[0]
	}
	r.mu.Lock()
	r.calls[params["Action"]] = append(r.calls[params["Action"]], params)
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"RequestId":"rec"}`))
}

// TestRequestsArePublished sends every request type the client has, with
// every field set, and checks each parameter on the wire against the
// published table of its action: the name (N for list indexes) and that
// the value parses as the published type. Adding a field with an
// unpublished `eci` name to a request type fails here.
func TestRequestsArePublished(t *testing.T) {
	rec := &recorder{calls: map[string][]map[string]string{}}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	cred, err := eci.StaticCredential("id", "secret")
	if err != nil {
		t.Fatal(err)
	}
	c, err := eci.NewClient(eci.Config{RegionId: "cn-hangzhou", Endpoint: srv.URL, Credential: cred, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	check := func(action string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", action, err)
		}
	}
	_, err = c.CreateContainerGroup(ctx, filled[eci.CreateContainerGroupRequest]())
	check("CreateContainerGroup", err)
	check("UpdateContainerGroup", c.UpdateContainerGroup(ctx, filled[eci.UpdateContainerGroupRequest]()))
	_, err = c.DescribeContainerGroups(ctx, filled[eci.DescribeContainerGroupsRequest]())
	check("DescribeContainerGroups", err)
	_, err = c.DescribeContainerGroupStatus(ctx, filled[eci.DescribeContainerGroupStatusRequest]())
	check("DescribeContainerGroupStatus", err)
	check("DeleteContainerGroup", c.DeleteContainerGroup(ctx, "eci-x"))
	_, err = c.DescribeContainerLog(ctx, filled[eci.DescribeContainerLogRequest]())
	check("DescribeContainerLog", err)
	_, err = c.ExecContainerCommand(ctx, filled[eci.ExecContainerCommandRequest]())
	check("ExecContainerCommand", err)
	_, err = c.DescribeMultiContainerGroupMetric(ctx, filled[eci.DescribeMultiContainerGroupMetricRequest]())
	check("DescribeMultiContainerGroupMetric", err)
	_, err = c.CreateImageCache(ctx, filled[eci.CreateImageCacheRequest]())
	check("CreateImageCache", err)
	_, err = c.DescribeImageCaches(ctx, filled[eci.DescribeImageCachesRequest]())
	check("DescribeImageCaches", err)
	check("DeleteImageCache", c.DeleteImageCache(ctx, "imc-x"))

	var problems []string
	for action, calls := range rec.calls {
		op, ok := published.Lookup(action)
		if !ok {
			problems = append(problems, action+": not a published action")
			continue
		}
		for _, params := range calls {
			for k, v := range params {
				if published.CommonParams[k] {
					continue
				}
				p, ok := op.Param(k)
				if !ok {
					problems = append(problems, action+": sends "+k+", which is not published")
					continue
				}
				if msg := valueMismatch(p.Type, v); msg != "" {
					problems = append(problems, action+": "+k+"="+strconv.Quote(v)+" "+msg)
				}
			}
		}
	}
	if len(rec.calls) != 11 {
		t.Errorf("recorded %d actions, want 11: %v", len(rec.calls), rec.calls)
	}
	sort.Strings(problems)
	for _, p := range problems {
		t.Error(p)
	}
}

func valueMismatch(typ, v string) string {
	var err error
	switch published.ScalarKind(typ) {
	case "bool":
		_, err = strconv.ParseBool(v)
	case "int":
		_, err = strconv.ParseInt(v, 10, 64)
	case "float":
		_, err = strconv.ParseFloat(v, 64)
	}
	if err != nil {
		return "does not parse as the published " + typ
	}
	return ""
}

// TestResponsesArePublished walks the JSON fields of every response type
// the client decodes and checks each against the published response
// table of its action, ignoring case as encoding/json does: the path must
// be published, and the Go kind must decode the published JSON type.
// Adding a field the cloud does not return fails here.
func TestResponsesArePublished(t *testing.T) {
	for action, v := range map[string]any{
		"CreateContainerGroup":              eci.CreateContainerGroupResponse{},
		"DescribeContainerGroups":           eci.DescribeContainerGroupsResponse{},
		"DescribeContainerGroupStatus":      eci.DescribeContainerGroupStatusResponse{},
		"DescribeContainerLog":              eci.DescribeContainerLogResponse{},
		"ExecContainerCommand":              eci.ExecContainerCommandResponse{},
		"DescribeMultiContainerGroupMetric": eci.DescribeMultiContainerGroupMetricResponse{},
		"CreateImageCache":                  eci.CreateImageCacheResponse{},
		"DescribeImageCaches":               eci.DescribeImageCachesResponse{},
	} {
		op, ok := published.Lookup(action)
		if !ok {
			t.Errorf("%s: not a published action", action)
			continue
		}
		var problems []string
		walkType(op, "", reflect.TypeOf(v), &problems)
		for _, p := range problems {
			t.Errorf("%s: %s", action, p)
		}
	}
}

var rawMessage = reflect.TypeOf(json.RawMessage(nil))

func walkType(op *published.Operation, path string, t reflect.Type, problems *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == rawMessage || t.Kind() == reflect.Interface {
		return // kept raw: decodes any JSON type
	}
	unmarshaler := reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()
	if t.Kind() != reflect.Struct && (t.Implements(unmarshaler) || reflect.PointerTo(t).Implements(unmarshaler)) {
		// A lenient decoder of its own (e.g. Annotations): the field
		// must be published; its tests cover the JSON types it takes.
		if _, ok := op.FieldFold(path); !ok {
			*problems = append(*problems, path+" is decoded; not published")
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if path != "" && !fieldIs(op, path, "object") {
			*problems = append(*problems, path+" is decoded as an object; "+describe(op, path))
			return
		}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			p := name
			if path != "" {
				p = path + "." + name
			}
			walkType(op, p, f.Type, problems)
		}
	case reflect.Slice:
		if _, ok := op.FieldFold(path + "[]"); !ok {
			*problems = append(*problems, path+" is decoded as an array; "+describe(op, path+"[]"))
			return
		}
		walkType(op, path+"[]", t.Elem(), problems)
	case reflect.Map:
		if _, ok := op.FieldFold(path + "{}"); !ok {
			*problems = append(*problems, path+" is decoded as a map; "+describe(op, path))
		}
	default:
		want := map[reflect.Kind]string{reflect.String: "string", reflect.Bool: "bool",
			reflect.Float32: "float", reflect.Float64: "float"}[t.Kind()]
		if want == "" {
			want = "int"
		}
		f, ok := op.FieldFold(path)
		got := published.ScalarKind(f.Type)
		// A float decodes a published integer too.
		if !ok || !(got == want || (want == "float" && got == "int")) {
			*problems = append(*problems, path+" is decoded as "+t.Kind().String()+"; "+describe(op, path))
		}
	}
}

func fieldIs(op *published.Operation, path, typ string) bool {
	f, ok := op.FieldFold(path)
	return ok && f.Type == typ
}

func describe(op *published.Operation, path string) string {
	if f, ok := op.FieldFold(path); ok {
		return "published as " + f.Type
	}
	return "not published"
}
