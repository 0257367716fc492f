package translate

import (
	"context"
	"encoding/base64"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/nodeaccess"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
)

// kube-proxy in the container group. ClusterIP Services (the cluster DNS
// among them) exist only in the iptables rules kube-proxy writes on each
// node; an ECI pod has no node, so every group that should reach them runs
// a kube-proxy of its own, in iptables mode, in a container the user never
// sees: it is left out of the pod's status, and the kubelet API refuses
// logs, exec and attach for it and leaves it out of stats.
//
// It authenticates as a dedicated ServiceAccount bound to the built-in
// ClusterRole system:node-proxier and nothing else; its token comes from
// the TokenRequest API and is renewed in the running group like projected
// service-account tokens (UpdateContainerGroup on the volume's files), and
// kube-proxy re-reads the token file. The token cannot be bound to the
// pod: the API server binds a token only to a pod in the ServiceAccount's
// own namespace that runs as that ServiceAccount. It is short-lived
// instead (KubeProxyTokenSeconds, renewed at SA_TOKEN_REFRESH_FRACTION).
const (
	// KubeProxyContainer is the reserved name of the kube-proxy container;
	// a pod's own container of that name is refused.
	KubeProxyContainer = "eci-kube-proxy"
	// KubeProxyVolume is the reserved name of the ConfigFileVolume that
	// holds its kubeconfig, token and CA.
	KubeProxyVolume = "eci-kube-proxy"
	// AnnotationKubeProxyEnabled turns kube-proxy on ("true") or off
	// ("false") for one pod, whatever the eci-profile and ECI_KUBE_PROXY
	// say (the vendor's annotation).
	AnnotationKubeProxyEnabled = "k8s.aliyun.com/eci-kube-proxy-enabled"
	// KubeProxyCPU and KubeProxyMemory (vCPU, GiB) are the container's
	// fixed size, ECI's smallest instance size; the group's size includes
	// them.
	KubeProxyCPU    = 0.25
	KubeProxyMemory = 0.5
	// KubeProxyTokenSeconds is the lifetime asked for its token.
	KubeProxyTokenSeconds = 3600
	// KubeProxyDir is where the volume is mounted in the container.
	KubeProxyDir = "/var/lib/eci-kube-proxy"
	// kubeProxyBinary is kube-proxy's path in the vendor's image (and in
	// the upstream one).
	kubeProxyBinary = "/usr/local/bin/kube-proxy"
)

// KubeProxyConfig is how a group's kube-proxy reaches the API server.
type KubeProxyConfig struct {
	// Image is the kube-proxy image (ECI_KUBE_PROXY_IMAGE or its default).
	Image string
	// Server is the API server URL the VPC reaches
	// (KUBERNETES_APISERVER_URL or the controller's own).
	Server string
	// CA is the PEM of the CA that verifies Server; empty means the
	// system roots.
	CA []byte
	// Namespace is the namespace of nodeaccess.KubeProxyServiceAccountName.
	Namespace string
}

// kubeProxyDecision is whether a pod gets kube-proxy and, when it does
// not, which setting said so (for the DNS note).
type kubeProxyDecision struct {
	on     bool
	source string
}

// decideKubeProxy reads the pod's annotation, else the eci-profile's
// enableClusterIp, else ECI_KUBE_PROXY. A malformed annotation is refused.
func (t *Translator) decideKubeProxy(pod *corev1.Pod) (kubeProxyDecision, error) {
	if v, ok := pod.Annotations[AnnotationKubeProxyEnabled]; ok {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return kubeProxyDecision{}, invalidAnnotation(AnnotationKubeProxyEnabled, fmt.Sprintf("%q is not a boolean", v),
				`use "true" (reach ClusterIP Services through kube-proxy in the pod) or "false" (the VPC resolver, no ClusterIP Services)`)
		}
		return kubeProxyDecision{on: b, source: "annotation " + AnnotationKubeProxyEnabled}, nil
	}
	if t.opts.ClusterIPDefault != nil {
		if b := t.opts.ClusterIPDefault(); b != nil {
			return kubeProxyDecision{on: *b, source: "the eci-profile's enableClusterIp"}, nil
		}
	}
	return kubeProxyDecision{on: t.opts.KubeProxy, source: "ECI_KUBE_PROXY"}, nil
}

// checkReservedNames refuses containers and volumes that take the names of
// the hidden kube-proxy, whatever the pod's kube-proxy setting: the kubelet
// API hides that name everywhere.
func checkReservedNames(pod *corev1.Pod) error {
	for _, l := range []struct {
		field string
		cs    []corev1.Container
	}{{"spec.initContainers", pod.Spec.InitContainers}, {"spec.containers", pod.Spec.Containers}} {
		for i, c := range l.cs {
			if c.Name == KubeProxyContainer {
				return &InvalidPodError{Field: fmt.Sprintf("%s[%d].name", l.field, i),
					Reason: fmt.Sprintf("%q is reserved for the kube-proxy the virtual node runs in the pod", KubeProxyContainer),
					Fix:    "rename the container"}
			}
		}
	}
	for i, v := range pod.Spec.Volumes {
		if v.Name == KubeProxyVolume {
			return &InvalidPodError{Field: fmt.Sprintf("spec.volumes[%d].name", i),
				Reason: fmt.Sprintf("%q is reserved for the kube-proxy the virtual node runs in the pod", KubeProxyVolume),
				Fix:    "rename the volume"}
		}
	}
	return nil
}

