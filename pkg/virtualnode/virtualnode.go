// Package virtualnode assembles the ack-virtual-node-controller: the kube
// client, the ECI client, the provider, the virtual-kubelet node and pod
// controllers, the kubelet API (logs, exec, stats) and the metrics endpoint.
package virtualnode

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/bootstrap"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/cloud"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/config"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/imagecache"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/kubeconfig"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/ownership"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/profile"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/version"
	"github.com/aliyun/credentials-go/credentials"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/virtual-kubelet/virtual-kubelet/node/nodeutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	k8sversion "k8s.io/apimachinery/pkg/version"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/klog/v2"
)

// TaintKey is the taint every pod must tolerate to land on the node
// (unless VIRTUAL_NODE_TAINTS removes it).
const TaintKey = config.DefaultTaintKey

// Options are the inputs of Run besides the configuration.
type Options struct {
	// Config is the validated configuration.
	Config *config.Config
	// RESTConfig overrides the kubeconfig/in-cluster lookup (tests).
	RESTConfig *rest.Config
	// Credential overrides the AccessKey lookup of the ECI client (the
	// default credential chain: environment, RRSA, config files, instance
	// RAM role); tests give the simulator's key.
	Credential credentials.Credential
	// Ready, if set, is closed once the first node this replica runs is
	// registered and Ready (with one node and one replica: the node).
	Ready chan<- struct{}
}

// shared is what every node run by this process uses: one kube client,
// one ECI client, one eci-profile store, one event broadcaster, one
// metrics port (METRICS_ADDR).
type shared struct {
	cfg       *config.Config
	restCfg   *rest.Config // its CA verifies the apiserver on the kubelet port
	kube      kubernetes.Interface
	sv        *k8sversion.Info
	clusterID string
	// clusterDomain is CLUSTER_DOMAIN or the one detected (ClusterDomain).
	clusterDomain string
	cloud         provider.Cloud
	health        *eci.Health
	events        record.EventBroadcaster
	profiles      *profile.Store
	nodes         *nodeRegistry
	metrics       *provider.Metrics // every node's, in the metrics port's registry
	kubeProxy     *translate.KubeProxyConfig
	// imageCaches resolves the ImageCache names of pods.
	imageCaches provider.ImageCacheResolver
}

