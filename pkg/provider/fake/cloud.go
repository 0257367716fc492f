// Package fake is an in-memory, scriptable provider.Cloud for unit tests of
// the provider: the ECI API without HTTP, signing, quotas or a clock of its
// own.
//
// Contract:
//   - Every call is recorded before it is answered, with a deep copy of its
//     request; Calls, CallCount and the typed accessors return copies.
//   - Each operation has a queue of one-shot Handlers (Script, NextError,
//     LoseAnswer). A call takes the first queued handler of its operation;
//     with none queued, the default in-memory behaviour answers it.
//   - The default behaviour keeps container groups the way the cloud does:
//     Create places a group in the first vSwitch (in request order) whose
//     zone has stock, honours ClientToken (same token and parameters: the
//     same group; other parameters: IdempotentParameterMismatch), and stores
//     the group Pending; the two Describe operations filter by ids, tags
//     (key present, and value equal when given), zone, vSwitch, name,
//     status and SinceSecond, newest first, paged by Limit and NextToken;
//     Delete removes. Tests drive a group's life with SetStatus and
//     UpdateGroup, and take stock away with SetStock.
//   - Errors are *eci.Error values classified by pkg/eci itself (see
//     APIError), so the provider treats them as the cloud's answers.
//   - Reset returns the fake to the state New returns.
//   - A Cloud is safe for concurrent use; a handler runs without the fake's
//     lock held, so it may block (a slow create) or call the fake.
package fake

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider"
)

// Operation names: the OpenAPI actions, as eci.Error.Action names them.
const (
	OpCreate         = "CreateContainerGroup"
	OpDescribe       = "DescribeContainerGroups"
	OpDescribeStatus = "DescribeContainerGroupStatus"
	OpDelete         = "DeleteContainerGroup"
	OpUpdate         = "UpdateContainerGroup"
	OpDescribeLog    = "DescribeContainerLog"
	OpExec           = "ExecContainerCommand"
	OpMetric         = "DescribeMultiContainerGroupMetric"
)

var _ provider.Cloud = (*Cloud)(nil)

// Call is one recorded call.
type Call struct {
	// Op is the operation, one of the Op constants.
	Op string
	// Req is a deep copy of the request: the request pointer of the
	// operation (e.g. *eci.CreateContainerGroupRequest), or the group id
	// (a string) for DeleteContainerGroup.
	Req any
	// Resp is a deep copy of the response (nil on error, and for Delete
	// and Update, which answer nothing).
	Resp any
	// Err is the error returned.
	Err error
	// Done says the call has returned; a call still being answered (a
	// scripted slow create) is recorded with Done false.
	Done bool
}

// Handler answers one call instead of the default behaviour. req is the
// call's request as the caller passed it (see Call.Req for its type); base
// runs the default behaviour for this request, so a handler can wrap it:
// delay it, or let it take effect and lose its answer. A handler returns
// the response of the operation's type (e.g.
// *eci.CreateContainerGroupResponse; nil for Delete and Update) or an
// error; a response of another type panics, as a broken test should.
type Handler func(ctx context.Context, req any, base func() (any, error)) (any, error)

// Cloud is the fake. The zero value is not usable; call New.
type Cloud struct {
	mu      sync.Mutex
	calls   []*Call
	scripts map[string][]Handler
	state   *store
}

// New returns an empty fake of region cn-hangzhou: no vSwitches (declare
// them with AddVSwitch), every zone in stock, no groups.
func New() *Cloud {
	return &Cloud{scripts: map[string][]Handler{}, state: newStore()}
}

// Reset forgets every call, script, vSwitch, group, ClientToken and
// stock setting: the fake is as New returned it.
func (c *Cloud) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = nil
	c.scripts = map[string][]Handler{}
	c.state = newStore()
}

// Script queues h to answer the next unanswered call of op.
func (c *Cloud) Script(op string, h Handler) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.scripts[op] = append(c.scripts[op], h)
}

// NextError makes the next call of op fail with err, without effect.
func (c *Cloud) NextError(op string, err error) {
	c.Script(op, func(context.Context, any, func() (any, error)) (any, error) { return nil, err })
}

// LoseAnswer makes the next call of op take effect and then fail with
// err, as when the cloud acted on a call but its answer was lost (use
// NoResponse(op) for err).
func (c *Cloud) LoseAnswer(op string, err error) {
	c.Script(op, func(_ context.Context, _ any, base func() (any, error)) (any, error) {
		_, _ = base()
		return nil, err
	})
}

// Pending returns how many scripted handlers of op no call has used yet.
func (c *Cloud) Pending(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.scripts[op])
}

