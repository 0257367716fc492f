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
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/config"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/profile"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/virtual-kubelet/virtual-kubelet/node"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	"github.com/virtual-kubelet/virtual-kubelet/node/nodeutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/klog/v2"
)

// Version is the controller's version, set at build time with -ldflags.
var Version = "dev"

// TaintKey is the taint every pod must tolerate to land on the node.
const TaintKey = "virtual-kubelet.io/provider"

// Options are the inputs of Run besides the configuration.
type Options struct {
	// Config is the validated configuration.
	Config *config.Config
	// RESTConfig overrides the kubeconfig/in-cluster lookup (tests).
	RESTConfig *rest.Config
	// Cloud overrides the SDK-backed ECI client (unit tests only).
	Cloud provider.Cloud
	// Ready, if set, is closed once the node is registered and Ready.
	Ready chan<- struct{}
}

// Run runs the virtual node until ctx ends or a controller fails.
func Run(ctx context.Context, opts Options) error {
	cfg := opts.Config
	logger := klog.FromContext(ctx).WithValues("node", cfg.NodeName)
	restCfg := opts.RESTConfig
	if restCfg == nil {
		var err error
		if restCfg, err = loadRESTConfig(cfg.Kubeconfig); err != nil {
			return err
		}
	}
	kube, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	sv, err := ServerVersion(kube)
	if err != nil {
		return err
	}
	logger.Info("connected to kubernetes", "serverVersion", sv.GitVersion, "host", restCfg.Host)

	clusterID := cfg.ClusterID
	if clusterID == "" {
		ns, err := kube.CoreV1().Namespaces().Get(ctx, metav1.NamespaceSystem, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("CLUSTER_ID is empty and the kube-system namespace UID cannot be read to derive it: %w", err)
		}
		clusterID = string(ns.UID)
	}

	cloud := opts.Cloud
	if cloud == nil {
		c, err := eci.NewClient(eci.Config{RegionId: cfg.Region, Endpoint: cfg.Endpoint})
		if err != nil {
			return err
		}
		cloud = c
	}

	broadcaster := record.NewBroadcaster()
	defer broadcaster.Shutdown()
	broadcaster.StartStructuredLogging(2)
	broadcaster.StartRecordingToSink(&corev1client.EventSinkImpl{Interface: kube.CoreV1().Events("")})
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "ack-virtual-node", Host: cfg.NodeName})

	// The eci-profile ConfigMap overrides the vSwitches and security group
	// of new pods; edits apply without a restart.
	profiles := profile.NewStore(profile.StoreOptions{Kube: kube, Recorder: recorder})
	if err := profiles.Start(ctx); err != nil {
		return fmt.Errorf("watch the eci-profile ConfigMap (kube-system/eci-profile): %w", err)
	}

	prov, err := provider.New(provider.Options{
		Defaults: profiles.Defaults,
		NodeName: cfg.NodeName, ClusterID: clusterID,
		VSwitches: cfg.VSwitches, SecurityGroup: cfg.SecurityGroup, KubeProxy: cfg.KubeProxy,
		Cloud: cloud, Kube: kube, Recorder: recorder,
		StatusInterval: cfg.StatusInterval, ResyncInterval: cfg.ResyncInterval,
		TokenRefreshFraction: cfg.TokenRefreshFraction,
	})
	if err != nil {
		return err
	}
	adopted, deleted, err := prov.Adopt(ctx)
	if err != nil {
		return fmt.Errorf("adopt existing container groups: %w", err)
	}
	logger.Info("reconciled existing container groups", "adopted", adopted, "deletedOrphans", deleted, "clusterId", clusterID)

	tlsOpt, err := servingTLS(cfg)
	if err != nil {
		return err
	}
	auth, err := kubeletAuth(kube, cfg, restCfg)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	spec := NodeSpec(cfg, sv)
	vn, err := nodeutil.NewNode(cfg.NodeName,
		func(pc nodeutil.ProviderConfig) (nodeutil.Provider, node.NodeProvider, error) {
			prov.SetListers(pc.ConfigMaps, pc.Secrets, pc.Services)
			return prov, nil, nil
		},
		nodeutil.WithClient(kube),
		tlsOpt,
		nodeutil.AttachProviderRoutes(mux),
		func(c *nodeutil.NodeConfig) error {
			c.NodeSpec = spec
			c.HTTPListenAddr = net.JoinHostPort(cfg.ListenIP, strconv.Itoa(cfg.KubeletPort))
			c.Handler = nodeutil.WithAuth(auth, mux)
			c.EventRecorder = recorder
			c.NumWorkers = 8
			// The core's env resolution fails on status.podIP, which only
			// the cloud knows; the provider resolves env itself.
			c.SkipDownwardAPIResolution = true
			return nil
		},
	)
	if err != nil {
		return fmt.Errorf("virtual node: %w", err)
	}

	metricsSrv := serveMetrics(cfg.MetricsAddr, vn, prov)
	defer metricsSrv.Close()

	go prov.Run(ctx)
	errc := make(chan error, 1)
	go func() { errc <- vn.Run(ctx) }()
	select {
	case <-vn.Ready():
		logger.Info("virtual node is ready", "kubeletPort", cfg.KubeletPort, "vSwitches", cfg.VSwitches)
		if opts.Ready != nil {
			close(opts.Ready)
		}
	case err := <-errc:
		return fmt.Errorf("virtual node stopped before it was ready: %w", err)
	}
	err = <-errc
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func loadRESTConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		c, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("KUBECONFIG is empty and no in-cluster config is available: %w", err)
		}
		return c, nil
	}
	c, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("KUBECONFIG %s: %w", kubeconfig, err)
	}
	return c, nil
}