// Run runs the virtual nodes of cfg.NodeNames() that this replica owns (see
// package ownership: one Lease per node, shared with the other replicas)
// until ctx ends, then stops them without touching their pods or container
// groups and releases their Leases. It returns an error when the shared
// parts (kube client, cluster id, ECI client, eci-profile) cannot start; a
// node that fails is released for another replica and retried with backoff.
func Run(ctx context.Context, opts Options) error {
	cfg := opts.Config
	// Load validates, but a configuration built in code may not have been:
	// a bad value must stop here with its variable's name, not panic
	// later inside a node that already holds its Lease.
	if err := cfg.Validate(); err != nil {
		return err
	}
	// The nodes run until ctx ends and whatever must happen before they
	// stop (a StatefulSet pod's scale-down drain) has happened.
	ctx, stopRun, setBeforeStop := stopAfter(ctx)
	defer stopRun()
	if cfg.StatefulSet == "" {
		setBeforeStop(nil) // nothing to do before stopping
	}
	logger := klog.FromContext(ctx).WithValues("replica", cfg.PodName)
	ctx = klog.NewContext(ctx, logger)
	restCfg := opts.RESTConfig
	if restCfg == nil {
		var err error
		if restCfg, err = kubeconfig.Load(cfg.Kubeconfig); err != nil {
			return err
		}
	}
	if err := cfg.CheckNodeIP(restCfg.Host); err != nil {
		return err
	}
	if cfg.NodeIPDetected {
		if ip := net.ParseIP(cfg.NodeIP); ip != nil && ip.IsLoopback() {
			logger.Info("Warning: VIRTUAL_NODE_IP is unset and this host has no network address other than loopback: the node advertises it, so kubectl logs and exec work (the apiserver is on this host) but the apiserver refuses its node proxy (kubectl get --raw /api/v1/nodes/NODE/proxy/...); set VIRTUAL_NODE_IP to fix", "nodeIP", cfg.NodeIP)
		} else {
			logger.Info("VIRTUAL_NODE_IP is unset: the node advertises this host's first address other than loopback", "nodeIP", cfg.NodeIP)
		}
	}
	// caCfg carries the cluster CA that verifies the apiserver's kubelet
	// client on the kubelet port; a bootstrapped config hides it in its
	// transport, so it is taken from the bootstrap kubeconfig.
	caCfg := restCfg
	if cfg.TLSBootstrap && opts.RESTConfig == nil {
		bc, err := bootstrap.ClientConfig(ctx, bootstrap.Options{
			BootstrapKubeconfig: cfg.Kubeconfig, CertDir: cfg.CertDir, NodeName: cfg.PodName,
		})
		if err != nil {
			return fmt.Errorf("TLS bootstrap (TLS_BOOTSTRAP_ENABLED) from KUBECONFIG %s: %w", cfg.Kubeconfig, err)
		}
		logger.Info("TLS bootstrap: using the issued client certificate", "certDir", cfg.CertDir)
		restCfg = bc.Config
	}
	restCfg = rest.CopyConfig(restCfg)
	restCfg.QPS, restCfg.Burst = cfg.KubeAPIQPS, cfg.KubeAPIBurst
	kube, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	// Lease renewals get a client (and rate limiter) of their own: queued
	// behind pod traffic they would miss the renew deadline and stop nodes.
	leaseCfg := rest.CopyConfig(restCfg)
	leaseCfg.QPS, leaseCfg.Burst = 20, 40
	leaseKube, err := kubernetes.NewForConfig(leaseCfg)
	if err != nil {
		return fmt.Errorf("kubernetes client for Leases: %w", err)
	}
	sv, err := ServerVersion(kube)
	if err != nil {
		return err
	}
	logger.Info("connected to kubernetes", "serverVersion", sv.GitVersion, "host", restCfg.Host)

	clusterID, err := cloud.ClusterID(ctx, cfg, kube)
	if err != nil {
		return err
	}
	clusterDomain, domainSource := ClusterDomain(ctx, kube, cfg.ClusterDomain, metav1.NamespaceSystem)
	logger.Info("cluster DNS for ClusterFirst pods", "clusterDomain", clusterDomain, "from", domainSource,
		"clusterDNS", cfg.ClusterDNS, "clusterDNSService", cfg.ClusterDNSService)
	pm := newProcessMetrics()
	// One Health for the one client: whether the cloud answers and accepts
	// the AccessKey, and which actions the RAM policy refuses; every node
	// shows it (provider.RunNodeStatus).
	health := eci.NewHealth()
	eciClient, err := cloud.NewClientWithHealth(cfg, opts.Credential, pm.eci, health)
	if err != nil {
		return err
	}

	broadcaster := record.NewBroadcaster()
	defer broadcaster.Shutdown()
	broadcaster.StartStructuredLogging(2)
	// Events get a client of their own too, like the kubelet's
	// eventRecordQPS: a busy node posts several per pod (the cloud's
	// Pulling/Pulled/Started...), and sharing the pod client's rate limit
	// they halved the rate at which new pods were created (make bench).
	eventCfg := rest.CopyConfig(restCfg)
	eventCfg.QPS, eventCfg.Burst = 50, 100
	eventKube, err := kubernetes.NewForConfig(eventCfg)
	if err != nil {
		return fmt.Errorf("kubernetes client for events: %w", err)
	}
	broadcaster.StartRecordingToSink(&corev1client.EventSinkImpl{Interface: eventKube.CoreV1().Events("")})
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "ack-virtual-node", Host: cfg.PodName})

	// The eci-profile ConfigMap overrides the vSwitches and security group
	// of new pods; edits apply without a restart.
	profiles := profile.NewStore(profile.StoreOptions{Kube: kube, Recorder: recorder, ReportIgnoredKeys: true})
	if err := profiles.Start(ctx); err != nil {
		return fmt.Errorf("watch the eci-profile ConfigMap (kube-system/eci-profile): %w", err)
	}

	kubeProxy, err := kubeProxyConfig(ctx, cfg, restCfg, caCfg, sv)
	if err != nil {
		return err
	}

	sh := &shared{cfg: cfg, restCfg: caCfg, kubeProxy: kubeProxy, kube: kube, sv: sv, clusterID: clusterID, clusterDomain: clusterDomain, cloud: eciClient, health: health,
		events: broadcaster, profiles: profiles, nodes: pm.nodes, metrics: pm.provider}
	dyn, err := dynamic.NewForConfig(restCfg)
	if err != nil {
		return fmt.Errorf("kubernetes dynamic client: %w", err)
	}
	sh.imageCaches = &imagecache.Resolver{Dynamic: dyn}
	metricsSrv, metricsErr, err := serveMetrics(cfg.MetricsAddr, pm.reg, sh.nodes, cfg.PprofEnabled)
	if err != nil {
		return err
	}
	defer metricsSrv.Close()
	// Without its metrics port the replica has no /healthz: the probes
	// would fail it anyway, so a server that stops ends the run at once.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case err := <-metricsErr:
			cancel(err)
		case <-ctx.Done():
		}
	}()

	// Files every node needs are read once here: a bad path stops the
	// controller with the variable's name instead of failing each node.
	if _, err := servingTLS(cfg.ForNode(0)); err != nil {
		return err
	}
	if _, err := kubeletAuth(kube, cfg.ForNode(0), caCfg); err != nil {
		return err
	}

	names := cfg.NodeNames()
	index := make(map[string]int, len(names))
	for i, n := range names {
		index[n] = i
	}
	var readyOnce sync.Once
	var sd *scaleDown
	set := ""
	if cfg.StatefulSet != "" {
		// An ordinal pod of the StatefulSet form: its nodes are its own;
		// scaled away, it drains them before it stops.
		sd = &scaleDown{cfg: cfg, kube: kube, cloud: eciClient, clusterID: clusterID, recorder: recorder}
		setBeforeStop(sd.beforeStop)
		set = statefulSetSet(cfg)
		logger.Info("StatefulSet form: this ordinal pod runs its own nodes", "statefulSet", cfg.PodNamespace+"/"+cfg.StatefulSet, "ordinal", cfg.Ordinal, "nodes", names)
	}
	// The account's ECI API quotas are split among the live replicas
	// (package ownership): this one starts with empty buckets at share 0
	// and takes its part once the others have made room for it.
	if err := eciClient.SetShare(0); err != nil {
		return err
	}
	err = ownership.Run(ctx, ownership.Options{
		Kube: leaseKube, Namespace: cfg.PodNamespace, Identity: cfg.PodName, Names: names,
		LeaseDuration: cfg.LeaseDuration, RenewDeadline: cfg.RenewDeadline, RetryPeriod: cfg.RetryPeriod,
		Recorder: recorder, Metrics: pm.ownership, Set: set, Exclusive: sd != nil,
		Share: func(share float64) {
			if err := eciClient.SetShare(share); err != nil {
				logger.Error(err, "cannot apply the ECI API quota share")
			}
		},
		Run: func(ctx context.Context, name string) error {
			if cfg.ImageCacheController && name == names[0] && (cfg.StatefulSet == "" || cfg.Ordinal == 0) {
				// One ImageCache controller per cluster: the replica that
				// holds the first node's Lease runs it, and stops it with
				// the node. In the StatefulSet form every ordinal pod has
				// a first node of its own: ordinal 0 runs it.
				go runImageCaches(ctx, cfg, kube, dyn, eciClient, clusterID, recorder)
			}
			err := sh.runNode(ctx, cfg.ForNode(index[name]), func() {
				if opts.Ready != nil {
					readyOnce.Do(func() { close(opts.Ready) })
				}
			})
			if err != nil && ctx.Err() == nil {
				// The event aggregates repeats: the ECI request id, unique per
				// attempt, stays in ownership's log line of the failure.
				recorder.Eventf(nodeRef(name), corev1.EventTypeWarning, "VirtualNodeFailed",
					"virtual node failed on replica %s: %s; its Lease is released so another replica can run it, and this one retries with backoff", cfg.PodName, eci.StableText(err))
			}
			return err
		},
	})
	if sd != nil && err == nil {
		sd.removeNodes(context.WithoutCancel(ctx))
	}
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return err
}

