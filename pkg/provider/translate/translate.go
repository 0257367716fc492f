package translate

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Options configure a Translator.
type Options struct {
	// NodeName and ClusterID tag every group.
	NodeName, ClusterID string
	// KubeProxy (ECI_KUBE_PROXY) says pods can reach ClusterIP Services;
	// without it the cluster DNS Service is unreachable, so ClusterFirst
	// pods use the VPC resolver.
	KubeProxy bool
	// ClusterIPDefault, if set, returns the eci-profile's enableClusterIp,
	// which replaces KubeProxy as the default of pods without the
	// eci-kube-proxy-enabled annotation; nil when the key is absent.
	ClusterIPDefault func() *bool
	// KubeProxyConfig runs kube-proxy in the groups of pods that reach
	// ClusterIP Services (kubeproxy.go). Without it such pods only get the
	// cluster DNS as resolver (unit tests of other features).
	KubeProxyConfig *KubeProxyConfig
	// TokenRefreshFraction is the share of a projected token's lifetime
	// after which it is renewed (default DefaultTokenRefreshFraction).
	TokenRefreshFraction float64
	// ClusterDomain is the cluster's DNS domain (CLUSTER_DOMAIN), in the
	// search path of ClusterFirst pods; empty means DefaultClusterDomain.
	ClusterDomain string
	// Tags (ECI_TAGS) go on every group besides the controller's own
	// (checked by ParseConfiguredTags).
	Tags []eci.Tag
	// ResourceGroupID (ECI_RESOURCE_GROUP_ID) is the resource group of new
	// groups; empty leaves it to the cloud (the account's default group).
	ResourceGroupID string
	// GroupDefaults, if set, returns the eci-profile's tags and resource
	// group: tags replace Tags when tagsSet, a non-empty resource group
	// replaces ResourceGroupID.
	GroupDefaults func() (tags []eci.Tag, tagsSet bool, resourceGroupID string)
}

// Translator maps pods to CreateContainerGroup requests.
type Translator struct {
	opts    Options
	cluster Resolver
	// kubeProxyToken is the kube-proxy token the node's groups share.
	kubeProxyToken sharedToken
}

// New returns a Translator that reads the cluster through cluster.
func New(opts Options, cluster Resolver) *Translator {
	return &Translator{opts: opts, cluster: cluster}
}

// Tags written on every container group we create. They let the provider
// find its own groups (cluster + node) and map a group back to its pod
// without a region-wide scan.
const (
	TagManagedBy    = "ManagedBy"
	TagClusterID    = "ClusterId"
	TagNodeName     = "NodeName"
	TagPodNamespace = "PodNamespace"
	TagPodName      = "PodName"
	TagPodUID       = "PodUID"
	// ManagedByValue is the value of TagManagedBy on our groups.
	ManagedByValue = "ack-virtual-node"
)

// GPUResource is the extended resource that asks for GPUs.
const GPUResource corev1.ResourceName = "nvidia.com/gpu"

// InvalidPodError says which pod field ECI cannot honour and what to do.
// It becomes the pod's status message and a Warning event.
type InvalidPodError struct {
	Field  string
	Reason string
	Fix    string
}

func (e *InvalidPodError) Error() string {
	msg := fmt.Sprintf("%s: %s", e.Field, e.Reason)
	if e.Fix != "" {
		msg += "; " + e.Fix
	}
	return msg
}

// maxContainers is ECI's limit of containers, and of init containers, per
// group.
const maxContainers = 20

// maxVolumes is ECI's limit of volumes per group.
const maxVolumes = 20

var groupNameInvalid = regexp.MustCompile(`[^a-z0-9-]+`)

// groupName derives a valid ContainerGroupName (2-128 chars of [a-z0-9-],
// no '-' at either end) from the pod's namespace and name.
func groupName(pod *corev1.Pod) string {
	n := groupNameInvalid.ReplaceAllString(strings.ToLower(pod.Namespace+"-"+pod.Name), "-")
	if len(n) > 128 {
		n = n[:128]
	}
	n = strings.Trim(n, "-")
	if len(n) < 2 {
		n = "pod-" + n
	}
	return n
}

