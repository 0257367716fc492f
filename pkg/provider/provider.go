package provider

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/kubeletapi"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// Options configure a Provider.
type Options struct {
	// NodeName is the virtual node's name, also a tag on every group.
	NodeName string
	// ClusterID tags every group so clusters never touch each other's.
	ClusterID string
	// VSwitches and SecurityGroup place new groups.
	VSwitches     []string
	SecurityGroup string
	// KubeProxy (ECI_KUBE_PROXY) says pods can reach ClusterIP Services;
	// without it the cluster DNS Service is unreachable, so ClusterFirst
	// pods use the VPC resolver.
	KubeProxy bool
	// ClusterIPDefault, if set, returns the eci-profile's enableClusterIp,
	// which replaces KubeProxy as the default of new pods; nil when absent.
	ClusterIPDefault func() *bool
	// KubeProxyConfig is how the kube-proxy of each group that reaches
	// ClusterIP Services reaches the API server (image, URL, CA, the
	// namespace of its ServiceAccount).
	KubeProxyConfig *translate.KubeProxyConfig
	// Defaults, if set, returns the vSwitches and security group that
	// override VSwitches/SecurityGroup for new pods (the eci-profile
	// ConfigMap); ok false means "use the controller's own".
	Defaults func() (vswitches []string, securityGroup string, ok bool)
	// Tags (ECI_TAGS) and ResourceGroupID (ECI_RESOURCE_GROUP_ID) go on
	// every new group; GroupDefaults, if set, returns the eci-profile's,
	// which replace them (translate.Options).
	Tags            []eci.Tag
	ResourceGroupID string
	GroupDefaults   func() (tags []eci.Tag, tagsSet bool, resourceGroupID string)
	// ExpectedVPC, if set, returns the eci-profile's vpcId: the VPC the
	// cloud reports for each new group is checked against it (vpc.go).
	ExpectedVPC func() string
	// Cloud is the ECI API.
	Cloud Cloud
	// Kube is the cluster client (pod annotations, tokens, volumes).
	Kube kubernetes.Interface
	// Recorder records pod events; nil disables them.
	Recorder record.EventRecorder
	// StatusInterval is the period of the changed-status poll.
	StatusInterval time.Duration
	// FastStatusInterval is the period of that poll while a pod waits for
	// its group to start (default: StatusInterval, i.e. no fast polling).
	FastStatusInterval time.Duration
	// FastStatusWindow is how long after its group was created a pod that
	// has not started keeps the poll fast (default
	// DefaultFastStatusWindow); a pod that never starts is then polled at
	// StatusInterval like the others.
	FastStatusWindow time.Duration
	// StatusCallRate bounds the DescribeContainerGroupStatus calls per
	// second the fast poll may bring the status loop up to, on average
	// (default DefaultStatusCallRate), besides FastCallsPerStart for each
	// group created: fast polls only spend what the normal ones leave of
	// it (statusBudget).
	StatusCallRate float64
	// ResyncInterval is the period of the full listing that finds lost groups.
	ResyncInterval time.Duration
	// ZoneCooldown is how long a vSwitch skipped for lack of stock goes
	// to the back of the list (default DefaultZoneCooldown).
	ZoneCooldown time.Duration
	// TokenRefreshFraction is the share of a projected token's lifetime
	// after which it is renewed (default DefaultTokenRefreshFraction).
	TokenRefreshFraction float64
	// Metrics are the process's provider metrics (NewMetrics), shared by
	// its nodes; nil keeps this provider's figures unregistered.
	Metrics *Metrics
	// ImageCaches resolves the ImageCache a pod names
	// (translate.AnnotationImageCacheName) to its cloud cache id; nil:
	// such pods wait with an event saying the resolver is missing.
	ImageCaches ImageCacheResolver
	// Health is the ECI client's view of the cloud (eci.Config.Health),
	// shown on the Node by RunNodeStatus; nil: RunNodeStatus does nothing.
	Health *eci.Health
	// CloudUnavailableGrace is how long the cloud may refuse the
	// AccessKey or not answer before the node shows it (default
	// DefaultCloudUnavailableGrace).
	CloudUnavailableGrace time.Duration
	// ClusterDomain is the cluster's DNS domain (CLUSTER_DOMAIN, or what
	// the cluster's CoreDNS serves); empty: translate.DefaultClusterDomain.
	ClusterDomain string
	// ClusterDNS are fixed resolvers for ClusterFirst pods (CLUSTER_DNS);
	// none: the ClusterIP of ClusterDNSService.
	ClusterDNS []string
	// ClusterDNSService is the DNS Service as namespace/name
	// (CLUSTER_DNS_SERVICE); empty: kube-system/DefaultClusterDNSService.
	ClusterDNSService string
}