// runNode runs one virtual node until ctx ends: it adopts the node's
// existing container groups (a node taken over from another replica keeps
// its pods and groups), registers or updates the Node with this replica's
// address and the node's kubelet port, and runs the pod and node
// controllers. Stopping leaves pods and groups alone for the next owner.
func (sh *shared) runNode(ctx context.Context, cfg *config.Config, ready func()) error {
	logger := klog.FromContext(ctx).WithValues("node", cfg.NodeName)
	ctx = klog.NewContext(ctx, logger)
	recorder := sh.events.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "ack-virtual-node", Host: cfg.NodeName})
	prov, err := provider.New(provider.Options{
		Defaults: sh.profiles.Defaults,
		NodeName: cfg.NodeName, ClusterID: sh.clusterID,
		VSwitches: cfg.VSwitches, SecurityGroup: cfg.SecurityGroup, KubeProxy: cfg.KubeProxy,
		ClusterIPDefault: sh.profiles.EnableClusterIP, KubeProxyConfig: sh.kubeProxy,
		ClusterDomain: sh.clusterDomain, ClusterDNS: cfg.ClusterDNS, ClusterDNSService: cfg.ClusterDNSService,
		Tags: cfg.GroupTags(), ResourceGroupID: cfg.ResourceGroupID, GroupDefaults: sh.profiles.GroupDefaults, ExpectedVPC: sh.profileVPC,
		Cloud: sh.cloud, Kube: sh.kube, Recorder: recorder,
		StatusInterval: cfg.StatusInterval, FastStatusInterval: cfg.FastStatusInterval, ResyncInterval: cfg.ResyncInterval,
		StatusCallRate: cfg.StatusCallRate, TokenRefreshFraction: cfg.TokenRefreshFraction, Metrics: sh.metrics,
		Health: sh.health, CloudUnavailableGrace: cfg.CloudUnavailableGrace, ImageCaches: sh.imageCaches,
	})
	if err != nil {
		return err
	}
	tlsCfg, err := servingTLS(cfg)
	if err != nil {
		return err
	}
	auth, err := kubeletAuth(sh.kube, cfg, sh.restCfg)
	if err != nil {
		return err
	}
	vn, err := newKubelet(kubeletOptions{
		Name: cfg.NodeName, Client: sh.kube, Spec: sh.nodeSpec(cfg), Provider: prov,
		Recorder: recorder, Workers: cfg.PodSyncWorkers, TLSConfig: tlsCfg,
		ListenAddr: net.JoinHostPort(cfg.ListenIP, strconv.Itoa(cfg.KubeletPort)),
		Auth:       auth,
	})
	if err != nil {
		return fmt.Errorf("virtual node: %w", err)
	}
	if err := uncordonScaledDown(ctx, sh.kube, cfg.NodeName); err != nil {
		return err
	}
	sh.nodes.add(cfg.NodeName, vn)
	defer sh.nodes.remove(cfg.NodeName)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	provDone := make(chan struct{})
	go func() {
		defer close(provDone)
		prov.Run(ctx)
	}()
	// The provider's status loop must be over before the Lease is
	// released, so two owners never write one pod's status.
	defer func() {
		cancel()
		<-provDone
	}()
	adopt := func(ctx context.Context) error { return adoptGroups(ctx, prov, sh.clusterID) }
	errc := make(chan error, 1)
	go func() { errc <- vn.Run(ctx, adopt) }()
	select {
	case <-vn.Ready():
		// A Node registered earlier keeps its object: bring its labels and
		// taints to the configuration now, and keep them there as the
		// eci-profile changes (keepNodeSettings).
		applied := sh.syncNodeSettings(ctx, cfg, recorder, "")
		settingsDone := make(chan struct{})
		go func() {
			defer close(settingsDone)
			sh.keepNodeSettings(ctx, cfg, recorder, applied)
		}()
		defer func() {
			cancel()
			<-settingsDone
		}()
		// The cloud's state goes on the Node (conditions ContainerInstanceAPI
		// and ContainerInstancePermissions, the cloud-unavailable taint)
		// once the node controller runs, adoption or not; it stops with the
		// provider.
		nodeStatusDone := make(chan struct{})
		go func() {
			defer close(nodeStatusDone)
			prov.RunNodeStatus(ctx, vn.SetConditions)
		}()
		defer func() {
			cancel()
			<-nodeStatusDone
		}()
	case err := <-errc:
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("virtual node stopped before it was ready: %w", err)
	}
	select {
	case <-vn.PodsReady():
		logger.Info("virtual node is ready", "kubeletPort", cfg.KubeletPort, "nodeIP", cfg.NodeIP, "vSwitches", cfg.VSwitches)
		ready()
	case err := <-errc:
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("virtual node stopped before it was ready: %w", err)
	}
	err = <-errc
	if ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// Adoption retries while the cloud refuses the AccessKey or does not