// Translation is the result of mapping a pod: the request, the instance
// specs to try in order (from eci-use-specs), notes on fields that were
// adapted rather than copied, which become one Normal event, and warnings
// on fields that were left out, which become one Warning event.
type Translation struct {
	Req   *eci.CreateContainerGroupRequest
	Specs []InstanceSpec
	Notes []string
	// Warnings name pod fields the published API cannot express that were
	// left out, and what that changes for the pod; they become one Warning
	// event.
	Warnings []string
	// MissingClusterDNS, when set, says why a ClusterFirst pod got the VPC
	// resolver instead of the cluster DNS (the kubelet's MissingClusterDNS
	// event): the DNS Service is missing or has no address.
	MissingClusterDNS string
	Tokens            TokenRefresh
	// MissingOptional are the optional ConfigMaps and Secrets the pod
	// refers to that do not exist: left out, as a kubelet does, and
	// reported with an Optional...NotFound event.
	MissingOptional []Source
	// kubeProxy says whether the group runs kube-proxy (kubeproxy.go).
	kubeProxy kubeProxyDecision
}

// BuildRequest translates a pod into CreateContainerGroup parameters,
// resolving env, volumes and pull secrets from the cluster; vswitches (in
// the order to try) and sg place the group unless the pod's annotations
// say otherwise.
//
// Resource rules (documented in the README):
//   - a container's Cpu/Memory is its limit, else its request: the group is
//     sized once and cannot burst, so limits above requests are honoured,
//     never refused;
//   - the group's Cpu/Memory is the larger of the containers' sum (native
//     sidecars included: they run beside the app containers) and the
//     largest init container (init containers run one at a time), and is
//     left to the cloud's default when no container says anything;
//   - eci-use-specs / eci-instance-type replace that computed size.
func (t *Translator) BuildRequest(ctx context.Context, pod *corev1.Pod, vswitches []string, sg string) (*Translation, error) {
	req := &eci.CreateContainerGroupRequest{
		SecurityGroupId:    sg,
		VSwitchId:          strings.Join(vswitches, ","),
		ScheduleStrategy:   "VSwitchOrdered",
		ContainerGroupName: groupName(pod),
		RestartPolicy:      string(pod.Spec.RestartPolicy),
		ClientToken:        string(pod.UID),
		HostName:           hostName(pod),
		Tags: []eci.Tag{
			{Key: TagManagedBy, Value: ManagedByValue},
			{Key: TagClusterID, Value: t.opts.ClusterID},
			{Key: TagNodeName, Value: t.opts.NodeName},
			{Key: TagPodNamespace, Value: pod.Namespace},
			{Key: TagPodName, Value: pod.Name},
			{Key: TagPodUID, Value: string(pod.UID)},
		},
		TerminationGracePeriodSeconds: pod.Spec.TerminationGracePeriodSeconds,
		ActiveDeadlineSeconds:         pod.Spec.ActiveDeadlineSeconds,
	}
	t.applyGroupDefaults(req)
	tr := &Translation{Req: req}
	if req.RestartPolicy == "" {
		req.RestartPolicy = string(corev1.RestartPolicyAlways)
	}
	// Everything the pod says on its own is checked before the cluster is
	// read: a pod refused afterwards would have minted service-account
	// tokens (TokenRequest) and read ConfigMaps and Secrets for nothing.
	if err := checkPodSpec(pod); err != nil {
		return nil, err
	}
	if err := checkReservedNames(pod); err != nil {
		return nil, err
	}
	slots, err := buildContainers(pod, tr)
	if err != nil {
		return nil, err
	}
	var initCPU, initMem, sumCPU, sumMem float64
	for _, sl := range slots {
		if sl.init {
			initCPU, initMem = max(initCPU, sl.out.Cpu), max(initMem, sl.out.Memory)
		} else {
			sumCPU += sl.out.Cpu
			sumMem += sl.out.Memory
		}
	}
	req.Cpu, req.Memory = max(sumCPU, initCPU), max(sumMem, initMem)
	if err := applyAnnotations(pod, tr); err != nil {
		return nil, err
	}
	if err := ephemeralStorage(pod, tr); err != nil {
		return nil, err
	}
	if pod.Spec.ShareProcessNamespace != nil && *pod.Spec.ShareProcessNamespace {
		req.ShareProcessNamespace = true
	}
	kp, err := t.decideKubeProxy(pod)
	if err != nil {
		return nil, err
	}
	tr.kubeProxy = kp
	if err := checkKubeProxyRoom(pod, kp); err != nil {
		return nil, err
	}
	if err := checkVolumes(pod); err != nil {
		return nil, err
	}

	// Then what the cluster holds. First whether every ConfigMap and
	// Secret the pod needs exists: a pod that must wait for one mints no
	// token. Then volume contents and tokens, the environment, the cluster
	// DNS and the pull secrets. The tokens are minted meanwhile, all at
	// once (mint.go); the rest reads caches.
	if tr.MissingOptional, err = t.checkSources(ctx, pod); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m := t.startMints(ctx, pod, tr.kubeProxy.on)
	volumes, refresh, err := t.buildVolumes(ctx, pod, m)
	if err != nil {
		return nil, err
	}
	req.Volumes = volumes
	tr.Tokens = refresh
	for i := range slots {
		if slots[i].out.EnvironmentVars, err = t.resolveEnv(ctx, pod, slots[i].spec, slots[i].field); err != nil {
			return nil, err
		}
	}
	markSidecars(pod, slots, tr)
	place(slots, req)
	if err := t.podLevel(ctx, pod, tr); err != nil {
		return nil, err
	}
	if err := t.addKubeProxy(ctx, pod, tr, m); err != nil {
		return nil, err
	}
	// Last, the projected tokens minted all along: the request carries
	// every token's content, or the translation fails.
	if err := m.finish(ctx, t, req.Volumes, &tr.Tokens); err != nil {
		return nil, err
	}
	return tr, nil
}

