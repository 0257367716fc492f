package fake

import (
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
)

// Region and VPC of the groups the fake makes.
const (
	Region = "cn-hangzhou"
	VPC    = "vpc-fake"
)

// The tags the provider puts on its groups and the cloud reads back into
// DescribeContainerGroupStatus's Name, Namespace and uuid (the simulator
// does the same with the same keys).
const (
	tagPodNamespace = "PodNamespace"
	tagPodName      = "PodName"
	tagPodUID       = "PodUID"
)

// maxVSwitches is the most vSwitches one create may list.
const maxVSwitches = 10

// group is a stored container group.
type group struct {
	eci.ContainerGroup
	seq int64
	// req is the create request, as updates changed it.
	req       *eci.CreateContainerGroupRequest
	changedAt time.Time
}

type tokenEntry struct {
	req *eci.CreateContainerGroupRequest
	id  string
}

type logKey struct {
	id, container string
	previous      bool
}

// store is the fake's in-memory cloud; the Cloud's mutex guards it.
type store struct {
	seq       int64
	vswitches map[string]string // vSwitch -> zone
	noStock   map[string]bool   // zone -> out of stock
	groups    map[string]*group
	tokens    map[string]tokenEntry // ClientToken -> first create
	logs      map[logKey]string
	metrics   map[string][]eci.MetricRecord
	now       func() time.Time
}

func newStore() *store {
	return &store{
		vswitches: map[string]string{}, noStock: map[string]bool{}, groups: map[string]*group{},
		tokens: map[string]tokenEntry{}, logs: map[logKey]string{}, metrics: map[string][]eci.MetricRecord{},
		now: time.Now,
	}
}

func (s *store) timestamp() string { return s.now().UTC().Format(time.RFC3339) }

// create is CreateContainerGroup's default behaviour.
func (s *store) create(in *eci.CreateContainerGroupRequest) (*eci.CreateContainerGroupResponse, error) {
	req := clone(in)
	switch {
	case req.SecurityGroupId == "":
		return nil, MissingParameter(OpCreate, "SecurityGroupId")
	case req.VSwitchId == "":
		return nil, MissingParameter(OpCreate, "VSwitchId")
	case len(req.Containers) == 0:
		return nil, MissingParameter(OpCreate, "Container.1.Image")
	}
	if st := req.ScheduleStrategy; st != "" && st != "VSwitchOrdered" && st != "VSwitchRandom" {
		return nil, InvalidParameter(OpCreate, "ScheduleStrategy", fmt.Sprintf("%q is not one of VSwitchOrdered, VSwitchRandom", st))
	}
	if t, ok := s.tokens[req.ClientToken]; ok && req.ClientToken != "" {
		if !reflect.DeepEqual(t.req, req) {
			return nil, IdempotentParameterMismatch()
		}
		return &eci.CreateContainerGroupResponse{RequestId: newRequestID(), ContainerGroupId: t.id}, nil
	}
	var vsws []string
	for _, v := range strings.Split(req.VSwitchId, ",") {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		if _, ok := s.vswitches[v]; !ok {
			return nil, APIError(OpCreate, http.StatusNotFound, CodeVSwitchNotFound, fmt.Sprintf("The specified VSwitchId %q does not exist.", v))
		}
		vsws = append(vsws, v)
	}
	if len(vsws) > maxVSwitches {
		return nil, InvalidParameter(OpCreate, "VSwitchId", fmt.Sprintf("at most %d vSwitches are allowed, got %d", maxVSwitches, len(vsws)))
	}
	// The first vSwitch whose zone has stock, in request order: what
	// VSwitchOrdered asks for, and one of the answers VSwitchRandom may give.
	vsw, zone := "", ""
	var tried []string
	for _, v := range vsws {
		z := s.vswitches[v]
		if s.noStock[z] {
			tried = append(tried, z)
			continue
		}
		vsw, zone = v, z
		break
	}
	if vsw == "" {
		return nil, NoStock(OpCreate, tried...)
	}
	s.seq++
	id := fmt.Sprintf("eci-fake%012d", s.seq)
	now := s.timestamp()
	g := &group{seq: s.seq, req: req, changedAt: s.now(), ContainerGroup: eci.ContainerGroup{
		ContainerGroupId: id, ContainerGroupName: req.ContainerGroupName, RegionId: Region,
		ZoneId: zone, VSwitchId: vsw, VpcId: VPC, SecurityGroupId: req.SecurityGroupId,
		Status: eci.StatusPending, Cpu: req.Cpu, Memory: req.Memory, InstanceType: req.InstanceType,
		IntranetIp:    fmt.Sprintf("10.%d.%d.%d", (s.seq>>16)&0xff, (s.seq>>8)&0xff, s.seq&0xff),
		RestartPolicy: req.RestartPolicy, CreationTime: now, Tags: clone(req.Tags),
		Containers: waiting(req.Containers), InitContainers: waitingInit(req.InitContainers),
	}}
	s.groups[id] = g
	if req.ClientToken != "" {
		s.tokens[req.ClientToken] = tokenEntry{req: req, id: id}
	}
	return &eci.CreateContainerGroupResponse{RequestId: newRequestID(), ContainerGroupId: id}, nil
}