// answer: from adoptBackoff, doubling up to maxAdoptBackoff.
const (
	adoptBackoff    = 2 * time.Second
	maxAdoptBackoff = time.Minute
)

// adoptGroups takes over the node's existing container groups before its
// pods are handled (Provider.Adopt). While the cloud refuses the AccessKey
// or does not answer it retries, the Node heartbeating meanwhile and
// showing the cloud's state (RunNodeStatus); any other failure stops the
// node, which is released for another replica.
func adoptGroups(ctx context.Context, prov *provider.Provider, clusterID string) error {
	logger := klog.FromContext(ctx)
	wait := adoptBackoff
	for {
		adopted, deleted, err := prov.Adopt(ctx)
		if err == nil {
			logger.Info("reconciled existing container groups", "adopted", adopted, "deletedOrphans", deleted, "clusterId", clusterID)
			return nil
		}
		if !eci.KeyRefused(err) && !eci.NoAnswer(err) {
			return fmt.Errorf("adopt existing container groups: %w", err)
		}
		logger.Error(err, "cannot adopt the node's container groups: the ECI API refuses the AccessKey or does not answer; "+
			"the node stays registered and its pods wait", "retryIn", wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, maxAdoptBackoff)
	}
}

// nodeRef is the object reference events about a Node attach to (the
// kubelet's form: the node name as UID, no namespace).
func nodeRef(name string) *corev1.ObjectReference {
	return &corev1.ObjectReference{Kind: "Node", Name: name, UID: types.UID(name)}
}