// checkPodSpec refuses pod-level fields ECI has no equivalent for, naming
// the field and what to do instead.
func checkPodSpec(pod *corev1.Pod) error {
	switch {
	case pod.Spec.HostNetwork:
		return &InvalidPodError{Field: "spec.hostNetwork", Reason: "an ECI pod has no host network to share",
			Fix: "remove hostNetwork or run the pod on a real node"}
	case pod.Spec.HostPID || pod.Spec.HostIPC:
		return &InvalidPodError{Field: "spec.hostPID/hostIPC", Reason: "an ECI pod has no host namespaces to share",
			Fix: "remove hostPID/hostIPC or run the pod on a real node"}
	case len(pod.Spec.EphemeralContainers) > 0:
		return &InvalidPodError{Field: "spec.ephemeralContainers", Reason: "ECI cannot add containers to a running group",
			Fix: "use kubectl exec instead of kubectl debug"}
	case len(pod.Spec.Containers) > maxContainers || len(pod.Spec.InitContainers) > maxContainers:
		return &InvalidPodError{Field: "spec.containers", Reason: fmt.Sprintf("ECI allows at most %d containers and %d init containers per pod", maxContainers, maxContainers),
			Fix: "split the pod"}
	case len(pod.Spec.Volumes) > maxVolumes:
		return &InvalidPodError{Field: "spec.volumes", Reason: fmt.Sprintf("ECI allows at most %d volumes per pod", maxVolumes), Fix: "merge volumes (e.g. with a projected volume)"}
	case pod.Spec.DNSPolicy == corev1.DNSNone && pod.Spec.DNSConfig == nil:
		return errDNSConfigRequired
	}
	return nil
}

