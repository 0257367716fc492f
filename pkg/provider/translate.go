package provider

import (
	"context"
	"encoding/base64"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

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

// Annotations the provider writes back on the pod, as the vendor's product
// does.
const (
	AnnotationInstanceID = "k8s.aliyun.com/eci-instance-id"
	AnnotationRequestID  = "k8s.aliyun.com/eci-request-id"
)

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

// buildRequest translates a pod into CreateContainerGroup parameters. The
// pod's env valueFrom references are already resolved by the
// virtual-kubelet core.
func (p *Provider) buildRequest(ctx context.Context, pod *corev1.Pod) (*eci.CreateContainerGroupRequest, error) {
	req := &eci.CreateContainerGroupRequest{
		SecurityGroupId:    p.opts.SecurityGroup,
		VSwitchId:          strings.Join(p.opts.VSwitches, ","),
		ScheduleStrategy:   "VSwitchOrdered",
		ContainerGroupName: groupName(pod),
		RestartPolicy:      string(pod.Spec.RestartPolicy),
		ClientToken:        string(pod.UID),
		HostName:           pod.Spec.Hostname,
		Tags: []eci.Tag{
			{Key: TagManagedBy, Value: ManagedByValue},
			{Key: TagClusterID, Value: p.opts.ClusterID},
			{Key: TagNodeName, Value: p.opts.NodeName},
			{Key: TagPodNamespace, Value: pod.Namespace},
			{Key: TagPodName, Value: pod.Name},
			{Key: TagPodUID, Value: string(pod.UID)},
		},
		TerminationGracePeriodSeconds: pod.Spec.TerminationGracePeriodSeconds,
		ActiveDeadlineSeconds:         pod.Spec.ActiveDeadlineSeconds,
	}
	if req.RestartPolicy == "" {
		req.RestartPolicy = string(corev1.RestartPolicyAlways)
	}
	volumes, err := p.buildVolumes(ctx, pod)
	if err != nil {
		return nil, err
	}
	req.Volumes = volumes
	for i := range pod.Spec.InitContainers {
		c, err := buildContainer(&pod.Spec.InitContainers[i], fmt.Sprintf("spec.initContainers[%d]", i))
		if err != nil {
			return nil, err
		}
		req.InitContainers = append(req.InitContainers, c)
	}
	for i := range pod.Spec.Containers {
		c, err := buildContainer(&pod.Spec.Containers[i], fmt.Sprintf("spec.containers[%d]", i))
		if err != nil {
			return nil, err
		}
		req.Cpu += c.Cpu
		req.Memory += c.Memory
		req.Containers = append(req.Containers, c)
	}
	return req, nil
}

// buildContainer maps one container. Limits win over requests because the
// group is sized once and cannot burst above what it was created with.
func buildContainer(c *corev1.Container, field string) (eci.Container, error) {
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
		return out, &InvalidPodError{Field: field + ".image", Reason: "is empty", Fix: "set the container image"}
	}
	if q, ok := pick(c.Resources, corev1.ResourceCPU); ok {
		out.Cpu = float64(q.MilliValue()) / 1000
	}
	if q, ok := pick(c.Resources, corev1.ResourceMemory); ok {
		out.Memory = float64(q.Value()) / (1 << 30)
	}
	for _, p := range c.Ports {
		out.Ports = append(out.Ports, eci.Port{Port: p.ContainerPort, Protocol: string(p.Protocol)})
	}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			// Only fields the group itself knows (status.podIP) remain
			// unresolved here; the cloud fills them in.
			out.EnvironmentVars = append(out.EnvironmentVars, eci.EnvVar{Key: e.Name, FieldPath: e.ValueFrom.FieldRef.FieldPath})
			continue
		}
		out.EnvironmentVars = append(out.EnvironmentVars, eci.EnvVar{Key: e.Name, Value: e.Value})
	}
	for _, m := range c.VolumeMounts {
		out.VolumeMounts = append(out.VolumeMounts, eci.VolumeMount{
			Name: m.Name, MountPath: m.MountPath, ReadOnly: m.ReadOnly, SubPath: m.SubPath,
		})
	}
	return out, nil
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