// ServerVersion asks the apiserver for its version, with the advice the
// vendor's documentation gives for the two errors users meet most.
func ServerVersion(kube kubernetes.Interface) (*k8sversion.Info, error) {
	v, err := kube.Discovery().ServerVersion()
	if err == nil {
		return v, nil
	}
	msg := err.Error()
	hint := ""
	switch {
	case strings.Contains(msg, "no such host"):
		hint = "; the API server's domain name does not resolve here: use an IP address in the kubeconfig or make the name resolvable (e.g. PrivateZone)"
	case strings.Contains(msg, "Client.Timeout") || strings.Contains(msg, "i/o timeout") || strings.Contains(msg, "connection refused"):
		hint = "; the API server cannot be reached from here: check that the network (VPC, VPN, Express Connect) connects this controller to the API server"
	}
	return nil, fmt.Errorf("failed to get kubernetes server version, %s%s", msg, hint)
}

// NodeSpec is the Node object the controller registers, with the labels
// and taints of VIRTUAL_NODE_LABELS / VIRTUAL_NODE_TAINTS (the eci-profile
// may replace them: see shared.nodeSettingsFor).
func NodeSpec(cfg *config.Config, sv *k8sversion.Info) corev1.Node {
	return nodeSpec(cfg, sv, cfg.NodeLabelMap(), cfg.NodeTaintList())
}