// buildContainer maps one container; it returns notes on adapted fields.
// Its environment is resolved separately (resolveEnv), as it needs the
// cluster.
func buildContainer(c *corev1.Container, field string) (eci.Container, []string, error) {
	var notes []string
	out := eci.Container{
		Name:            c.Name,
		Image:           c.Image,
		WorkingDir:      c.WorkingDir,
		ImagePullPolicy: string(c.ImagePullPolicy),
		Commands:        c.Command,
		Args:            c.Args,
		Stdin:           c.Stdin,
		StdinOnce:       c.StdinOnce,
		Tty:             c.TTY,
	}
	if c.Image == "" {
		return out, nil, &InvalidPodError{Field: field + ".image", Reason: "is empty", Fix: "set the container image"}
	}
	// The apiserver defaults every container to /dev/termination-log and
	// File, which is also ECI's behaviour: only other values are sent.
	if c.TerminationMessagePath != "" && c.TerminationMessagePath != corev1.TerminationMessagePathDefault {
		out.TerminationMessagePath = c.TerminationMessagePath
	}
	if c.TerminationMessagePolicy != "" && c.TerminationMessagePolicy != corev1.TerminationMessageReadFile {
		out.TerminationMessagePolicy = string(c.TerminationMessagePolicy)
	}
	if q, ok := pick(c.Resources, corev1.ResourceCPU); ok {
		out.Cpu = float64(q.MilliValue()) / 1000
	}
	if q, ok := pick(c.Resources, corev1.ResourceMemory); ok {
		out.Memory = float64(q.Value()) / (1 << 30)
	}
	if q, ok := pick(c.Resources, GPUResource); ok {
		out.Gpu = int(q.Value())
	}
	for _, p := range c.Ports {
		out.Ports = append(out.Ports, eci.Port{Port: p.ContainerPort, Protocol: string(p.Protocol)})
	}
	for i, m := range c.VolumeMounts {
		if m.SubPathExpr != "" {
			return out, nil, &InvalidPodError{Field: fmt.Sprintf("%s.volumeMounts[%d].subPathExpr", field, i),
				Reason: "is not supported on ECI", Fix: "use a fixed subPath"}
		}
		vm := eci.VolumeMount{Name: m.Name, MountPath: m.MountPath, ReadOnly: m.ReadOnly, SubPath: m.SubPath}
		if m.MountPropagation != nil && *m.MountPropagation != corev1.MountPropagationNone {
			// The published values are Kubernetes' own; None is the
			// default and not sent.
			switch *m.MountPropagation {
			case corev1.MountPropagationHostToContainer, corev1.MountPropagationBidirectional:
				vm.MountPropagation = string(*m.MountPropagation)
			default:
				return out, nil, &InvalidPodError{Field: fmt.Sprintf("%s.volumeMounts[%d].mountPropagation", field, i),
					Reason: fmt.Sprintf("%q is not a mount propagation mode", *m.MountPropagation), Fix: "use None, HostToContainer or Bidirectional"}
			}
		}
		out.VolumeMounts = append(out.VolumeMounts, vm)
	}
	var err error
	if out.ReadinessProbe, err = buildProbe(c, c.ReadinessProbe, field+".readinessProbe"); err != nil {
		return out, nil, err
	}
	if out.LivenessProbe, err = buildProbe(c, c.LivenessProbe, field+".livenessProbe"); err != nil {
		return out, nil, err
	}
	if c.StartupProbe != nil {
		// ECI has no startup probe. Its purpose, keeping liveness from
		// killing a slow starter, is kept by delaying liveness by the
		// startup probe's whole budget.
		budget := startupBudget(c.StartupProbe)
		if out.LivenessProbe != nil {
			out.LivenessProbe.InitialDelaySeconds += budget
		}
		notes = append(notes, fmt.Sprintf("%s.startupProbe: ECI has no startup probe; the liveness probe starts %ds later instead", field, budget))
	}
	if err := buildLifecycle(c, field, &out); err != nil {
		return out, nil, err
	}
	return out, notes, nil
}

func startupBudget(p *corev1.Probe) int32 {
	period, failures := p.PeriodSeconds, p.FailureThreshold
	if period == 0 {
		period = 10
	}
	if failures == 0 {
		failures = 3
	}
	return p.InitialDelaySeconds + period*failures
}

func pick(r corev1.ResourceRequirements, name corev1.ResourceName) (resource.Quantity, bool) {
	if q, ok := r.Limits[name]; ok && !q.IsZero() {
		return q, true
	}
	if q, ok := r.Requests[name]; ok && !q.IsZero() {
		return q, true
	}
	return resource.Quantity{}, false
}

// resolvePort turns a probe or hook port (number or named container port)
// into a number.
func resolvePort(c *corev1.Container, port intstr.IntOrString, field string) (int32, error) {
	if port.Type == intstr.Int {
		return port.IntVal, nil
	}
	for _, p := range c.Ports {
		if p.Name == port.StrVal {
			return p.ContainerPort, nil
		}
	}
	if n, err := strconv.Atoi(port.StrVal); err == nil {
		return int32(n), nil
	}
	return 0, &InvalidPodError{Field: field + ".port", Reason: fmt.Sprintf("names port %q, which the container does not declare", port.StrVal),
		Fix: "declare the port in ports[] or use its number"}
}

