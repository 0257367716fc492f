package virtualnode

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	"github.com/virtual-kubelet/virtual-kubelet/node"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	"github.com/virtual-kubelet/virtual-kubelet/node/nodeutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// kubelet runs one virtual node: the virtual-kubelet node controller (the
// Node object and its Lease), the pod controller, the informers they read
// and the kubelet API server.
//
// It stands in for nodeutil.Node, which builds its pod controller with
// client-go's default queue limiter: 10 items/s after a burst of 100, on
// pod creation and on status updates alike. That capped a node at about
// 8 new pods a second whatever the cloud and the apiserver allowed. Here
// the queues only back off per pod on failure; the kube client's own
// KUBE_API_QPS limit is what protects the apiserver.
type kubelet struct {
	name       string
	nc         *node.NodeController
	pc         *node.PodController
	np         *node.NaiveNodeProviderV2
	spec       *corev1.Node
	pods       informers.SharedInformerFactory
	scm        informers.SharedInformerFactory
	tlsConfig  *tls.Config
	handler    http.Handler
	listenAddr string
	workers    int
	ready      chan struct{}
	podsReady  chan struct{}
	// statusMu guards spec's status once the node controller runs: every
	// status handed to it is a copy of spec (SetConditions).
	statusMu sync.Mutex
}

// kubeletOptions are what one virtual node is built from.
type kubeletOptions struct {
	Name       string
	Client     kubernetes.Interface
	Spec       corev1.Node
	Provider   *provider.Provider
	Recorder   record.EventRecorder
	Workers    int
	TLSConfig  *tls.Config
	ListenAddr string
	// Auth guards the kubelet API (logs, exec, stats) on ListenAddr.
	Auth nodeutil.Auth
}

// informerResync is how often the informers replay their caches, as
// nodeutil does.
const informerResync = time.Minute

// podQueueLimiter delays a pod's next turn only after its own failures
// (5 ms doubling to 1000 s, the client-go default's per-item part).
func podQueueLimiter() workqueue.TypedRateLimiter[any] {
	return workqueue.NewTypedItemExponentialFailureRateLimiter[any](5*time.Millisecond, 1000*time.Second)
}

func newKubelet(o kubeletOptions) (*kubelet, error) {
	if o.Workers < 1 {
		return nil, fmt.Errorf("POD_SYNC_WORKERS: %d; need at least 1", o.Workers)
	}
	pods := informers.NewSharedInformerFactoryWithOptions(o.Client, informerResync, nodeutil.PodInformerFilter(o.Name))
	scm := informers.NewSharedInformerFactoryWithOptions(o.Client, informerResync)
	podInformer := pods.Core().V1().Pods()
	// Every pod is held several times over (the informer, the core's and
	// the provider's copies): the informer keeps only what the node reads
	// (provider.TrimPod).
	if err := podInformer.Informer().SetTransform(provider.TrimPod); err != nil {
		return nil, fmt.Errorf("pod informer: %w", err)
	}
	secrets, configMaps, services := scm.Core().V1().Secrets(), scm.Core().V1().ConfigMaps(), scm.Core().V1().Services()
	o.Provider.SetListers(configMaps.Lister(), secrets.Lister(), services.Lister())

	// A pod waiting for a ConfigMap or Secret starts as soon as it exists.
	for kind, inf := range map[string]cache.SharedIndexInformer{
		translate.KindConfigMap: configMaps.Informer(), translate.KindSecret: secrets.Informer()} {
		changed := func(obj any) {
			if m, err := meta.Accessor(obj); err == nil {
				o.Provider.SourceChanged(kind, m.GetNamespace(), m.GetName())
			}
		}
		if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    changed,
			UpdateFunc: func(_, obj any) { changed(obj) },
		}); err != nil {
			return nil, fmt.Errorf("%s informer: %w", kind, err)
		}
	}

	podLister := podInformer.Lister()
	o.Provider.SetPodLister(podLister)
	// The core drops deletions the informer reports as tombstones (seen
	// only on a relist after a broken watch); the provider takes them.
	if _, err := podInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: func(obj any) {
			if _, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				go o.Provider.PodDeleted(obj)
			}
		},
	}); err != nil {
		return nil, fmt.Errorf("pod informer: %w", err)
	}
	p := o.Provider
	routes := http.NewServeMux()
	routes.Handle("/", api.PodHandler(api.PodHandlerConfig{
		RunInContainer:    p.RunInContainer,
		AttachToContainer: p.AttachToContainer,
		GetContainerLogs:  p.GetContainerLogs,
		GetPods:           p.GetPods,
		GetPodsFromKubernetes: func(context.Context) ([]*corev1.Pod, error) {
			return podLister.List(labels.Everything())
		},
		GetStatsSummary:    p.GetStatsSummary,
		GetMetricsResource: p.GetMetricsResource,
		PortForward:        p.PortForward,
	}, true))

	spec := o.Spec.DeepCopy()
	np := node.NewNaiveNodeProvider()
	nc, err := node.NewNodeController(np, spec, o.Client.CoreV1().Nodes(),
		node.WithNodeEnableLeaseV1(nodeutil.NodeLeaseV1Client(o.Client), node.DefaultLeaseDuration))
	if err != nil {
		return nil, fmt.Errorf("node controller: %w", err)
	}
	pc, err := node.NewPodController(node.PodControllerConfig{
		// Status is written with the informer's metadata, not the
		// push's (provider.StatusClient).
		PodClient: p.StatusClient(o.Client.CoreV1()),
		// ProviderCreateSuccess only for pods that got a group.
		EventRecorder:                        p.CoreRecorder(o.Recorder),
		Provider:                             p,
		PodInformer:                          podInformer,
		SecretInformer:                       secrets,
		ConfigMapInformer:                    configMaps,
		ServiceInformer:                      services,
		SyncPodsFromKubernetesRateLimiter:    podQueueLimiter(),
		DeletePodsFromKubernetesRateLimiter:  podQueueLimiter(),
		SyncPodStatusFromProviderRateLimiter: podQueueLimiter(),
		// The core's env resolution fails on status.podIP, which only the
		// cloud knows; the provider resolves env itself.
		SkipDownwardAPIResolution: true,
	})
	if err != nil {
		return nil, fmt.Errorf("pod controller: %w", err)
	}
	return &kubelet{
		name: o.Name, nc: nc, pc: pc, np: np, spec: spec, pods: pods, scm: scm,
		tlsConfig: o.TLSConfig, handler: nodeutil.WithAuth(o.Auth, routes),
		listenAddr: o.ListenAddr, workers: o.Workers, ready: make(chan struct{}), podsReady: make(chan struct{}),
	}, nil
}