// nodeSpec is NodeSpec with the given extra labels and taints.
func nodeSpec(cfg *config.Config, sv *k8sversion.Info, extraLabels map[string]string, taints []corev1.Taint) corev1.Node {
	res := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse(cfg.CPUCapacity),
		corev1.ResourceMemory: resource.MustParse(cfg.MemoryCapacity),
		// Pods requesting ephemeral-storage must schedule here: without
		// it they stay Pending "Insufficient ephemeral-storage".
		corev1.ResourceEphemeralStorage: resource.MustParse(cfg.EphemeralStorageCapacity),
		corev1.ResourcePods:             *resource.NewQuantity(int64(cfg.PodCapacity), resource.DecimalSI),
	}
	kubeletVersion := version.Version
	now := metav1.Now()
	if sv != nil {
		kubeletVersion = sv.GitVersion + "-ack-virtual-node-" + version.Version
	}
	labels := map[string]string{
		"type":                          "virtual-kubelet",
		"kubernetes.io/role":            "agent",
		"kubernetes.io/hostname":        cfg.NodeName,
		"kubernetes.io/os":              "linux",
		"kubernetes.io/arch":            "amd64",
		"topology.kubernetes.io/region": cfg.Region,
	}
	// The extra labels cannot name the keys above (config.OwnNodeLabels).
	for k, v := range extraLabels {
		labels[k] = v
	}
	return corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        cfg.NodeName,
			Labels:      labels,
			Annotations: map[string]string{AnnotationNodeSettings: nodeSettingsValue(extraLabels, taints)},
		},
		Spec: corev1.NodeSpec{Taints: taints},
		Status: corev1.NodeStatus{
			Phase:       corev1.NodePending,
			Capacity:    res,
			Allocatable: res.DeepCopy(),
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: cfg.NodeIP},
				{Type: corev1.NodeHostName, Address: cfg.NodeName},
			},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(cfg.KubeletPort)}},
			NodeInfo: corev1.NodeSystemInfo{
				OperatingSystem: "linux", Architecture: "amd64",
				KubeletVersion: kubeletVersion, KubeProxyVersion: kubeletVersion,
			},
			Conditions: []corev1.NodeCondition{
				// Registered Ready at once: the node has no local runtime
				// to wait for, and a NotReady node would repel pods.
				{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
					Message: "ack-virtual-node is ready", LastHeartbeatTime: now, LastTransitionTime: now},
				{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasNoDiskPressure"},
				{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientMemory"},
				{Type: corev1.NodePIDPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientPID"},
				{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionFalse, Reason: "RouteCreated"},
			},
		},
	}
}

// servingTLS loads the kubelet API's serving pair, or makes a self-signed
// one for the node's address: the apiserver does not verify kubelet serving
// certificates unless told to.
func servingTLS(cfg *config.Config) (*tls.Config, error) {
	var certPEM, keyPEM []byte
	var err error
	if cfg.ServingCert != "" {
		if certPEM, err = os.ReadFile(cfg.ServingCert); err != nil {
			return nil, fmt.Errorf("KUBELET_SERVING_CERT: %w", err)
		}
		if keyPEM, err = os.ReadFile(cfg.ServingKey); err != nil {
			return nil, fmt.Errorf("KUBELET_SERVING_KEY: %w", err)
		}
	} else {
		var ips []net.IP
		if ip := net.ParseIP(cfg.NodeIP); ip != nil {
			ips = append(ips, ip)
		}
		if certPEM, keyPEM, err = certutil.GenerateSelfSignedCertKey(cfg.NodeName, ips, nil); err != nil {
			return nil, fmt.Errorf("self-signed kubelet serving certificate: %w", err)
		}
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("kubelet serving certificate: %w", err)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		CipherSuites: nodeutil.DefaultServerCiphers(),
		// Callers are authenticated by certificate or bearer token; a
		// certificate is asked for, not required.
		ClientAuth:   tls.RequestClientCert,
		Certificates: []tls.Certificate{pair},
	}, nil
}