// Calls returns copies of the recorded calls of op, oldest first; op ""
// returns every call.
func (c *Cloud) Calls(op string) []Call {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Call
	for _, call := range c.calls {
		if op == "" || call.Op == op {
			// Err is handed out as returned: errors are compared by
			// identity, and may hold unexported state clone cannot copy.
			out = append(out, Call{Op: call.Op, Req: clone(call.Req), Resp: clone(call.Resp), Err: call.Err, Done: call.Done})
		}
	}
	return out
}

// CallCount returns how many calls of op were made (answered or not).
func (c *Cloud) CallCount(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, call := range c.calls {
		if call.Op == op {
			n++
		}
	}
	return n
}

// CreateRequests returns copies of the requests of every
// CreateContainerGroup call, oldest first.
func (c *Cloud) CreateRequests() []*eci.CreateContainerGroupRequest {
	var out []*eci.CreateContainerGroupRequest
	for _, call := range c.Calls(OpCreate) {
		out = append(out, call.Req.(*eci.CreateContainerGroupRequest))
	}
	return out
}

// DeletedIDs returns the group ids of every DeleteContainerGroup call,
// oldest first, whatever their answer.
func (c *Cloud) DeletedIDs() []string {
	var out []string
	for _, call := range c.Calls(OpDelete) {
		out = append(out, call.Req.(string))
	}
	return out
}

// do records a call of op and answers it with the first queued handler, or
// with def.
func do[Resp any](c *Cloud, ctx context.Context, op string, req any, def func(*store) (Resp, error)) (Resp, error) {
	call := &Call{Op: op, Req: clone(req)}
	c.mu.Lock()
	c.calls = append(c.calls, call)
	var h Handler
	if q := c.scripts[op]; len(q) > 0 {
		h = q[0]
		c.scripts[op] = q[1:]
	}
	c.mu.Unlock()

	base := func() (any, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		return def(c.state)
	}
	var resp Resp
	var err error
	if h == nil {
		var out any
		out, err = base()
		resp, _ = out.(Resp)
	} else {
		var out any
		out, err = h(ctx, req, base)
		if out != nil {
			r, ok := out.(Resp)
			if !ok {
				panic(fmt.Sprintf("fake: the script for %s returned %T, want %T", op, out, resp))
			}
			resp = r
		}
	}
	c.mu.Lock()
	if err == nil {
		call.Resp = clone(any(resp))
		if isNil(call.Resp) {
			call.Resp = nil
		}
	}
	call.Err = err
	call.Done = true
	c.mu.Unlock()
	return resp, err
}

// isNil reports whether v is nil or holds a nil pointer.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}

// noResp is the response type of operations that answer nothing.
type noResp struct{}

// CreateContainerGroup implements provider.Cloud.
func (c *Cloud) CreateContainerGroup(ctx context.Context, req *eci.CreateContainerGroupRequest) (*eci.CreateContainerGroupResponse, error) {
	return do(c, ctx, OpCreate, req, func(s *store) (*eci.CreateContainerGroupResponse, error) { return s.create(req) })
}

// DescribeContainerGroups implements provider.Cloud.
func (c *Cloud) DescribeContainerGroups(ctx context.Context, req *eci.DescribeContainerGroupsRequest) (*eci.DescribeContainerGroupsResponse, error) {
	return do(c, ctx, OpDescribe, req, func(s *store) (*eci.DescribeContainerGroupsResponse, error) { return s.describe(req) })
}

// DescribeContainerGroupStatus implements provider.Cloud.
func (c *Cloud) DescribeContainerGroupStatus(ctx context.Context, req *eci.DescribeContainerGroupStatusRequest) (*eci.DescribeContainerGroupStatusResponse, error) {
	return do(c, ctx, OpDescribeStatus, req, func(s *store) (*eci.DescribeContainerGroupStatusResponse, error) {
		return s.describeStatus(req)
	})
}

// DeleteContainerGroup implements provider.Cloud.
func (c *Cloud) DeleteContainerGroup(ctx context.Context, id string) error {
	_, err := do(c, ctx, OpDelete, id, func(s *store) (*noResp, error) { return nil, s.delete(id) })
	return err
}

// UpdateContainerGroup implements provider.Cloud.
func (c *Cloud) UpdateContainerGroup(ctx context.Context, req *eci.UpdateContainerGroupRequest) error {
	_, err := do(c, ctx, OpUpdate, req, func(s *store) (*noResp, error) { return nil, s.update(req) })
	return err
}

