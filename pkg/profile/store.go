package profile

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
)

// ReasonInvalidProfile is the reason of the Warning Event a rejected edit
// of the ConfigMap gets.
const ReasonInvalidProfile = "InvalidProfile"

// ReasonProfileKeyIgnored is the reason of the Warning Event each key the
// add-on does not use gets (Ignored), once per key and value.
const ReasonProfileKeyIgnored = "ProfileKeyIgnored"

// StoreOptions configure a Store.
type StoreOptions struct {
	// Kube is the client the ConfigMap is watched with.
	Kube kubernetes.Interface
	// Namespace of the ConfigMap; empty means kube-system.
	Namespace string
	// Name of the ConfigMap; empty means eci-profile.
	Name string
	// Recorder records the Warning Events of rejected edits; nil means a
	// recorder of the Store's own, with Component as the event source.
	Recorder record.EventRecorder
	// Component is the event source when Recorder is nil.
	Component string
	// ReportIgnoredKeys records a Warning Event for each key the add-on
	// does not use (Ignored), once per key and value: the controller's
	// store does, the webhook's leaves it to the controller.
	ReportIgnoredKeys bool
}

// Store keeps the profile currently in effect. It watches the ConfigMap with
// an informer (a watch, not polling, so edits apply within a second), and
// swaps in every valid version. A malformed version is rejected as a whole:
// the last good profile stays in effect, and a Warning Event on the
// ConfigMap and an error log line name the bad keys. A deleted ConfigMap
// means the empty profile (the controller's own defaults), because deleting
// it is how users undo it.
//
// A Store is safe for concurrent use.
type Store struct {
	opts     StoreOptions
	recorder record.EventRecorder
	current  atomic.Pointer[Profile]

	mu      sync.Mutex
	changed chan struct{}
	// rejected is the resourceVersion last reported as invalid, so a
	// re-delivered object (informer relist) is not reported twice.
	rejected string
	// ignored are the keys reported as ignored, with the value reported.
	ignored map[string]string

	synced  cache.InformerSynced
	started atomic.Bool
}

// NewStore returns a Store with the empty profile in effect; Start begins
// watching.
func NewStore(opts StoreOptions) *Store {
	if opts.Namespace == "" {
		opts.Namespace = DefaultNamespace
	}
	if opts.Name == "" {
		opts.Name = DefaultName
	}
	if opts.Component == "" {
		opts.Component = "ack-virtual-node"
	}
	s := &Store{opts: opts, recorder: opts.Recorder, changed: make(chan struct{})}
	s.current.Store(&Profile{})
	return s
}

// Start watches the ConfigMap until ctx ends and returns once the first
// list has been applied (or with ctx's error), so Current is meaningful as
// soon as Start returns. Start may be called once.
func (s *Store) Start(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return fmt.Errorf("profile store for %s/%s started twice", s.opts.Namespace, s.opts.Name)
	}
	if s.recorder == nil {
		b := record.NewBroadcaster(record.WithContext(ctx))
		b.StartRecordingToSink(&corev1client.EventSinkImpl{Interface: s.opts.Kube.CoreV1().Events("")})
		s.recorder = b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: s.opts.Component})
		go func() {
			<-ctx.Done()
			b.Shutdown()
		}()
	}
	// One object only: the field selector keeps the watch (and the RBAC it
	// needs, resourceNames: [eci-profile]) to this ConfigMap.
	factory := informers.NewSharedInformerFactoryWithOptions(s.opts.Kube, 0,
		informers.WithNamespace(s.opts.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", s.opts.Name).String()
		}))
	inf := factory.Core().V1().ConfigMaps().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.apply(obj) },
		UpdateFunc: func(_, obj any) { s.apply(obj) },
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				if tomb.Key == s.opts.Namespace+"/"+s.opts.Name {
					s.apply(nil)
				}
				return
			}
			if cm, ok := obj.(*corev1.ConfigMap); ok && cm.Name == s.opts.Name && cm.Namespace == s.opts.Namespace {
				s.apply(nil)
			}
		},
	}); err != nil {
		return fmt.Errorf("watch ConfigMap %s/%s: %w", s.opts.Namespace, s.opts.Name, err)
	}
	s.synced = inf.HasSynced
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return fmt.Errorf("list ConfigMap %s/%s: %w", s.opts.Namespace, s.opts.Name, context.Cause(ctx))
	}
	return nil
}

// HasSynced reports whether the first list has been applied.
func (s *Store) HasSynced() bool { return s.synced != nil && s.synced() }

// Current returns the profile in effect; never nil. The returned Profile is
// shared: read it, do not modify it.
func (s *Store) Current() *Profile { return s.current.Load() }

// Changed returns a channel that is closed the next time Current changes
// (any accepted version of the ConfigMap, or its deletion). Take the channel before reading Current so that no
// change is missed:
//
//	for {
//		ch := store.Changed()
//		use(store.Current())
//		<-ch
//	}
func (s *Store) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// Defaults returns the vSwitches and security group the profile in effect
// sets for new pods; ok is false when it sets neither. A non-empty value
// overrides the controller's ECI_VSWITCH / ECI_SECURITY_GROUP; an empty
// one leaves the controller's value in place. The slice is a copy.
func (s *Store) Defaults() (vswitches []string, securityGroup string, ok bool) {
	p := s.Current()
	return slices.Clone(p.VSwitchIDs), p.SecurityGroupID, len(p.VSwitchIDs) > 0 || p.SecurityGroupID != ""
}

