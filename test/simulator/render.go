package simulator

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Tag keys from which DescribeContainerGroupStatus takes the pod identity.
const (
	TagPodName      = "PodName"
	TagPodNamespace = "PodNamespace"
	TagPodUID       = "PodUID"
)

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (g *group) tag(key string) string {
	for _, t := range g.spec.tags {
		if t.Key == key {
			return t.Value
		}
	}
	return ""
}

// fieldRef resolves an EnvironmentVar FieldRef.FieldPath.
func (g *group) fieldRef(path string) string {
	switch path {
	case "metadata.name":
		if v := g.tag(TagPodName); v != "" {
			return v
		}
		return g.spec.name
	case "metadata.namespace":
		if v := g.tag(TagPodNamespace); v != "" {
			return v
		}
		return "default"
	case "metadata.uid":
		return g.tag(TagPodUID)
	case "status.podIP", "status.hostIP", "status.podIPs", "status.hostIPs":
		return g.ip
	case "spec.nodeName":
		return "virtual-kubelet"
	case "spec.serviceAccountName":
		return "default"
	}
	return ""
}

// renderEvents returns the group's events in chronological order.
func (g *group) renderEvents() []Event {
	evs := append([]*groupEvent(nil), g.events...)
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].first.Before(evs[j].first) })
	out := make([]Event, 0, len(evs))
	for _, e := range evs {
		out = append(out, Event{Count: e.count, Type: e.typ, Name: e.name, Reason: e.reason, Message: e.message,
			FirstTimestamp: fmtTime(e.first), LastTimestamp: fmtTime(e.last)})
	}
	return out
}

// renderGroup builds the DescribeContainerGroups item.
func (s *Simulator) renderGroup(g *group, now time.Time, withEvents bool) ContainerGroup {
	cg := ContainerGroup{
		ContainerGroupId:   g.id,
		ContainerGroupName: g.spec.name,
		RegionId:           s.cfg.RegionId,
		ZoneId:             g.zoneID,
		VSwitchId:          g.vswitchID,
		VpcId:              s.cfg.VpcId,
		SecurityGroupId:    g.sgID,
		Status:             g.status,
		Cpu:                g.cpu,
		Memory:             g.memory,
		IntranetIp:         g.ip,
		EniInstanceId:      g.eni,
		RestartPolicy:      g.spec.restartPolicy,
		CreationTime:       fmtTime(g.created),
		SpotStrategy:       g.spec.spotStrategy,
		SpotPriceLimit:     g.spec.spotPriceLimit,
		RamRoleName:        g.spec.ramRoleName,
		ResourceGroupId:    g.spec.resourceGroupID,
		EphemeralStorage:   g.spec.ephemeral,
		ComputeCategory:    strings.Join(g.spec.computeCategory, ","),
		Tags:               orEmpty(append([]Tag(nil), g.spec.tags...)),
		Events:             []Event{},
		Volumes:            orEmpty(append([]Volume(nil), g.spec.volumes...)),
		HostAliases:        orEmpty(append([]HostAlias(nil), g.spec.hostAliases...)),
		DnsConfig: DnsConfig{
			NameServers: orEmpty(g.spec.dnsConfig.NameServers),
			Searches:    orEmpty(g.spec.dnsConfig.Searches),
			Options:     orEmpty(g.spec.dnsConfig.Options),
		},
		EciSecurityContext: EciSecurityContext{Sysctls: orEmpty(g.spec.sysctls), HostSysctls: g.spec.hostSysctls},
	}
	if len(g.spec.instanceTypes) > 0 {
		cg.InstanceType = g.spec.instanceTypes[0]
	}
	for i := range cg.HostAliases {
		cg.HostAliases[i].Hostnames = orEmpty(cg.HostAliases[i].Hostnames)
	}
	switch g.status {
	case StatusSucceeded:
		cg.SucceededTime = fmtTime(g.doneAt)
	case StatusFailed:
		cg.FailedTime = fmtTime(g.doneAt)
	case StatusExpired:
		cg.ExpiredTime = fmtTime(g.doneAt)
	}
	if withEvents {
		cg.Events = g.renderEvents()
	}
	cg.Containers = make([]Container, 0, len(g.main))
	for _, c := range g.main {
		cg.Containers = append(cg.Containers, s.renderContainer(g, c, now))
	}
	cg.InitContainers = make([]InitContainer, 0, len(g.init))
	for _, c := range g.init {
		cg.InitContainers = append(cg.InitContainers, initContainer(s.renderContainer(g, c, now)))
	}
	return cg
}