// Provider keeps the pods of one virtual node and their container groups.
type Provider struct {
	opts Options
	// clock times the status loop (a fake one in tests).
	clock clock.Clock
	// kick wakes the status loop when a pod gets its group (kickStatus);
	// started counts those groups until the loop credits its status-call
	// budget with them (statusBudget.credit).
	kick    chan struct{}
	started atomic.Int64

	// sources are the pods waiting for a ConfigMap or Secret.
	sources sourceWaits

	mu      sync.RWMutex
	pods    map[string]*entry // by namespace/name
	byGroup map[string]string // group id -> namespace/name
	notify  func(*corev1.Pod)
	ready   chan struct{}

	runCtx     context.Context // the context of Run, for background retries
	podLister  corev1listers.PodLister
	cluster    *cluster // the objects pods refer to, for translation
	translator *translate.Translator

	zones   *zoneMemory // vSwitches recently out of stock
	metrics nodeMetrics

	kubelet *kubeletapi.API // logs, exec and stats (kubelet.go)

	// fallbackOn: pod status is polled with DescribeContainerGroups, as
	// the RAM policy refuses DescribeContainerGroupStatus (fallback.go).
	fallbackOn atomic.Bool

	// refusedEvents: the pod UID and action pairs whose refusal by the
	// RAM policy has had its event (permissionEvent).
	refusedMu     sync.Mutex
	refusedEvents map[string]bool
	// refusedReprobe overrides refusedReprobeInterval (tests).
	refusedReprobe time.Duration
}

// entry is what the provider knows of one pod.
type entry struct {
	// pod is the pod's metadata, its spec as created and its status as
	// last computed. Once the pod has a group (slim), its spec is only
	// what the provider still reads (slimSpec) and its metadata only the
	// pod's identity and the provider's annotations (recordMeta); specSum
	// and metaSum fingerprint the updatable fields of the spec and the
	// labels and annotations it was taken from (wholePod).
	pod     *corev1.Pod
	slim    bool
	specSum uint64
	metaSum uint64
	groupID string
	created time.Time
	// statusSig fingerprints the last status item seen for the group, so
	// only groups whose status changed are described in full.
	statusSig uint64
	// events are the cloud events already forwarded (newEvents).
	events []seenEvent
	// pendingSince and attempts describe a pod still waiting for its
	// group (stock-out, throttling, cloud errors): the time of the first
	// attempt and how many were made.
	pendingSince time.Time
	attempts     int
	// placed says the zone and vSwitch are recorded on the pod.
	placed bool
	// marked says the group's annotations (createdAnnotations) go out with
	// the pod's pushes; until the first status poll they are held back, so
	// that they reach the pod in the same write as the placement.
	marked bool
	// deleting counts DeletePod calls under way (the cloud's Delete quota
	// can hold them for minutes); housekeeping leaves such pods alone.
	deleting atomic.Int32
	// terminating says DeletePod was called for the pod: its deletion is
	// under way and it is never failed (lose, fail), only deleted.
	terminating atomic.Bool
	// requested is the ordered vSwitch list the group was created with,
	// to learn from where it landed (zoneMemory).
	requested string
	// tokens says when the pod's service-account tokens are renewed.
	tokens translate.TokenRefresh
	// pushed fingerprints the last push of pushLatest (pushSum), which
	// does not push the same again; 0 after another push (lose).
	pushed atomic.Uint64
	// pushMu orders the pushes of pushLatest for this pod, so the last
	// one carries its latest status; per pod, so a slow push of one pod
	// never holds up the others.
	pushMu sync.Mutex
}