// PodController is the node's pod controller (its queue depths are
// metrics).
func (k *kubelet) PodController() *node.PodController { return k.pc }

// Ready is closed once the Node is registered Ready (its pods may still
// wait for the adoption, see Run and PodsReady).
func (k *kubelet) Ready() <-chan struct{} { return k.ready }

// Run serves the kubelet API and runs the controllers until ctx ends or one
// of them fails; it returns after both controllers have stopped.
//
// The node controller starts first, so the Node is registered (or taken
// over) and heartbeats at once; beforePods (the adoption of the node's
// container groups) runs next, and only then the pod controller. A cloud
// that is unavailable at start-up therefore delays the pods, never the
// node's heartbeat: a Node without heartbeats would go NotReady and have
// its pods evicted.
func (k *kubelet) Run(ctx context.Context, beforePods func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	ln, err := tls.Listen("tcp", k.listenAddr, k.tlsConfig)
	if err != nil {
		return fmt.Errorf("kubelet API listener on %s: %w", k.listenAddr, err)
	}
	srv := &http.Server{Handler: k.handler, TLSConfig: k.tlsConfig, ReadHeaderTimeout: 30 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			klog.FromContext(ctx).Error(err, "kubelet API server stopped", "addr", k.listenAddr)
		}
	}()
	defer srv.Close()

	k.pods.Start(ctx.Done())
	k.scm.Start(ctx.Done())
	defer k.pods.Shutdown()
	defer k.scm.Shutdown()

	go k.nc.Run(ctx) //nolint:errcheck // its error is read from Err after Done
	defer func() { cancel(); <-k.nc.Done() }()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-k.nc.Ready():
	case <-k.nc.Done():
		return k.nc.Err()
	}

	// The spec says Ready from the start; stamping the condition now tells
	// the control plane when this replica began serving the node.
	now := metav1.Now()
	k.statusMu.Lock()
	for i, c := range k.spec.Status.Conditions {
		if c.Type == corev1.NodeReady {
			k.spec.Status.Conditions[i].Status = corev1.ConditionTrue
			k.spec.Status.Conditions[i].LastHeartbeatTime = now
			k.spec.Status.Conditions[i].LastTransitionTime = now
		}
	}
	k.spec.Status.Phase = corev1.NodeRunning
	// A copy: the node controller keeps what it is given and stamps
	// heartbeats into it, while SetConditions edits spec.
	status := k.spec.DeepCopy()
	k.statusMu.Unlock()
	if err := k.np.UpdateStatus(ctx, status); err != nil {
		return fmt.Errorf("mark node %s Ready: %w", k.name, err)
	}
	close(k.ready)

	if beforePods != nil {
		if err := beforePods(ctx); err != nil {
			return err
		}
	}

	go k.pc.Run(ctx, k.workers) //nolint:errcheck // as above
	defer func() { cancel(); <-k.pc.Done() }()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-k.pc.Ready():
	case <-k.pc.Done():
		return k.pc.Err()
	}
	close(k.podsReady)

	select {
	case <-k.nc.Done():
		return k.nc.Err()
	case <-k.pc.Done():
		return k.pc.Err()
	}
}

// PodsReady is closed once the pod controller runs (after adoption).
func (k *kubelet) PodsReady() <-chan struct{} { return k.podsReady }

// SetConditions sets conditions of the Node's status (added, or replaced
// by type), with a new transition time when a status changes, and hands
// the status to the node controller, whose writes then carry them. The
// Ready condition is never among them. It fails until the node is Ready.
func (k *kubelet) SetConditions(ctx context.Context, conds []corev1.NodeCondition) error {
	select {
	case <-k.ready:
	default:
		return fmt.Errorf("node %s is not registered yet", k.name)
	}
	k.statusMu.Lock()
	defer k.statusMu.Unlock()
	now := metav1.Now()
	for _, c := range conds {
		c.LastHeartbeatTime = now
		found := false
		for i, old := range k.spec.Status.Conditions {
			if old.Type != c.Type {
				continue
			}
			found = true
			c.LastTransitionTime = old.LastTransitionTime
			if old.Status != c.Status || c.LastTransitionTime.IsZero() {
				c.LastTransitionTime = now
			}
			k.spec.Status.Conditions[i] = c
		}
		if !found {
			c.LastTransitionTime = now
			k.spec.Status.Conditions = append(k.spec.Status.Conditions, c)
		}
	}
	// The node controller takes a status by a blocking send that no
	// context ends: once it has stopped, a send could wait forever, so it
	// is made aside and abandoned when the node stops.
	status := k.spec.DeepCopy()
	done := make(chan error, 1)
	go func() { done <- k.np.UpdateStatus(ctx, status) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-k.nc.Done():
		return fmt.Errorf("node %s: the node controller has stopped", k.name)
	}
}