// cstate is a container state before rendering to either wire shape.
type cstate struct {
	state    string
	reason   string
	message  string
	code     int
	signal   int
	started  time.Time
	finished time.Time
}

func termState(t *termination) cstate {
	if t == nil {
		return cstate{}
	}
	return cstate{state: StateTerminated, reason: t.reason, message: t.message, code: t.code,
		signal: t.signal, started: t.started, finished: t.finished}
}

// containerStates derives the current and previous state of c.
func (s *Simulator) containerStates(g *group, c *ctr, now time.Time) (cur, prev cstate) {
	switch {
	case c.final && c.last != nil:
		return termState(c.last), termState(c.prev)
	case c.run != nil && !c.run.exited:
		return cstate{state: StateRunning, started: c.run.start}, termState(c.last)
	case c.pullFail:
		reason := "ErrImagePull"
		if !now.Before(g.bootAt.Add(s.cfg.RestartBackoff)) {
			reason = "ImagePullBackOff"
		}
		return cstate{state: StateWaiting, reason: reason,
			message: fmt.Sprintf("Back-off pulling image %q", c.spec.Image)}, termState(c.last)
	case c.last != nil && !c.nextStart.IsZero() && g.booted:
		return cstate{state: StateWaiting, reason: "CrashLoopBackOff",
			message: fmt.Sprintf("back-off %s restarting failed container=%s", s.backoff(c.restarts).String(), c.spec.Name)}, termState(c.last)
	case !c.init && g.booted && !g.initDone:
		return cstate{state: StateWaiting, reason: "PodInitializing"}, termState(c.last)
	default:
		return cstate{state: StateWaiting, reason: "ContainerCreating"}, termState(c.last)
	}
}

func (cs cstate) eci() ContainerState {
	out := ContainerState{State: cs.state, Reason: cs.reason, Message: cs.message, ExitCode: cs.code,
		Signal: cs.signal, StartTime: fmtTime(cs.started), FinishTime: fmtTime(cs.finished)}
	if cs.state != StateRunning {
		out.DetailStatus = cs.reason
	}
	return out
}

func (cs cstate) k8s() K8sContainerState {
	switch cs.state {
	case StateRunning:
		return K8sContainerState{Running: &K8sStateRunning{StartedAt: fmtTime(cs.started)}}
	case StateWaiting:
		return K8sContainerState{Waiting: &K8sStateWaiting{Reason: cs.reason, Message: cs.message}}
	case StateTerminated:
		return K8sContainerState{Terminated: &K8sStateTerminated{ExitCode: cs.code, Signal: cs.signal,
			Reason: cs.reason, Message: cs.message, StartedAt: fmtTime(cs.started), FinishedAt: fmtTime(cs.finished)}}
	}
	return K8sContainerState{}
}

// ready: a running container of a Running group (probes always pass).
func (g *group) ready(c *ctr) bool {
	return g.status == StatusRunning && c.run != nil && !c.run.exited && !c.final
}

func (s *Simulator) renderContainer(g *group, c *ctr, now time.Time) Container {
	out := c.spec
	cur, prev := s.containerStates(g, c, now)
	out.CurrentState, out.PreviousState = cur.eci(), prev.eci()
	out.RestartCount = c.restarts
	out.Ready = g.ready(c)
	out.Commands = orEmpty(append([]string(nil), c.spec.Commands...))
	out.Args = orEmpty(append([]string(nil), c.spec.Args...))
	out.Ports = orEmpty(append([]Port(nil), c.spec.Ports...))
	out.EnvironmentVars = orEmpty(append([]EnvironmentVar(nil), c.spec.EnvironmentVars...))
	out.VolumeMounts = orEmpty(append([]VolumeMount(nil), c.spec.VolumeMounts...))
	return out
}