// checkKubeProxyRoom refuses a pod that leaves no room for kube-proxy
// within ECI's limits of containers and volumes per group (maxContainers,
// maxVolumes).
func checkKubeProxyRoom(pod *corev1.Pod, d kubeProxyDecision) error {
	if !d.on {
		return nil
	}
	fix := fmt.Sprintf("split the pod, or set annotation %s: \"false\" if it needs no ClusterIP Services", AnnotationKubeProxyEnabled)
	switch {
	case groupContainers(pod) >= maxContainers:
		return &InvalidPodError{Field: "spec.containers", Reason: fmt.Sprintf("ECI allows %d containers per pod (native sidecars included) and kube-proxy takes one (ECI_KUBE_PROXY)", maxContainers), Fix: fix}
	case len(pod.Spec.Volumes) >= maxVolumes:
		return &InvalidPodError{Field: "spec.volumes", Reason: fmt.Sprintf("ECI allows %d volumes per pod and kube-proxy takes one (ECI_KUBE_PROXY)", maxVolumes), Fix: fix}
	}
	return nil
}

// addKubeProxy adds the kube-proxy container and its volume to the group
// and counts its size in the group's. It runs last, after the pod-level
// settings, so none of the pod's defaults (runAsUser...) reach it.
func (t *Translator) addKubeProxy(ctx context.Context, pod *corev1.Pod, tr *Translation, m *mints) error {
	cfg := t.opts.KubeProxyConfig
	if !tr.kubeProxy.on || cfg == nil {
		return nil
	}
	vol, expires, err := t.kubeProxyVolume(ctx, m)
	if err != nil {
		return err
	}
	req := tr.Req
	req.Volumes = append(req.Volumes, vol)
	tr.Tokens.add(KubeProxyVolume, t.refreshTime(expires))

	var sumCPU, sumMem, initCPU, initMem float64
	for _, c := range req.Containers {
		sumCPU, sumMem = sumCPU+c.Cpu, sumMem+c.Memory
	}
	for _, c := range req.InitContainers {
		initCPU, initMem = max(initCPU, c.Cpu), max(initMem, c.Memory)
	}
	req.Containers = append(req.Containers, kubeProxyContainer(cfg.Image, pod))
	// A pod that sizes nothing is left to the cloud's default size, which
	// holds kube-proxy too; eci-use-specs and instance types are the
	// user's choice of the whole size.
	if len(tr.Specs) == 0 && req.InstanceType == "" && (req.Cpu > 0 || req.Memory > 0) {
		req.Cpu = max(sumCPU+KubeProxyCPU, initCPU)
		req.Memory = max(sumMem+KubeProxyMemory, initMem)
	}
	return nil
}

// kubeProxyContainer is the container spec: a sidecar to ECI, iptables mode, NET_ADMIN to
// write the group's iptables rules, root (the pod's runAsUser must not
// reach it), the pod's name as its node name (an ECI pod is its own host),
// conntrack limits left alone (the group's kernel settings are the
// cloud's), health and metrics on loopback only so they take no port of
// the pod's address.
func kubeProxyContainer(image string, pod *corev1.Pod) eci.Container {
	return eci.Container{
		Name:            KubeProxyContainer,
		Image:           image,
		ImagePullPolicy: string(corev1.PullIfNotPresent),
		Cpu:             KubeProxyCPU,
		Memory:          KubeProxyMemory,
		Commands:        []string{kubeProxyBinary},
		Args: []string{
			"--proxy-mode=iptables",
			"--kubeconfig=" + path.Join(KubeProxyDir, "kubeconfig"),
			"--hostname-override=" + pod.Name,
			"--conntrack-max-per-core=0",
			"--healthz-bind-address=127.0.0.1:10256",
			"--metrics-bind-address=127.0.0.1:10249",
			"--v=2",
		},
		// ECI's documented container settings: a sidecar is stopped once
		// the pod's containers have exited for good, and its exit code is
		// ignored, so Jobs complete and succeed as they would on a node;
		// it starts before the pod's containers and exits after them, so
		// they reach Services from their first to their last moment
		// (start order only: the pod's containers do not wait for the
		// first rule sync, so a pod never hangs on an API server that
		// kube-proxy cannot reach). The pod's native sidecars start right
		// after it and exit right before it (sidecars.go).
		EnvironmentVars: []eci.EnvVar{
			{Key: EnvContainerType, Value: ContainerTypeSidecar}, {Key: EnvIgnoreExitCode, Value: "true"},
			{Key: EnvLaunchPriority, Value: strconv.Itoa(maxPriority)}, {Key: EnvExitPriority, Value: strconv.Itoa(-maxPriority)},
		},
		VolumeMounts:    []eci.VolumeMount{{Name: KubeProxyVolume, MountPath: KubeProxyDir, ReadOnly: true}},
		SecurityContext: &eci.ContainerSecurityContext{RunAsUser: ptr.To[int64](0), CapabilityAdd: []string{"NET_ADMIN"}},
	}
}