// DescribeContainerLog implements provider.Cloud.
func (c *Cloud) DescribeContainerLog(ctx context.Context, req *eci.DescribeContainerLogRequest) (*eci.DescribeContainerLogResponse, error) {
	return do(c, ctx, OpDescribeLog, req, func(s *store) (*eci.DescribeContainerLogResponse, error) { return s.log(req) })
}

// ExecContainerCommand implements provider.Cloud.
func (c *Cloud) ExecContainerCommand(ctx context.Context, req *eci.ExecContainerCommandRequest) (*eci.ExecContainerCommandResponse, error) {
	return do(c, ctx, OpExec, req, func(s *store) (*eci.ExecContainerCommandResponse, error) { return s.exec(req) })
}

// DescribeMultiContainerGroupMetric implements provider.Cloud.
func (c *Cloud) DescribeMultiContainerGroupMetric(ctx context.Context, req *eci.DescribeMultiContainerGroupMetricRequest) (*eci.DescribeMultiContainerGroupMetricResponse, error) {
	return do(c, ctx, OpMetric, req, func(s *store) (*eci.DescribeMultiContainerGroupMetricResponse, error) { return s.metric(req) })
}

// AddVSwitch declares vSwitch id in zone; creates may only name declared
// vSwitches (others are InvalidVSwitchId.NotFound, as in the cloud).
func (c *Cloud) AddVSwitch(id, zone string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.state.vswitches[id] = zone
}

// SetStock gives zone stock (true, the default) or takes it away: creates
// skip vSwitches of a zone without stock, and answer NoStock when none of
// the requested vSwitches is left.
func (c *Cloud) SetStock(zone string, inStock bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.state.noStock[zone] = !inStock
}

// AddGroup stores a group as if an earlier create (another process, a
// lost answer) had made it with req, its ClientToken remembered; no call
// is recorded. It returns the group id.
func (c *Cloud) AddGroup(req *eci.CreateContainerGroupRequest) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	resp, err := c.state.create(clone(req))
	if err != nil {
		return "", err
	}
	return resp.ContainerGroupId, nil
}

// SetStatus moves group id to status (an eci.Status* constant) and its
// containers with it: Running starts and readies them, Succeeded ends them
// with exit code 0, Failed with exit code 1, Pending makes them wait. Other
// statuses change the group's status only.
func (c *Cloud) SetStatus(id, status string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state.setStatus(id, status)
}

// UpdateGroup lets f change group id in place (events, IPs, container
// states) and marks it changed for SinceSecond.
func (c *Cloud) UpdateGroup(id string, f func(*eci.ContainerGroup)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, ok := c.state.groups[id]
	if !ok {
		return fmt.Errorf("fake: UpdateGroup: no group %q", id)
	}
	f(&g.ContainerGroup)
	g.changedAt = c.state.now()
	return nil
}

// Lose removes group id without a call, as when the cloud loses a group
// (host failure, deleted outside Kubernetes). It reports whether the group
// existed.
func (c *Cloud) Lose(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.state.groups[id]
	delete(c.state.groups, id)
	return ok
}

// SetClock replaces the fake's clock (time.Now by default), which stamps
// creation and status times and decides which groups SinceSecond selects.
func (c *Cloud) SetClock(now func() time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.state.now = now
}

// SetLog sets the log text of a container of group id (the previous run's
// with previous), which DescribeContainerLog returns.
func (c *Cloud) SetLog(id, container string, previous bool, content string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.state.logs[logKey{id, container, previous}] = content
}

// SetMetric sets the samples DescribeMultiContainerGroupMetric returns for
// group id.
func (c *Cloud) SetMetric(id string, records []eci.MetricRecord) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.state.metrics[id] = clone(records)
}

// Groups returns copies of every group, oldest first.
func (c *Cloud) Groups() []eci.ContainerGroup {
	c.mu.Lock()
	defer c.mu.Unlock()
	all := c.state.sorted()
	out := make([]eci.ContainerGroup, 0, len(all))
	for i := len(all) - 1; i >= 0; i-- {
		out = append(out, clone(all[i].ContainerGroup))
	}
	return out
}

// Group returns a copy of group id.
func (c *Cloud) Group(id string) (eci.ContainerGroup, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, ok := c.state.groups[id]
	if !ok {
		return eci.ContainerGroup{}, false
	}
	return clone(g.ContainerGroup), true
}

// Request returns a copy of the create request group id was made with, as
// UpdateContainerGroup calls changed it since.
func (c *Cloud) Request(id string) (*eci.CreateContainerGroupRequest, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, ok := c.state.groups[id]
	if !ok {
		return nil, false
	}
	return clone(g.req), true
}

// ids returns the sorted keys of m, for stable messages.
func ids[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