// kubeletAuth authenticates kubelet API callers like a kubelet does: client
// certificates signed by the cluster CA (the apiserver's kubelet client
// cert) or bearer tokens (TokenReview), then SubjectAccessReview.
func kubeletAuth(kube kubernetes.Interface, cfg *config.Config, restCfg *rest.Config) (nodeutil.Auth, error) {
	caPEM := restCfg.CAData
	var err error
	switch {
	case cfg.ClientCA != "":
		if caPEM, err = os.ReadFile(cfg.ClientCA); err != nil {
			return nil, fmt.Errorf("KUBELET_CLIENT_CA: %w", err)
		}
	case len(caPEM) == 0 && restCfg.CAFile != "":
		if caPEM, err = os.ReadFile(restCfg.CAFile); err != nil {
			return nil, fmt.Errorf("kubeconfig CA file: %w", err)
		}
	}
	var opts []nodeutil.WebhookAuthOption
	if len(caPEM) > 0 {
		ca, err := dynamiccertificates.NewStaticCAContent("client-ca", caPEM)
		if err != nil {
			return nil, fmt.Errorf("kubelet client CA: %w", err)
		}
		opts = append(opts, func(c *nodeutil.WebhookAuthConfig) error {
			c.AuthnConfig.ClientCertificateCAContentProvider = ca
			return nil
		})
	}
	return nodeutil.WebhookAuth(kube, cfg.NodeName, opts...)
}

// nodeRegistry is the nodes this process runs now, for /metrics and /healthz.
type nodeRegistry struct {
	mu    sync.RWMutex
	nodes map[string]*runningNode
}

type runningNode struct {
	vn *kubelet
}

func newNodeRegistry() *nodeRegistry { return &nodeRegistry{nodes: map[string]*runningNode{}} }

// processMetrics are every metric of one controller process, in one
// registry of its own, so several processes' worth of nodes in one test
// binary never collide; every node's metrics carry its name. /metrics on
// METRICS_ADDR serves reg, and the chart's alerts and dashboard use only
// names registered here (charts/ack-virtual-node, TestChartMetricsExist).
type processMetrics struct {
	reg       *prometheus.Registry
	eci       *eci.Metrics
	provider  *provider.Metrics
	ownership *ownership.Metrics
	// nodes are the nodes running here, which report their queue depths.
	nodes *nodeRegistry
}

func newProcessMetrics() processMetrics {
	reg := prometheus.NewRegistry()
	pm := registerProcessMetrics(reg)
	pm.reg = reg
	return pm
}

// registerProcessMetrics builds every metric of the process and registers
// it with r (reg is left unset).
func registerProcessMetrics(r prometheus.Registerer) processMetrics {
	nodes := newNodeRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), nodes)
	return processMetrics{eci: eci.NewMetrics(r), provider: provider.NewMetrics(r), ownership: ownership.NewMetrics(r), nodes: nodes}
}

func (r *nodeRegistry) add(name string, vn *kubelet) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nodes[name] = &runningNode{vn: vn}
}

func (r *nodeRegistry) remove(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.nodes, name)
}

// snapshot returns the running nodes sorted by name.
func (r *nodeRegistry) snapshot() ([]string, []*runningNode) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.nodes))
	for n := range r.nodes {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]*runningNode, len(names))
	for i, n := range names {
		out[i] = r.nodes[n]
	}
	return names, out
}

var queueDepthDesc = prometheus.NewDesc("vnode_queue_depth", "Items waiting in a pod controller queue of a virtual node run by this process.",
	[]string{"node", "queue"}, nil)