// New returns a Provider; call Run to start status synchronisation.
func New(opts Options) (*Provider, error) {
	switch {
	case opts.Cloud == nil:
		return nil, errors.New("provider: Cloud is required")
	case opts.Kube == nil:
		return nil, errors.New("provider: Kube is required")
	case opts.NodeName == "" || opts.ClusterID == "":
		return nil, errors.New("provider: NodeName and ClusterID are required")
	}
	if opts.StatusInterval <= 0 {
		opts.StatusInterval = 2 * time.Second
	}
	if opts.FastStatusInterval <= 0 || opts.FastStatusInterval > opts.StatusInterval {
		opts.FastStatusInterval = opts.StatusInterval
	}
	if opts.ResyncInterval <= 0 {
		opts.ResyncInterval = time.Minute
	}
	if opts.FastStatusWindow <= 0 {
		opts.FastStatusWindow = DefaultFastStatusWindow
	}
	if opts.StatusCallRate <= 0 {
		opts.StatusCallRate = DefaultStatusCallRate
	}
	if opts.CloudUnavailableGrace <= 0 {
		opts.CloudUnavailableGrace = DefaultCloudUnavailableGrace
	}
	p := &Provider{
		opts:    opts,
		clock:   clock.RealClock{},
		kick:    make(chan struct{}, 1),
		pods:    map[string]*entry{},
		byGroup: map[string]string{},
		ready:   make(chan struct{}),
		zones:   newZoneMemory(opts.ZoneCooldown),
		cluster: newCluster(opts),
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	p.metrics = opts.Metrics.forNode(opts.NodeName)
	p.translator = translate.New(translate.Options{
		NodeName: opts.NodeName, ClusterID: opts.ClusterID, KubeProxy: opts.KubeProxy,
		ClusterIPDefault: opts.ClusterIPDefault, KubeProxyConfig: opts.KubeProxyConfig,
		TokenRefreshFraction: opts.TokenRefreshFraction, ClusterDomain: opts.ClusterDomain,
		Tags: opts.Tags, ResourceGroupID: opts.ResourceGroupID, GroupDefaults: opts.GroupDefaults,
	}, p.cluster)
	p.kubelet = kubeletapi.New(opts.NodeName, opts.Cloud, kubeletPods{p})
	return p, nil
}

// SetListers lets the provider read ConfigMaps, Secrets and Services from
// the virtual-kubelet informer caches instead of the apiserver.
func (p *Provider) SetListers(cm corev1listers.ConfigMapLister, sec corev1listers.SecretLister, svc corev1listers.ServiceLister) {
	p.cluster.setListers(cm, sec, svc)
}

// buildRequest translates pod, placing it in the vSwitches and security
// group of the eci-profile (else the node's own), the vSwitches that
// recently had no stock moved to the back.
func (p *Provider) buildRequest(ctx context.Context, pod *corev1.Pod) (*translate.Translation, error) {
	vswitches, sg := p.opts.VSwitches, p.opts.SecurityGroup
	if p.opts.Defaults != nil {
		if v, g, ok := p.opts.Defaults(); ok {
			if len(v) > 0 {
				vswitches = v
			}
			if g != "" {
				sg = g
			}
		}
	}
	vswitches = p.zones.order(vswitches)
	tr, err := p.translator.BuildRequest(ctx, pod, vswitches, sg)
	if err != nil {
		return nil, err
	}
	if err := p.resolveImageCache(ctx, pod, tr.Req); err != nil {
		return nil, err
	}
	return tr, nil
}

func key(ns, name string) string { return ns + "/" + name }

// NotifyPods registers the callback that pushes status changes to the
// virtual-kubelet core. Having it stops the core from polling every pod.
func (p *Provider) NotifyPods(_ context.Context, f func(*corev1.Pod)) {
	p.mu.Lock()
	p.notify = f
	p.mu.Unlock()
	close(p.ready)
}

// push hands a pod's status to the core. The core keeps the pushed pod
// until the next one (for every pod of the node), compares it whole with
// the previous push, and writes it to pods/status, where the apiserver
// takes the spec from the stored pod and StatusClient the metadata from
// the informer. So a push carries the status and only the metadata
// pushMeta keeps, which makes that copy and that comparison small.
func (p *Provider) push(pod *corev1.Pod) {
	pod.Spec = corev1.PodSpec{}
	pod.ObjectMeta = pushMeta(&pod.ObjectMeta)
	p.mu.RLock()
	f := p.notify
	p.mu.RUnlock()
	if f != nil {
		f(pod)
	}
}

func (p *Provider) event(pod *corev1.Pod, typ, reason, format string, args ...any) {
	if p.opts.Recorder != nil {
		p.opts.Recorder.Eventf(pod, typ, reason, format, args...)
	}
}

// UpdatePod takes a changed pod (see update.go for what reaches the
// cloud) and records it.
func (p *Provider) UpdatePod(ctx context.Context, pod *corev1.Pod) error {
	if err := p.applyUpdate(ctx, pod); err != nil {
		return err
	}
	p.record(pod)
	return nil
}

// record stores the new pod object: labels and annotations only need to
// be remembered, a pod still waiting for its group is created from it.
func (p *Provider) record(pod *corev1.Pod) {
	k := key(pod.Namespace, pod.Name)
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.pods[k]
	if !ok {
		return
	}
	status, prev := e.pod.Status, e.pod.Annotations
	if e.slim {
		e.keep(pod)
	} else {
		e.pod = pod.DeepCopy() // still waiting for its group: created from this copy
	}
	e.pod.Status = status
	// The core calls this with its informer's copy, which can predate the
	// provider's own annotation patches; the core's next status write
	// sends this copy's metadata whole, so annotations the provider wrote
	// are carried over or that write would remove them.
	for _, a := range providerAnnotations {
		if v, ok := prev[a]; ok {
			if _, has := e.pod.Annotations[a]; !has {
				if e.pod.Annotations == nil {
					e.pod.Annotations = map[string]string{}
				}
				e.pod.Annotations[a] = v
			}
		}
	}
}

// createdAnnotations are the annotations that record a pod's group.
var createdAnnotations = []string{translate.AnnotationInstanceID, translate.AnnotationRequestID, translate.AnnotationInstanceSpec}

// providerAnnotations are the annotations the provider writes on pods.
var providerAnnotations = []string{
	translate.AnnotationInstanceID, translate.AnnotationRequestID, translate.AnnotationInstanceSpec,
	translate.AnnotationZoneID, translate.AnnotationVSwitchID, translate.AnnotationVPC,
}

// DeletePod deletes the pod's group and reports the pod terminated, so the
// core removes it from the apiserver. A group already gone counts as deleted.
func (p *Provider) DeletePod(ctx context.Context, pod *corev1.Pod) error {
	k := key(pod.Namespace, pod.Name)
	p.mu.RLock()
	e, ok := p.pods[k]
	p.mu.RUnlock()
	if !ok {
		return errdefs.NotFoundf("pod %s is not known to the provider", k)
	}
	e.terminating.Store(true)
	e.deleting.Add(1)
	defer e.deleting.Add(-1)
	// A pod that never got a group (waiting or refused) has nothing to
	// delete in the cloud; its pending retry sees the entry gone and stops.
	if e.groupID != "" {
		err := p.opts.Cloud.DeleteContainerGroup(ctx, e.groupID)
		if err != nil && !eci.IsNotFound(err) {
			if !p.permissionEvent(pod, err, "deleting container group "+e.groupID) {
				p.event(pod, corev1.EventTypeWarning, "ContainerGroupDeleteFailed", "deleting ECI container group %s: %s", e.groupID, eci.StableText(err))
			}
			return err
		}
		klog.FromContext(ctx).Info("deleted container group", "pod", k, "group", e.groupID)
	}
	p.finishDeletion(ctx, pod, k, e)
	return nil
}

// finishDeletion forgets a pod whose group is gone while its deletion is
// under way and removes it from the apiserver, as a kubelet does once its
// containers have stopped; it never reports the pod Failed.
func (p *Provider) finishDeletion(ctx context.Context, pod *corev1.Pod, k string, e *entry) {
	p.mu.Lock()
	if p.pods[k] == e {
		delete(p.pods, k)
	}
	if p.byGroup[e.groupID] == k {
		delete(p.byGroup, e.groupID)
	}
	p.mu.Unlock()
	p.forgetPermissionEvents(pod.UID)

	// The group is gone, so the pod's grace period has nothing left to
	// wait for: remove it now, as a kubelet does once its containers have
	// stopped. The UID precondition protects a recreated pod of that name.
	zero := int64(0)
	err := p.opts.Kube.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero, Preconditions: metav1.NewUIDPreconditions(string(pod.UID)),
	})
	if err == nil || apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		// The pod is gone (or replaced): a terminated status would be
		// pushed for a pod the core no longer knows, and it would poll
		// for it.
		return
	}
	klog.FromContext(ctx).Error(err, "could not remove deleted pod from the apiserver; the pod controller will", "pod", k)

	done := pod.DeepCopy()
	if done.Status.Phase != corev1.PodSucceeded && done.Status.Phase != corev1.PodFailed {
		now := metav1.Now()
		done.Status.Phase = corev1.PodSucceeded
		done.Status.Reason = "ProviderPodDeleted"
		for i, cs := range done.Status.ContainerStatuses {
			t := &corev1.ContainerStateTerminated{Reason: "ProviderPodDeleted", FinishedAt: now}
			if cs.State.Running != nil {
				t.StartedAt = cs.State.Running.StartedAt
			}
			done.Status.ContainerStatuses[i].State = corev1.ContainerState{Terminated: t}
			done.Status.ContainerStatuses[i].Ready = false
		}
		p.push(done)
	}
}