func waiting(spec []eci.Container) []eci.ContainerStatus {
	var out []eci.ContainerStatus
	for _, c := range spec {
		out = append(out, eci.ContainerStatus{Name: c.Name, Image: c.Image,
			CurrentState: eci.ContainerState{State: "Waiting", Reason: "ContainerCreating"}})
	}
	return out
}

func waitingInit(spec []eci.InitContainer) []eci.ContainerStatus {
	cs := make([]eci.Container, len(spec))
	for i, c := range spec {
		cs[i] = eci.Container{Name: c.Name, Image: c.Image}
	}
	return waiting(cs)
}

// filter is what both Describe operations select groups by.
type filter struct {
	ids                     map[string]bool
	tags                    []eci.Tag
	zone, vsw, name, status string
	since                   time.Time
}

func (f filter) match(g *group) bool {
	if f.ids != nil && !f.ids[g.ContainerGroupId] {
		return false
	}
	if (f.zone != "" && g.ZoneId != f.zone) || (f.vsw != "" && g.VSwitchId != f.vsw) ||
		(f.name != "" && g.ContainerGroupName != f.name) || (f.status != "" && g.Status != f.status) {
		return false
	}
	if !f.since.IsZero() && g.changedAt.Before(f.since) {
		return false
	}
	// A tag filter matches groups that have the key, with that value when
	// one is given.
	for _, t := range f.tags {
		found := false
		for _, gt := range g.Tags {
			if gt.Key == t.Key && (t.Value == "" || gt.Value == t.Value) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func idSet(op string, ids []string) (map[string]bool, error) {
	if len(ids) > eci.MaxIDsPerCall {
		return nil, InvalidParameter(op, "ContainerGroupIds", fmt.Sprintf("%d ids given, at most %d per call", len(ids), eci.MaxIDsPerCall))
	}
	if len(ids) == 0 {
		return nil, nil
	}
	out := map[string]bool{}
	for _, id := range ids {
		out[id] = true
	}
	return out, nil
}

// sorted returns every group, newest first.
func (s *store) sorted() []*group {
	all := make([]*group, 0, len(s.groups))
	for _, g := range s.groups {
		all = append(all, g)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].seq > all[j].seq })
	return all
}

// page selects up to limit matching groups, newest first, after the
// NextToken (the sequence number of the last group of the previous page).
func (s *store) page(op, token string, f filter, limit int) ([]*group, string, int, error) {
	after := int64(-1)
	if token != "" {
		n, err := strconv.ParseInt(token, 10, 64)
		if err != nil || n < 0 {
			return nil, "", 0, InvalidParameter(op, "NextToken", fmt.Sprintf("%q is not a token this API returned", token))
		}
		after = n
	}
	var out []*group
	total, next := 0, ""
	for _, g := range s.sorted() {
		if !f.match(g) {
			continue
		}
		total++
		if after >= 0 && g.seq >= after {
			continue
		}
		if len(out) == limit {
			if next == "" {
				next = strconv.FormatInt(out[len(out)-1].seq, 10)
			}
			continue
		}
		out = append(out, g)
	}
	return out, next, total, nil
}

func limitOf(op string, limit, def, most int) (int, error) {
	switch {
	case limit == 0:
		return def, nil
	case limit < 0 || limit > most:
		return 0, InvalidParameter(op, "Limit", fmt.Sprintf("%d is not within [1, %d]", limit, most))
	}
	return limit, nil
}

// describe is DescribeContainerGroups' default behaviour.
func (s *store) describe(req *eci.DescribeContainerGroupsRequest) (*eci.DescribeContainerGroupsResponse, error) {
	ids, err := idSet(OpDescribe, req.ContainerGroupIds)
	if err != nil {
		return nil, err
	}
	limit, err := limitOf(OpDescribe, req.Limit, eci.MaxDescribeLimit, eci.MaxDescribeLimit)
	if err != nil {
		return nil, err
	}
	f := filter{ids: ids, tags: req.Tags, zone: req.ZoneId, vsw: req.VSwitchId, name: req.ContainerGroupName, status: req.Status}
	groups, next, total, err := s.page(OpDescribe, req.NextToken, f, limit)
	if err != nil {
		return nil, err
	}
	out := &eci.DescribeContainerGroupsResponse{RequestId: newRequestID(), NextToken: next, TotalCount: total,
		ContainerGroups: []eci.ContainerGroup{}}
	for _, g := range groups {
		out.ContainerGroups = append(out.ContainerGroups, clone(g.ContainerGroup))
	}
	return out, nil
}

// describeStatus is DescribeContainerGroupStatus' default behaviour.
func (s *store) describeStatus(req *eci.DescribeContainerGroupStatusRequest) (*eci.DescribeContainerGroupStatusResponse, error) {
	ids, err := idSet(OpDescribeStatus, req.ContainerGroupIds)
	if err != nil {
		return nil, err
	}
	limit, err := limitOf(OpDescribeStatus, req.Limit, eci.MaxStatusLimit, eci.MaxStatusLimit)
	if err != nil {
		return nil, err
	}
	f := filter{ids: ids, tags: req.Tags, zone: req.ZoneId, vsw: req.VSwitchId}
	if req.SinceSecond > 0 {
		f.since = s.now().Add(-time.Duration(req.SinceSecond) * time.Second)
	}
	groups, next, total, err := s.page(OpDescribeStatus, req.NextToken, f, limit)
	if err != nil {
		return nil, err
	}
	out := &eci.DescribeContainerGroupStatusResponse{RequestId: newRequestID(), NextToken: next, TotalCount: total,
		Data: []eci.GroupStatus{}}
	for _, g := range groups {
		out.Data = append(out.Data, renderStatus(g))
	}
	return out, nil
}

// renderStatus is a group as DescribeContainerGroupStatus reports it: the
// pod's identity from the group's tags and a Kubernetes-shaped status.
func renderStatus(g *group) eci.GroupStatus {
	tag := func(k string) string {
		for _, t := range g.Tags {
			if t.Key == k {
				return t.Value
			}
		}
		return ""
	}
	ps := eci.PodStatus{Phase: podPhase(g.Status), PodIp: g.IntranetIp, HostIp: g.IntranetIp, StartTime: g.CreationTime}
	for _, c := range g.Containers {
		pcs := eci.PodContainerStatus{Name: c.Name, Image: c.Image, ImageID: c.Image, Ready: c.Ready, RestartCount: c.RestartCount}
		switch c.CurrentState.State {
		case "Running":
			pcs.State.Running = &struct {
				StartedAt string `json:"startedAt"`
			}{StartedAt: c.CurrentState.StartTime}
		case "Terminated":
			pcs.State.Terminated = &struct {
				ExitCode   int32  `json:"exitCode"`
				Signal     int32  `json:"signal"`
				Reason     string `json:"reason"`
				Message    string `json:"message"`
				StartedAt  string `json:"startedAt"`
				FinishedAt string `json:"finishedAt"`
			}{ExitCode: c.CurrentState.ExitCode, Reason: c.CurrentState.Reason, StartedAt: c.CurrentState.StartTime, FinishedAt: c.CurrentState.FinishTime}
		default:
			pcs.State.Waiting = &struct {
				Reason  string `json:"reason"`
				Message string `json:"message"`
			}{Reason: c.CurrentState.Reason, Message: c.CurrentState.Message}
		}
		ps.ContainerStatuses = append(ps.ContainerStatuses, pcs)
	}
	return eci.GroupStatus{
		ContainerGroupId: g.ContainerGroupId, Name: tag(tagPodName), Namespace: tag(tagPodNamespace), UID: tag(tagPodUID),
		Status: g.Status, Annotations: map[string]string{"k8s.aliyun.com/eci-instance-id": g.ContainerGroupId}, PodStatus: ps,
	}
}

func podPhase(status string) string {
	switch status {
	case eci.StatusRunning, eci.StatusRestarting, eci.StatusUpdating, eci.StatusTerminating:
		return "Running"
	case eci.StatusSucceeded:
		return "Succeeded"
	case eci.StatusFailed, eci.StatusExpired, eci.StatusScheduleFailed:
		return "Failed"
	}
	return "Pending"
}

// delete is DeleteContainerGroup's default behaviour.
func (s *store) delete(id string) error {
	if _, ok := s.groups[id]; !ok {
		return GroupNotFound(OpDelete, id)
	}
	delete(s.groups, id)
	return nil
}

// lookup returns group id for op, or the cloud's error.
func (s *store) lookup(op, id string) (*group, error) {
	if id == "" {
		return nil, MissingParameter(op, "ContainerGroupId")
	}
	g, ok := s.groups[id]
	if !ok {
		return nil, GroupNotFound(op, id)
	}
	return g, nil
}

// update is UpdateContainerGroup's default behaviour: the named volumes
// are replaced (IncrementalUpdate) or the given list replaces the group's
// (RenewUpdate), in the stored request. A replaced ConfigFileVolume keeps
// the file modes it was created with: the published update has no
// parameter for them. Only Pending and Running groups can be updated.
func (s *store) update(req *eci.UpdateContainerGroupRequest) error {
	g, err := s.lookup(OpUpdate, req.ContainerGroupId)
	if err != nil {
		return err
	}
	if g.Status != eci.StatusPending && g.Status != eci.StatusRunning {
		return IncorrectStatus(OpUpdate, fmt.Sprintf("The container group %s is %s; only Pending or Running groups can be updated.", g.ContainerGroupId, g.Status))
	}
	vols := make([]eci.Volume, 0, len(req.Volumes))
	for _, u := range req.Volumes {
		vols = append(vols, updatedVolume(g.req.Volumes, u))
	}
	switch req.UpdateType {
	case "", "RenewUpdate":
		if req.Volumes != nil {
			g.req.Volumes = vols
		}
	case eci.UpdateIncremental:
		for _, v := range vols {
			g.req.Volumes = replaceByName(g.req.Volumes, v, func(v eci.Volume) string { return v.Name })
		}
	default:
		return InvalidParameter(OpUpdate, "UpdateType", fmt.Sprintf("%q is not one of RenewUpdate, IncrementalUpdate", req.UpdateType))
	}
	g.changedAt = s.now()
	return nil
}

// updatedVolume is u as a stored volume, with the file modes of the
// same-named volume in old.
func updatedVolume(old []eci.Volume, u eci.UpdateVolume) eci.Volume {
	v := eci.Volume{Name: u.Name, Type: u.Type, EmptyDirMedium: u.EmptyDirMedium, EmptyDirSizeLimit: u.EmptyDirSizeLimit,
		NFSServer: u.NFSServer, NFSPath: u.NFSPath, NFSReadOnly: u.NFSReadOnly,
		FlexDriver: u.FlexDriver, FlexFsType: u.FlexFsType, FlexOptions: u.FlexOptions,
		HostPathType: u.HostPathType, HostPathPath: u.HostPathPath}
	var prev *eci.Volume
	for i := range old {
		if old[i].Name == u.Name {
			prev = &old[i]
		}
	}
	if prev != nil {
		v.ConfigFileDefaultMode = prev.ConfigFileDefaultMode
	}
	for _, f := range u.ConfigFileToPaths {
		file := eci.ConfigFileToPath{Path: f.Path, Content: f.Content}
		if prev != nil {
			for _, pf := range prev.ConfigFileToPaths {
				if pf.Path == f.Path {
					file.Mode = pf.Mode
				}
			}
		}
		v.ConfigFileToPaths = append(v.ConfigFileToPaths, file)
	}
	return v
}

func replaceByName[T any](list []T, item T, name func(T) string) []T {
	for i := range list {
		if name(list[i]) == name(item) {
			list[i] = item
			return list
		}
	}
	return append(list, item)
}

// container checks that group g has a container (or init container) name.
func container(op string, g *group, name string) error {
	for _, c := range append(append([]eci.ContainerStatus(nil), g.Containers...), g.InitContainers...) {
		if c.Name == name {
			return nil
		}
	}
	return APIError(op, http.StatusNotFound, CodeContainerNotFound,
		fmt.Sprintf("The specified ContainerName %q does not exist in container group %s.", name, g.ContainerGroupId))
}

// log is DescribeContainerLog's default behaviour: the text SetLog gave
// the container (its last Tail lines when Tail is set).
func (s *store) log(req *eci.DescribeContainerLogRequest) (*eci.DescribeContainerLogResponse, error) {
	g, err := s.lookup(OpDescribeLog, req.ContainerGroupId)
	if err != nil {
		return nil, err
	}
	if err := container(OpDescribeLog, g, req.ContainerName); err != nil {
		return nil, err
	}
	content := s.logs[logKey{g.ContainerGroupId, req.ContainerName, req.LastTime}]
	if req.Tail > 0 {
		lines := strings.SplitAfter(content, "\n")
		if lines[len(lines)-1] == "" {
			lines = lines[:len(lines)-1]
		}
		if len(lines) > req.Tail {
			content = strings.Join(lines[len(lines)-req.Tail:], "")
		}
	}
	return &eci.DescribeContainerLogResponse{RequestId: newRequestID(), ContainerName: req.ContainerName, Content: content}, nil
}

// ExecHost is the host of the stream URLs ExecContainerCommand answers
// with; it never resolves (.invalid), so a test that wants a session must
// script the answer.
const ExecHost = "exec.fake.invalid"

// exec is ExecContainerCommand's default behaviour: the checks of the
// cloud, and stream URLs no one serves (Sync: empty output).
func (s *store) exec(req *eci.ExecContainerCommandRequest) (*eci.ExecContainerCommandResponse, error) {
	if err := eci.CheckExecCommand(req.Command); err != nil {
		return nil, err
	}
	g, err := s.lookup(OpExec, req.ContainerGroupId)
	if err != nil {
		return nil, err
	}
	if err := container(OpExec, g, req.ContainerName); err != nil {
		return nil, err
	}
	if g.Status != eci.StatusRunning {
		return nil, IncorrectStatus(OpExec, fmt.Sprintf("The container group %s is %s; commands run in Running groups only.", g.ContainerGroupId, g.Status))
	}
	out := &eci.ExecContainerCommandResponse{RequestId: newRequestID()}
	if !req.Sync {
		path := "/" + g.ContainerGroupId + "/" + req.ContainerName
		out.WebSocketUri, out.HttpUrl = "wss://"+ExecHost+path, "https://"+ExecHost+path
	}
	return out, nil
}

// metric is DescribeMultiContainerGroupMetric's default behaviour: the
// samples SetMetric gave each listed group that exists; unknown ids are
// left out, as the API does.
func (s *store) metric(req *eci.DescribeMultiContainerGroupMetricRequest) (*eci.DescribeMultiContainerGroupMetricResponse, error) {
	if len(req.ContainerGroupIds) == 0 {
		return nil, MissingParameter(OpMetric, "ContainerGroupIds")
	}
	if _, err := idSet(OpMetric, req.ContainerGroupIds); err != nil {
		return nil, err
	}
	out := &eci.DescribeMultiContainerGroupMetricResponse{RequestId: newRequestID(), MonitorDatas: []eci.MonitorData{}}
	for _, id := range req.ContainerGroupIds {
		if _, ok := s.groups[id]; ok {
			out.MonitorDatas = append(out.MonitorDatas, eci.MonitorData{ContainerGroupId: id, Records: clone(s.metrics[id])})
		}
	}
	return out, nil
}

var statuses = map[string]bool{
	eci.StatusPending: true, eci.StatusScheduling: true, eci.StatusScheduleFailed: true, eci.StatusRunning: true,
	eci.StatusSucceeded: true, eci.StatusFailed: true, eci.StatusRestarting: true, eci.StatusUpdating: true,
	eci.StatusTerminating: true, eci.StatusExpired: true,
}

func (s *store) setStatus(id, status string) error {
	g, ok := s.groups[id]
	if !ok {
		return fmt.Errorf("fake: SetStatus: no group %q (groups: %v)", id, ids(s.groups))
	}
	if !statuses[status] {
		return fmt.Errorf("fake: SetStatus: %q is not a group status; use an eci.Status* constant", status)
	}
	now := s.timestamp()
	end := func(cs []eci.ContainerStatus, code int32, reason string) {
		for i := range cs {
			start := cs[i].CurrentState.StartTime
			if start == "" {
				start = now
			}
			cs[i].CurrentState = eci.ContainerState{State: "Terminated", ExitCode: code, Reason: reason, StartTime: start, FinishTime: now}
			cs[i].Ready = false
		}
	}
	switch status {
	case eci.StatusPending:
		for i := range g.Containers {
			g.Containers[i].CurrentState = eci.ContainerState{State: "Waiting", Reason: "ContainerCreating"}
			g.Containers[i].Ready = false
		}
	case eci.StatusRunning:
		end(g.InitContainers, 0, "Completed")
		for i := range g.Containers {
			if g.Containers[i].CurrentState.State != "Running" {
				g.Containers[i].CurrentState = eci.ContainerState{State: "Running", StartTime: now}
			}
			g.Containers[i].Ready = true
		}
	case eci.StatusSucceeded:
		end(g.Containers, 0, "Completed")
		g.SucceededTime = now
	case eci.StatusFailed:
		end(g.Containers, 1, "Error")
		g.FailedTime = now
	}
	g.Status = status
	g.changedAt = s.now()
	return nil
}