// buildVolumes maps pod volumes. Files (configMap, secret, downwardAPI,
// projected with the service-account token) become ConfigFileVolumes whose
// content is resolved now; anything ECI cannot mount is refused with the
// field and the fix, never dropped.
func (p *Provider) buildVolumes(ctx context.Context, pod *corev1.Pod) ([]eci.Volume, error) {
	var out []eci.Volume
	for i, v := range pod.Spec.Volumes {
		field := fmt.Sprintf("spec.volumes[%d] (%s)", i, v.Name)
		vol := eci.Volume{Name: v.Name}
		switch {
		case v.EmptyDir != nil:
			vol.Type = eci.VolumeEmptyDir
			if v.EmptyDir.Medium == corev1.StorageMediumMemory {
				vol.EmptyDirMedium = "memory"
			}
			if v.EmptyDir.SizeLimit != nil {
				vol.EmptyDirSizeLimit = v.EmptyDir.SizeLimit.String()
			}
		case v.NFS != nil:
			vol.Type = eci.VolumeNFS
			vol.NFSServer, vol.NFSPath, vol.NFSReadOnly = v.NFS.Server, v.NFS.Path, v.NFS.ReadOnly
		case v.ConfigMap != nil, v.Secret != nil, v.DownwardAPI != nil, v.Projected != nil:
			files, mode, err := p.volumeFiles(ctx, pod, v)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", field, err)
			}
			vol.Type = eci.VolumeConfigFile
			vol.ConfigFileDefaultMode = mode
			for _, f := range files {
				vol.ConfigFileToPaths = append(vol.ConfigFileToPaths, eci.ConfigFileToPath{
					Path: f.path, Content: base64.StdEncoding.EncodeToString(f.data), Mode: f.mode,
				})
			}
		default:
			return nil, &InvalidPodError{Field: field, Reason: "this volume type is not supported on ECI",
				Fix: "use emptyDir, configMap, secret, downwardAPI, projected or nfs, or run the pod on a real node"}
		}
		out = append(out, vol)
	}
	return out, nil
}

type file struct {
	path string
	data []byte
	mode *int32
}

// volumeFiles resolves the files of a configMap, secret, downwardAPI or
// projected volume.
func (p *Provider) volumeFiles(ctx context.Context, pod *corev1.Pod, v corev1.Volume) ([]file, *int32, error) {
	switch {
	case v.ConfigMap != nil:
		files, err := p.configMapFiles(ctx, pod.Namespace, v.ConfigMap.Name, v.ConfigMap.Items, v.ConfigMap.Optional)
		return files, v.ConfigMap.DefaultMode, err
	case v.Secret != nil:
		files, err := p.secretFiles(ctx, pod.Namespace, v.Secret.SecretName, v.Secret.Items, v.Secret.Optional)
		return files, v.Secret.DefaultMode, err
	case v.DownwardAPI != nil:
		files, err := downwardFiles(pod, v.DownwardAPI.Items)
		return files, v.DownwardAPI.DefaultMode, err
	}
	var all []file
	for _, src := range v.Projected.Sources {
		var files []file
		var err error
		switch {
		case src.ConfigMap != nil:
			files, err = p.configMapFiles(ctx, pod.Namespace, src.ConfigMap.Name, src.ConfigMap.Items, src.ConfigMap.Optional)
		case src.Secret != nil:
			files, err = p.secretFiles(ctx, pod.Namespace, src.Secret.Name, src.Secret.Items, src.Secret.Optional)
		case src.DownwardAPI != nil:
			files, err = downwardFiles(pod, src.DownwardAPI.Items)
		case src.ServiceAccountToken != nil:
			files, err = p.tokenFile(ctx, pod, src.ServiceAccountToken)
		default:
			err = &InvalidPodError{Field: "projected source", Reason: "only configMap, secret, downwardAPI and serviceAccountToken sources are supported on ECI"}
		}
		if err != nil {
			return nil, nil, err
		}
		all = append(all, files...)
	}
	return all, v.Projected.DefaultMode, nil
}