// EnableClusterIP returns the profile's enableClusterIp, which replaces
// ECI_KUBE_PROXY as the default of new pods; nil when the key is absent.
func (s *Store) EnableClusterIP() *bool {
	if b := s.Current().EnableClusterIP; b != nil {
		v := *b
		return &v
	}
	return nil
}

// GroupDefaults returns the tags and resource group the profile in effect
// sets for new container groups: tagsSet says its tags replace ECI_TAGS, a
// non-empty resource group replaces ECI_RESOURCE_GROUP_ID. The slice is a
// copy.
func (s *Store) GroupDefaults() (tags []eci.Tag, tagsSet bool, resourceGroupID string) {
	p := s.Current()
	return slices.Clone(p.Tags), p.TagsSet, p.ResourceGroupID
}

// NodeSettings returns the extra node labels and the node taints the
// profile in effect sets: each replaces the controller's
// VIRTUAL_NODE_LABELS / VIRTUAL_NODE_TAINTS when its set is true. The
// results are copies.
func (s *Store) NodeSettings() (labels map[string]string, labelsSet bool, taints []corev1.Taint, taintsSet bool) {
	p := s.Current()
	if p.NodeTaints != nil {
		taints, taintsSet = p.NodeTaints.All(), true
	}
	return cloneMap(p.NodeLabels), p.NodeLabels != nil, taints, taintsSet
}

// reportIgnored records one Warning Event per key the add-on does not use,
// when the key appears or its value changes: re-deliveries, unrelated edits
// and other keys' changes repeat nothing.
func (s *Store) reportIgnored(cm *corev1.ConfigMap) {
	if !s.opts.ReportIgnoredKeys {
		return
	}
	ign := Ignored(cm.Data)
	s.mu.Lock()
	var report []IgnoredKey
	next := make(map[string]string, len(ign))
	for _, k := range ign {
		if v, ok := s.ignored[k.Key]; !ok || v != k.Value {
			report = append(report, k)
		}
		next[k.Key] = k.Value
	}
	s.ignored = next
	s.mu.Unlock()
	for _, k := range report {
		klog.InfoS("eci-profile key ignored", "configMap", klog.KObj(cm), "key", k.Key, "reason", k.Message)
		s.recorder.Event(cm, corev1.EventTypeWarning, ReasonProfileKeyIgnored, k.Message)
	}
}

// apply handles one delivery of the ConfigMap; nil means it is gone.
// Informer handlers of one registration run sequentially, so apply needs
// no lock of its own around parse-and-swap.
func (s *Store) apply(obj any) {
	ref := klog.KRef(s.opts.Namespace, s.opts.Name)
	var cm *corev1.ConfigMap
	if obj != nil {
		var ok bool
		// The field selector already narrows the watch to one object; the
		// name check guards against clients that ignore field selectors.
		if cm, ok = obj.(*corev1.ConfigMap); !ok || cm.Name != s.opts.Name || cm.Namespace != s.opts.Namespace {
			return
		}
	}
	if cm == nil {
		s.mu.Lock()
		s.rejected = ""
		s.ignored = nil
		s.mu.Unlock()
		if s.swap(&Profile{}) {
			klog.InfoS("eci-profile deleted; using the controller defaults and no selectors", "configMap", ref)
		}
		return
	}
	s.reportIgnored(cm)
	p, err := Parse(cm.Data)
	if err != nil {
		s.reject(cm, err)
		return
	}
	p.ResourceVersion = cm.ResourceVersion
	s.mu.Lock()
	s.rejected = ""
	s.mu.Unlock()
	if s.swap(p) {
		klog.InfoS("eci-profile applied", "configMap", ref, "resourceVersion", cm.ResourceVersion,
			"vSwitchIds", p.VSwitchIDs, "securityGroupId", p.SecurityGroupID, "vpcId", p.VPCID,
			"resourceGroupId", p.ResourceGroupID, "tags", len(p.Tags), "selectors", len(p.Selectors))
	}
}

// reject keeps the last good profile and reports why the new one was not
// taken, once per resourceVersion.
func (s *Store) reject(cm *corev1.ConfigMap, err error) {
	s.mu.Lock()
	if s.rejected == cm.ResourceVersion {
		s.mu.Unlock()
		return
	}
	s.rejected = cm.ResourceVersion
	s.mu.Unlock()

	var keys []string
	if ve, ok := err.(*ValidationError); ok {
		keys = ve.Keys()
	}
	kept := "no earlier valid profile, so the controller defaults and no selectors stay in effect"
	if rv := s.Current().ResourceVersion; rv != "" {
		kept = "the last good profile (resourceVersion " + rv + ") stays in effect"
	}
	klog.ErrorS(err, "eci-profile rejected; "+kept, "configMap", klog.KObj(cm),
		"resourceVersion", cm.ResourceVersion, "badKeys", keys)
	s.recorder.Eventf(cm, corev1.EventTypeWarning, ReasonInvalidProfile, "%v; %s", err, kept)
}

// swap installs p, wakes every waiter, and reports whether the content
// differs from the profile it replaced (a resourceVersion-only change is not
// worth a log line, but waiters still see Current change).
func (s *Store) swap(p *Profile) bool {
	old := s.current.Swap(p)
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	return !sameContent(old, p)
}

// WaitFor blocks until cond holds for the profile in effect or ctx ends;
// tests and start-up code use it instead of sleeping.
func (s *Store) WaitFor(ctx context.Context, cond func(*Profile) bool) error {
	for {
		ch := s.Changed()
		if cond(s.Current()) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for eci-profile: %w", ctx.Err())
		}
	}
}
