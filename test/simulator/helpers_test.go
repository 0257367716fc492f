package simulator

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk"
	sdkerrors "github.com/aliyun/alibaba-cloud-sdk-go/sdk/errors"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
)

// t0 is the fake clock's start; any fixed instant works.
var t0 = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

// testEnv is a simulator behind an httptest server plus a real SDK client.
type testEnv struct {
	t      *testing.T
	sim    *Simulator
	srv    *httptest.Server
	clock  *FakeClock
	client *sdk.Client
	host   string
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newEnv starts a simulator with DefaultConfig (fake clock, no throttling
// unless mutate enables it) and stops everything when the test ends.
func newEnv(t *testing.T, mutate func(*Config)) *testEnv {
	t.Helper()
	clock := NewFakeClock(t0)
	cfg := DefaultConfig()
	cfg.Clock = clock
	cfg.Seed = 42
	cfg.QuotaScale = 0
	cfg.Logger = quietLogger()
	if mutate != nil {
		mutate(&cfg)
	}
	sim, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(func() {
		srv.Close()
		sim.Close()
	})
	e := &testEnv{t: t, sim: sim, srv: srv, clock: clock, host: strings.TrimPrefix(srv.URL, "http://")}
	e.client = e.newClient(DefaultAccessKeyID, DefaultAccessKeySecret)
	return e
}

// sub rebinds the env to a subtest so helper failures stop the subtest.
func (e *testEnv) sub(t *testing.T) *testEnv {
	c := *e
	c.t = t
	return &c
}

// newClient builds a real SDK client the way product code does.
func (e *testEnv) newClient(id, secret string) *sdk.Client {
	e.t.Helper()
	client, err := sdk.NewClientWithAccessKey(e.sim.Config().RegionId, id, secret)
	if err != nil {
		e.t.Fatalf("NewClientWithAccessKey: %v", err)
	}
	client.GetConfig().WithScheme("HTTP")
	client.SetNoProxy("127.0.0.1")
	return client
}

// request builds a CommonRequest for action against the test server.
func (e *testEnv) request(action string, params map[string]string) *requests.CommonRequest {
	req := requests.NewCommonRequest()
	req.Method = "POST"
	req.Scheme = "http"
	req.Domain = e.host
	req.Version = APIVersion
	req.Product = "Eci"
	req.ApiName = action
	for k, v := range params {
		req.QueryParams[k] = v
	}
	return req
}

// callWith sends one request with client and decodes the JSON response.
func (e *testEnv) callWith(client *sdk.Client, action string, params map[string]string, out any) error {
	e.t.Helper()
	resp, err := client.ProcessCommonRequest(e.request(action, params))
	if err != nil {
		return err
	}
	if !resp.IsSuccess() {
		e.t.Fatalf("%s: unexpected HTTP %d", action, resp.GetHttpStatus())
	}
	if out != nil {
		if err := json.Unmarshal(resp.GetHttpContentBytes(), out); err != nil {
			e.t.Fatalf("%s: decoding %s: %v", action, resp.GetHttpContentString(), err)
		}
	}
	return nil
}

func (e *testEnv) call(action string, params map[string]string, out any) error {
	e.t.Helper()
	return e.callWith(e.client, action, params, out)
}

// mustCall fails the test on error.
func (e *testEnv) mustCall(action string, params map[string]string, out any) {
	e.t.Helper()
	if err := e.call(action, params, out); err != nil {
		e.t.Fatalf("%s: %v", action, err)
	}
}

// serverError asserts err is an SDK ServerError and returns it.
func serverError(t *testing.T, err error) *sdkerrors.ServerError {
	t.Helper()
	var se *sdkerrors.ServerError
	if !errors.As(err, &se) {
		t.Fatalf("want *errors.ServerError, got %T: %v", err, err)
	}
	return se
}

// wantCode asserts err is a ServerError with code and HTTP status.
func wantCode(t *testing.T, err error, code string, status int) *sdkerrors.ServerError {
	t.Helper()
	if err == nil {
		t.Fatalf("want error %s, got success", code)
	}
	se := serverError(t, err)
	if se.ErrorCode() != code || se.HttpStatus() != status {
		t.Fatalf("want %s/%d, got %s/%d: %s", code, status, se.ErrorCode(), se.HttpStatus(), se.Message())
	}
	return se
}

// createParams is a minimal valid CreateContainerGroup request.
func createParams(name string, extra map[string]string) map[string]string {
	p := map[string]string{
		"ContainerGroupName": name,
		"SecurityGroupId":    DefaultSecurityGroupID,
		"VSwitchId":          "vsw-sim-h",
		"Container.1.Name":   "main",
		"Container.1.Image":  "nginx:1.25",
	}
	for k, v := range extra {
		if v == "" {
			delete(p, k)
			continue
		}
		p[k] = v
	}
	return p
}

// create creates a group and returns its id.
func (e *testEnv) create(name string, extra map[string]string) string {
	e.t.Helper()
	var out struct{ ContainerGroupId string }
	e.mustCall("CreateContainerGroup", createParams(name, extra), &out)
	if !strings.HasPrefix(out.ContainerGroupId, "eci-") {
		e.t.Fatalf("bad ContainerGroupId %q", out.ContainerGroupId)
	}
	return out.ContainerGroupId
}

// script returns container params running `sh -c script`.
func script(prefix, s string) map[string]string {
	return map[string]string{prefix + ".Command.1": "/bin/sh", prefix + ".Command.2": "-c", prefix + ".Arg.1": s}
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// describe returns one group, with its events, through
// DescribeContainerGroups.
func (e *testEnv) describe(id string) ContainerGroup {
	e.t.Helper()
	var out struct {
		ContainerGroups []ContainerGroup
		TotalCount      int
	}
	e.mustCall("DescribeContainerGroups", map[string]string{"ContainerGroupIds": `["` + id + `"]`, "WithEvent": "true"}, &out)
	if len(out.ContainerGroups) != 1 {
		e.t.Fatalf("describe %s: got %d groups", id, len(out.ContainerGroups))
	}
	return out.ContainerGroups[0]
}

// admin performs an unsigned admin request and decodes the JSON reply.
func (e *testEnv) admin(method, path, body string, out any) int {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			e.t.Fatalf("admin %s %s: decoding %q: %v", method, path, data, err)
		}
	}
	return resp.StatusCode
}

// omit removes a default parameter in rawCall.
const omit = "\x00omit"

// rawCall sends a hand-signed request (for protocol edge cases).
func (e *testEnv) rawCall(method string, params map[string]string, secret string) (int, map[string]any) {
	e.t.Helper()
	full := map[string]string{
		"Format": "JSON", "Version": APIVersion, "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0",
		"SignatureNonce": e.sim.newRequestID(), "AccessKeyId": DefaultAccessKeyID, "SignatureType": "",
		"Timestamp": time.Now().UTC().Format("2006-01-02T15:04:05Z"), "RegionId": DefaultRegionID,
	}
	for k, v := range params {
		if v == omit {
			delete(full, k)
			continue
		}
		full[k] = v
	}
	full["Signature"] = ComputeSignature(StringToSign(method, full), secret)
	q := url.Values{}
	for k, v := range full {
		q.Set(k, v)
	}
	req, err := http.NewRequest(method, e.srv.URL+"/?"+q.Encode(), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}