// kubeProxyTokenRequest is the TokenRequest of kube-proxy's token.
func kubeProxyTokenRequest() *authv1.TokenRequest {
	return &authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](KubeProxyTokenSeconds)}}
}

// kubeProxyVolume returns the ConfigFileVolume with kube-proxy's
// kubeconfig, its token (m's, or one minted now when m has none) and the
// CA, and when the token expires. Renewing the token in a running group
// builds it again (RefreshVolumes).
func (t *Translator) kubeProxyVolume(ctx context.Context, m *mints) (eci.Volume, time.Time, error) {
	cfg := t.opts.KubeProxyConfig
	if cfg == nil {
		return eci.Volume{}, time.Time{}, fmt.Errorf("kube-proxy is not configured on this node")
	}
	out, err := m.kubeProxyToken(ctx, t, cfg)
	if err != nil {
		return eci.Volume{}, time.Time{}, fmt.Errorf("kube-proxy token for ServiceAccount %s/%s (install it with the chart or `vnodectl kubeconfig`, or set %s: \"false\" on the pod): %w",
			cfg.Namespace, nodeaccess.KubeProxyServiceAccountName, AnnotationKubeProxyEnabled, err)
	}
	kubeconfig, err := kubeProxyKubeconfig(cfg)
	if err != nil {
		return eci.Volume{}, time.Time{}, err
	}
	files := []struct {
		name string
		data []byte
	}{{"kubeconfig", kubeconfig}, {"token", []byte(out.Status.Token)}}
	if len(cfg.CA) > 0 {
		files = append(files, struct {
			name string
			data []byte
		}{"ca.crt", cfg.CA})
	}
	vol := eci.Volume{Name: KubeProxyVolume, Type: eci.VolumeConfigFile}
	for _, f := range files {
		vol.ConfigFileToPaths = append(vol.ConfigFileToPaths, eci.ConfigFileToPath{Path: f.name, Content: base64.StdEncoding.EncodeToString(f.data)})
	}
	return vol, out.Status.ExpirationTimestamp.Time, nil
}

// kubeProxyKubeconfig points kube-proxy at the server with the token and
// CA files of its volume; client-go re-reads a token file, so a renewed
// token is used without a restart.
func kubeProxyKubeconfig(cfg *KubeProxyConfig) ([]byte, error) {
	cluster := &clientcmdapi.Cluster{Server: cfg.Server}
	if len(cfg.CA) > 0 {
		cluster.CertificateAuthority = path.Join(KubeProxyDir, "ca.crt")
	}
	kc := clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{"cluster": cluster},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{"kube-proxy": {TokenFile: path.Join(KubeProxyDir, "token")}},
		Contexts:       map[string]*clientcmdapi.Context{"kube-proxy": {Cluster: "cluster", AuthInfo: "kube-proxy"}},
		CurrentContext: "kube-proxy",
	}
	b, err := clientcmd.Write(kc)
	if err != nil {
		return nil, fmt.Errorf("kube-proxy kubeconfig: %w", err)
	}
	return b, nil
}

// HasKubeProxy reports whether a group the cloud describes runs the
// hidden kube-proxy (groups adopted after a restart).
func HasKubeProxy(g *eci.ContainerGroup) bool {
	for _, c := range g.Containers {
		if c.Name == KubeProxyContainer {
			return true
		}
	}
	return false
}

// RefreshVolumes rebuilds the listed token-carrying volumes of a running
// pod with fresh tokens: its projected volumes (buildVolumes) and the
// kube-proxy volume, and says when they are due next.
func (t *Translator) RefreshVolumes(ctx context.Context, pod *corev1.Pod, names []string) ([]eci.Volume, TokenRefresh, error) {
	if err := checkVolumes(pod); err != nil {
		return nil, TokenRefresh{}, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	kubeProxy := slices.Contains(names, KubeProxyVolume)
	m := t.startMints(ctx, pod, kubeProxy)
	vols, refresh, err := t.buildVolumes(ctx, pod, m)
	if err == nil {
		err = m.finish(ctx, t, vols, &refresh)
	}
	if err != nil {
		return nil, refresh, err
	}
	if kubeProxy {
		v, exp, err := t.kubeProxyVolume(ctx, m)
		if err != nil {
			return nil, refresh, err
		}
		vols = append(vols, v)
		refresh.add(KubeProxyVolume, t.refreshTime(exp))
	}
	var out []eci.Volume
	for _, v := range vols {
		if slices.Contains(names, v.Name) {
			out = append(out, v)
		}
	}
	return out, refresh, nil
}