// buildProbe maps a readiness or liveness probe.
func buildProbe(c *corev1.Container, p *corev1.Probe, field string) (*eci.Probe, error) {
	if p == nil {
		return nil, nil
	}
	out := &eci.Probe{
		InitialDelaySeconds: p.InitialDelaySeconds, PeriodSeconds: p.PeriodSeconds, TimeoutSeconds: p.TimeoutSeconds,
		SuccessThreshold: p.SuccessThreshold, FailureThreshold: p.FailureThreshold,
	}
	switch {
	case p.Exec != nil:
		out.ExecCommands = p.Exec.Command
	case p.HTTPGet != nil:
		port, err := resolvePort(c, p.HTTPGet.Port, field+".httpGet")
		if err != nil {
			return nil, err
		}
		out.HTTPGetPath, out.HTTPGetPort, out.HTTPGetScheme = p.HTTPGet.Path, port, string(p.HTTPGet.Scheme)
		if len(p.HTTPGet.HTTPHeaders) > 0 {
			return nil, &InvalidPodError{Field: field + ".httpGet.httpHeaders", Reason: "ECI probes cannot send headers", Fix: "remove the headers or use an exec probe"}
		}
	case p.TCPSocket != nil:
		port, err := resolvePort(c, p.TCPSocket.Port, field+".tcpSocket")
		if err != nil {
			return nil, err
		}
		out.TCPSocketPort = port
	case p.GRPC != nil:
		return nil, &InvalidPodError{Field: field + ".grpc", Reason: "ECI has no gRPC probes", Fix: "use an exec probe running grpc_health_probe, or tcpSocket"}
	default:
		return nil, &InvalidPodError{Field: field, Reason: "has no handler", Fix: "set exec, httpGet or tcpSocket"}
	}
	return out, nil
}

// buildLifecycle maps postStart and preStop hooks onto ECI's flat
// parameters.
func buildLifecycle(c *corev1.Container, field string, out *eci.Container) error {
	if c.Lifecycle == nil {
		return nil
	}
	type hook struct {
		h                  *corev1.LifecycleHandler
		name               string
		exec               *[]string
		path, scheme, host *string
		httpPort, tcpPort  *int32
		tcpHost            *string
		headers            *[]eci.HTTPHeader
	}
	for _, hk := range []hook{
		{c.Lifecycle.PostStart, "postStart", &out.PostStartExec, &out.PostStartHTTPPath, &out.PostStartHTTPScheme, &out.PostStartHTTPHost, &out.PostStartHTTPPort, &out.PostStartTCPPort, &out.PostStartTCPHost, &out.PostStartHTTPHeaders},
		{c.Lifecycle.PreStop, "preStop", &out.PreStopExec, &out.PreStopHTTPPath, &out.PreStopHTTPScheme, &out.PreStopHTTPHost, &out.PreStopHTTPPort, &out.PreStopTCPPort, &out.PreStopTCPHost, &out.PreStopHTTPHeaders},
	} {
		if hk.h == nil {
			continue
		}
		f := field + ".lifecycle." + hk.name
		switch {
		case hk.h.Exec != nil:
			*hk.exec = hk.h.Exec.Command
		case hk.h.HTTPGet != nil:
			port, err := resolvePort(c, hk.h.HTTPGet.Port, f+".httpGet")
			if err != nil {
				return err
			}
			*hk.path, *hk.scheme, *hk.host, *hk.httpPort = hk.h.HTTPGet.Path, string(hk.h.HTTPGet.Scheme), hk.h.HTTPGet.Host, port
			for _, h := range hk.h.HTTPGet.HTTPHeaders {
				*hk.headers = append(*hk.headers, eci.HTTPHeader{Name: h.Name, Value: h.Value})
			}
		case hk.h.TCPSocket != nil:
			port, err := resolvePort(c, hk.h.TCPSocket.Port, f+".tcpSocket")
			if err != nil {
				return err
			}
			*hk.tcpPort, *hk.tcpHost = port, hk.h.TCPSocket.Host
		case hk.h.Sleep != nil:
			*hk.exec = []string{"sleep", strconv.FormatInt(hk.h.Sleep.Seconds, 10)}
		default:
			return &InvalidPodError{Field: f, Reason: "has no handler", Fix: "set exec, httpGet or tcpSocket"}
		}
	}
	return nil
}

// hostName is the pod's hostname as the kubelet sets it: spec.hostname, or
// the pod name (cut to the 63 characters a hostname may have).
func hostName(pod *corev1.Pod) string {
	if pod.Spec.Hostname != "" {
		return pod.Spec.Hostname
	}
	n := pod.Name
	if len(n) > 63 {
		n = strings.TrimRight(n[:63], "-.")
	}
	return n
}