// initContainer is c in the published shape of an init container.
func initContainer(c Container) InitContainer {
	out := InitContainer{Name: c.Name, Image: c.Image, Cpu: c.Cpu, Memory: c.Memory, Gpu: c.Gpu,
		WorkingDir: c.WorkingDir, ImagePullPolicy: c.ImagePullPolicy, Ready: c.Ready, RestartCount: c.RestartCount,
		Command: c.Commands, Args: c.Args, Ports: c.Ports, EnvironmentVars: c.EnvironmentVars,
		VolumeMounts: make([]InitVolumeMount, 0, len(c.VolumeMounts)), CurrentState: c.CurrentState,
		PreviousState: c.PreviousState, SecurityContext: c.SecurityContext}
	for _, m := range c.VolumeMounts {
		out.VolumeMounts = append(out.VolumeMounts, InitVolumeMount{Name: m.Name, MountPath: m.MountPath,
			ReadOnly: m.ReadOnly, MountPropagation: m.MountPropagation})
	}
	return out
}

// imageID is a stable fake digest for an image reference.
func imageID(image string) string {
	sum := sha256.Sum256([]byte(image))
	name := image
	if i := strings.LastIndex(name, "@"); i >= 0 {
		name = name[:i]
	} else if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name = name[:i]
	}
	return name + "@sha256:" + hex.EncodeToString(sum[:])
}

// phase maps an ECI status to a Kubernetes pod phase.
func phase(status string) string {
	switch status {
	case StatusRunning, StatusRestarting, StatusUpdating:
		return "Running"
	case StatusSucceeded:
		return "Succeeded"
	case StatusFailed, StatusExpired:
		return "Failed"
	default:
		return "Pending"
	}
}

// renderStatus builds the DescribeContainerGroupStatus item.
func (s *Simulator) renderStatus(g *group, now time.Time) GroupStatus {
	gs := GroupStatus{
		ContainerGroupId: g.id,
		Name:             g.tag(TagPodName),
		Namespace:        g.tag(TagPodNamespace),
		UID:              g.tag(TagPodUID),
		Status:           g.status,
	}
	// The published type of Data[].Annotations is a string: the JSON
	// object, encoded.
	ann, _ := json.Marshal(map[string]string{
		"k8s.aliyun.com/eci-instance-id":   g.id,
		"k8s.aliyun.com/eci-instance-spec": fmt.Sprintf("%g-%gGi", g.cpu, g.memory),
		"k8s.aliyun.com/eci-vpc":           s.cfg.VpcId,
		"k8s.aliyun.com/eni-instance-id":   g.eni,
	})
	gs.Annotations = string(ann)
	ps := PodStatus{Phase: phase(g.status), PodIp: g.ip, HostIp: g.ip, StartTime: fmtTime(g.created),
		PodIps: []PodIP{}, ContainerStatuses: []K8sContainerStatus{}}
	if g.ip != "" {
		ps.PodIps = []PodIP{{IP: g.ip}}
	}
	allReady := len(g.main) > 0
	for _, c := range g.main {
		cur, prev := s.containerStates(g, c, now)
		ready := g.ready(c)
		allReady = allReady && ready
		ps.ContainerStatuses = append(ps.ContainerStatuses, K8sContainerStatus{
			Name: c.spec.Name, Image: c.spec.Image, ImageID: imageID(c.spec.Image),
			Ready: ready, Started: cur.state == StateRunning, RestartCount: c.restarts,
			State: cur.k8s(), LastState: prev.k8s(),
		})
	}
	cond := func(typ string, ok bool, at time.Time, reason, msg string) PodCondition {
		st := "False"
		if ok {
			st = "True"
		}
		return PodCondition{Type: typ, Status: st, Reason: reason, Message: msg, LastTransitionTime: fmtTime(at)}
	}
	readyAt := g.statusAt
	if g.status == StatusRunning && g.mainAt.After(readyAt) {
		readyAt = g.mainAt
	}
	notReady := ""
	if !allReady {
		notReady = "ContainersNotReady"
	}
	ps.Conditions = []PodCondition{
		cond("ContainerInstanceCreated", true, g.created, "", ""),
		cond("PodScheduled", true, g.created, "", ""),
		cond("Initialized", g.booted && g.initDone, g.mainAt, "", ""),
		cond("ContainersReady", allReady, readyAt, notReady, ""),
		cond("Ready", allReady, readyAt, notReady, ""),
	}
	gs.PodStatus = ps
	return gs
}