// ServerVersion asks the apiserver for its version, with the advice the
// vendor's documentation gives for the two errors users meet most.
func ServerVersion(kube kubernetes.Interface) (*version.Info, error) {
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

// NodeSpec is the Node object the controller registers.
func NodeSpec(cfg *config.Config, sv *version.Info) corev1.Node {
	res := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse(cfg.CPUCapacity),
		corev1.ResourceMemory: resource.MustParse(cfg.MemoryCapacity),
		corev1.ResourcePods:   *resource.NewQuantity(int64(cfg.PodCapacity), resource.DecimalSI),
	}
	kubeletVersion := Version
	now := metav1.Now()
	if sv != nil {
		kubeletVersion = sv.GitVersion + "-ack-virtual-node-" + Version
	}
	return corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: cfg.NodeName,
			Labels: map[string]string{
				"type":                          "virtual-kubelet",
				"kubernetes.io/role":            "agent",
				"kubernetes.io/hostname":        cfg.NodeName,
				"kubernetes.io/os":              "linux",
				"kubernetes.io/arch":            "amd64",
				"topology.kubernetes.io/region": cfg.Region,
			},
		},
		Spec: corev1.NodeSpec{Taints: []corev1.Taint{{
			Key: TaintKey, Value: "alibabacloud", Effect: corev1.TaintEffectNoSchedule,
		}}},
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
func servingTLS(cfg *config.Config) (nodeutil.NodeOpt, error) {
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
	return nodeutil.WithTLSConfig(func(c *tls.Config) error {
		c.Certificates = []tls.Certificate{pair}
		return nil
	}), nil
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

// serveMetrics serves the kubelet's read-only port: Prometheus metrics (ECI
// calls, pod queues), a health check, and the unauthenticated read-only
// views a kubelet offers there (/pods, /stats/summary, /metrics/resource).
func serveMetrics(addr string, vn *nodeutil.Node, prov *provider.Provider) *http.Server {
	// Queue depths live in a registry of this node so several nodes (tests,
	// one process serving many) never collide in the default registry.
	reg := prometheus.NewRegistry()
	pc := vn.PodController()
	for name, f := range map[string]func() int{
		"sync_pods_from_kubernetes":     pc.SyncPodsFromKubernetesQueueLen,
		"delete_pods_from_kubernetes":   pc.DeletePodsFromKubernetesQueueLen,
		"sync_pod_status_from_provider": pc.SyncPodStatusFromProviderQueueLen,
	} {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "vnode", Name: "queue_depth", Help: "Items waiting in a pod controller queue.",
			ConstLabels: prometheus.Labels{"queue": name},
		}, func() float64 { return float64(f()) }))
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(prometheus.Gatherers{prometheus.DefaultGatherer, reg}, promhttp.HandlerOpts{}))
	mux.Handle("/pods", api.HandleRunningPods(prov.GetPods))
	mux.Handle("/stats/summary", api.PodStatsSummaryHandler(prov.GetStatsSummary))
	mux.Handle(api.MetricsResourceRouteSuffix, api.PodMetricsResourceHandler(prov.GetMetricsResource))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		select {
		case <-vn.Ready():
			_, _ = w.Write([]byte("ok"))
		default:
			http.Error(w, "virtual node not ready", http.StatusServiceUnavailable)
		}
	})
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			klog.ErrorS(err, "metrics server stopped", "addr", addr)
		}
	}()
	return srv
}