// isTerminating reports whether the deletion of pod k (uid) is under way:
// DeletePod was called for it, or the informer's copy has a deletion
// timestamp that the core has not acted on yet. e is the pod's entry.
func (p *Provider) isTerminating(e *entry, uid types.UID, lister corev1listers.PodLister, namespace, name string) bool {
	if e.terminating.Load() {
		return true
	}
	if lister == nil {
		return false
	}
	cur, err := lister.Pods(namespace).Get(name)
	return err == nil && cur.UID == uid && cur.DeletionTimestamp != nil
}

// GetPod returns a copy of the pod as the provider knows it: its spec and
// metadata as created or last updated (from the informer, see wholePod),
// its status as last computed.
func (p *Provider) GetPod(_ context.Context, namespace, name string) (*corev1.Pod, error) {
	p.mu.RLock()
	e, ok := p.pods[key(namespace, name)]
	if !ok {
		p.mu.RUnlock()
		return nil, errdefs.NotFoundf("pod %s/%s is not known to the provider", namespace, name)
	}
	pod, slim, sum, meta, lister := e.pod.DeepCopy(), e.slim, e.specSum, e.metaSum, p.podLister
	p.mu.RUnlock()
	return wholePod(pod, slim, sum, meta, lister), nil
}

// GetPodStatus returns a copy of the pod's last computed status.
func (p *Provider) GetPodStatus(ctx context.Context, namespace, name string) (*corev1.PodStatus, error) {
	pod, err := p.GetPod(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	return &pod.Status, nil
}

// GetPods returns copies of every pod the provider runs.
func (p *Provider) GetPods(context.Context) ([]*corev1.Pod, error) {
	type stored struct {
		pod       *corev1.Pod
		slim      bool
		sum, meta uint64
	}
	p.mu.RLock()
	all := make([]stored, 0, len(p.pods))
	for _, e := range p.pods {
		all = append(all, stored{e.pod.DeepCopy(), e.slim, e.specSum, e.metaSum})
	}
	lister := p.podLister
	p.mu.RUnlock()
	out := make([]*corev1.Pod, 0, len(all))
	for _, s := range all {
		out = append(out, wholePod(s.pod, s.slim, s.sum, s.meta, lister))
	}
	return out, nil
}

// groupOf returns the group id and a copy of a pod the provider runs, for
// the kubelet API handlers.
func (p *Provider) groupOf(namespace, name string) (string, *corev1.Pod, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	e, ok := p.pods[key(namespace, name)]
	if !ok {
		return "", nil, errdefs.NotFoundf("pod %s/%s is not known to the provider", namespace, name)
	}
	if e.groupID == "" {
		return "", nil, errdefs.NotFoundf("pod %s/%s has no ECI container group yet: %s", namespace, name, e.pod.Status.Message)
	}
	return e.groupID, e.pod.DeepCopy(), nil
}

// statusCopy copies what a push needs of pod: its status and the
// metadata pushMeta keeps.
func statusCopy(pod *corev1.Pod) *corev1.Pod {
	return &corev1.Pod{TypeMeta: pod.TypeMeta, ObjectMeta: pushMeta(&pod.ObjectMeta), Status: *pod.Status.DeepCopy()}
}