// Describe implements prometheus.Collector.
func (r *nodeRegistry) Describe(ch chan<- *prometheus.Desc) { ch <- queueDepthDesc }

// Collect reports the queue depths of the nodes running now: nodes come and
// go with their Leases, so the series are made at scrape time.
func (r *nodeRegistry) Collect(ch chan<- prometheus.Metric) {
	names, nodes := r.snapshot()
	for i, n := range nodes {
		pc := n.vn.PodController()
		for _, q := range []struct {
			name string
			f    func() int
		}{
			{"sync_pods_from_kubernetes", pc.SyncPodsFromKubernetesQueueLen},
			{"delete_pods_from_kubernetes", pc.DeletePodsFromKubernetesQueueLen},
			{"sync_pod_status_from_provider", pc.SyncPodStatusFromProviderQueueLen},
		} {
			ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, float64(q.f()), names[i], q.name)
		}
	}
}

// kubeletOnlyPaths are the kubelet API's pod-data paths (whole pod specs,
// stats, logs, exec). They are served only on each node's authenticated
// kubelet port (KUBELET_PORT+i, TLS, TokenReview or the cluster CA's client
// certificates, then SubjectAccessReview on nodes/proxy, nodes/stats or
// nodes/metrics), never on METRICS_ADDR, which needs no credentials: there
// they answer 404 with where to find them, so a scraper still pointed at
// the old read-only port learns why it gets nothing.
var kubeletOnlyPaths = []string{"/pods", "/pods/", "/runningpods/", "/stats/", "/metrics/", "/spec/",
	"/containerLogs/", "/logs/", "/exec/", "/attach/", "/portForward/", "/run/"}

// kubeletOnlyMessage is what a pod-data path answers on METRICS_ADDR.
const kubeletOnlyMessage = "not served on METRICS_ADDR, which needs no credentials: /pods, /stats/summary, /metrics/resource, " +
	"logs and exec are on the kubelet API port of each virtual node (https, KUBELET_PORT+i, the Node's " +
	"status.daemonEndpoints.kubeletEndpoint.port), for callers authorised for nodes/proxy, nodes/stats or nodes/metrics " +
	"(e.g. kubectl get --raw /api/v1/nodes/<node>/proxy/stats/summary)\n"

// serveMetrics serves the replica's unauthenticated port: Prometheus
// metrics (ECI calls, pod queues, ownership), a health check for the
// probes, and Go's profiles when pprofEnabled. Nothing about pods is
// served here (kubeletOnlyPaths). It binds addr before returning, so a port
// in use stops the controller at start-up with the variable's name; a
// server that fails later sends the error on the channel. /metrics serves
// reg, this process's own registry (newProcessMetrics: ECI client,
// ownership, queue depths, the providers' per-node metrics); nodes answer
// /healthz.
func serveMetrics(addr string, reg *prometheus.Registry, nodes *nodeRegistry, pprofEnabled bool) (*http.Server, <-chan error, error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	for _, p := range kubeletOnlyPaths {
		mux.HandleFunc(p, func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, kubeletOnlyMessage, http.StatusNotFound)
		})
	}
	// Healthy when every node running here is Ready; a standby replica
	// that runs none is healthy too (it takes nodes over when needed).
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		names, running := nodes.snapshot()
		for i, n := range running {
			select {
			case <-n.vn.Ready():
			default:
				http.Error(w, "virtual node "+names[i]+" not ready", http.StatusServiceUnavailable)
				return
			}
		}
		_, _ = w.Write([]byte("ok"))
	})
	if pprofEnabled {
		// Off by default: profiles show code paths and cost CPU to take,
		// and this port needs no credentials.
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("METRICS_ADDR %s: %w: set it to a free address, e.g. :10255", addr, err)
	}
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("metrics server on METRICS_ADDR %s stopped (no /healthz without it): %w", addr, err)
		}
	}()
	return srv, errc, nil
}