func (p *Provider) configMapFiles(ctx context.Context, ns, name string, items []corev1.KeyToPath, optional *bool) ([]file, error) {
	cm, err := p.opts.Kube.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) && ptr.Deref(optional, false) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("configMap %s/%s: %w", ns, name, err)
	}
	data := map[string][]byte{}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return keyFiles("configMap "+name, data, items, optional)
}

func (p *Provider) secretFiles(ctx context.Context, ns, name string, items []corev1.KeyToPath, optional *bool) ([]file, error) {
	s, err := p.opts.Kube.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) && ptr.Deref(optional, false) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("secret %s/%s: %w", ns, name, err)
	}
	return keyFiles("secret "+name, s.Data, items, optional)
}

// keyFiles selects the files of a configMap or secret: every key, or only
// the listed items with their paths and modes.
func keyFiles(what string, data map[string][]byte, items []corev1.KeyToPath, optional *bool) ([]file, error) {
	var out []file
	if len(items) == 0 {
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			out = append(out, file{path: k, data: data[k]})
		}
		return out, nil
	}
	for _, it := range items {
		d, ok := data[it.Key]
		if !ok {
			if ptr.Deref(optional, false) {
				continue
			}
			return nil, &InvalidPodError{Field: what, Reason: fmt.Sprintf("has no key %q", it.Key), Fix: "add the key or mark the volume optional"}
		}
		out = append(out, file{path: it.Path, data: d, mode: it.Mode})
	}
	return out, nil
}

// downwardFiles renders the metadata fields a downwardAPI volume may hold.
func downwardFiles(pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile) ([]file, error) {
	var out []file
	for _, it := range items {
		if it.FieldRef == nil {
			return nil, &InvalidPodError{Field: "downwardAPI item " + it.Path, Reason: "resourceFieldRef is not supported on ECI yet", Fix: "use fieldRef or an env var"}
		}
		var val string
		switch it.FieldRef.FieldPath {
		case "metadata.name":
			val = pod.Name
		case "metadata.namespace":
			val = pod.Namespace
		case "metadata.uid":
			val = string(pod.UID)
		case "metadata.labels":
			val = formatMap(pod.Labels)
		case "metadata.annotations":
			val = formatMap(pod.Annotations)
		default:
			return nil, &InvalidPodError{Field: "downwardAPI item " + it.Path, Reason: fmt.Sprintf("fieldPath %q is not supported in volumes", it.FieldRef.FieldPath)}
		}
		out = append(out, file{path: it.Path, data: []byte(val), mode: it.Mode})
	}
	return out, nil
}

func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%q\n", k, m[k])
	}
	return b.String()
}

// tokenFile mints a service-account token bound to the pod with the
// TokenRequest API, as the kubelet does; never a legacy token Secret.
func (p *Provider) tokenFile(ctx context.Context, pod *corev1.Pod, src *corev1.ServiceAccountTokenProjection) ([]file, error) {
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	tr := &authv1.TokenRequest{Spec: authv1.TokenRequestSpec{
		ExpirationSeconds: src.ExpirationSeconds,
		BoundObjectRef:    &authv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}
	if src.Audience != "" {
		tr.Spec.Audiences = []string{src.Audience}
	}
	out, err := p.opts.Kube.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, tr, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("service account token for %s/%s: %w", pod.Namespace, sa, err)
	}
	return []file{{path: path.Clean(src.Path), data: []byte(out.Status.Token)}}, nil
}
