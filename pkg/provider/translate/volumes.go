package translate

import (
	"context"
	"encoding/base64"
	"fmt"
	"path"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// buildVolumes maps pod volumes. Files (configMap, secret, downwardAPI,
// projected with the service-account token) become ConfigFileVolumes whose
// content is resolved now; anything ECI cannot mount is refused with the
// field and the fix, never dropped. The caller has run checkVolumes. The
// files of the tokens m mints (in parallel, mint.go) are left empty, for
// m.finish to fill once the rest of the translation is done.
func (t *Translator) buildVolumes(ctx context.Context, pod *corev1.Pod, m *mints) ([]eci.Volume, TokenRefresh, error) {
	var out []eci.Volume
	var refresh TokenRefresh
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
			files, mode, err := t.volumeFiles(ctx, pod, v, m)
			if err != nil {
				return nil, refresh, fmt.Errorf("%s: %w", field, err)
			}
			for _, f := range files {
				if !f.expires.IsZero() {
					refresh.add(v.Name, t.refreshTime(f.expires))
				}
			}
			vol.Type = eci.VolumeConfigFile
			vol.ConfigFileDefaultMode = mode
			for _, f := range files {
				if f.pending != nil {
					m.later(f.pending, field, len(out), len(vol.ConfigFileToPaths))
				}
				vol.ConfigFileToPaths = append(vol.ConfigFileToPaths, eci.ConfigFileToPath{
					Path: f.path, Content: base64.StdEncoding.EncodeToString(f.data), Mode: f.mode,
				})
			}
		case v.PersistentVolumeClaim != nil:
			pv, err := t.claimVolume(ctx, pod.Namespace, v.PersistentVolumeClaim, field)
			if err != nil {
				return nil, refresh, err
			}
			pv.Name = v.Name
			vol = *pv
		default:
			return nil, refresh, unsupportedVolume(field, v)
		}
		out = append(out, vol)
	}
	return out, refresh, nil
}

// checkVolumes refuses, before anything is read or minted, the volumes ECI
// cannot mount and the downward-API items it cannot fill.
func checkVolumes(pod *corev1.Pod) error {
	for i, v := range pod.Spec.Volumes {
		field := fmt.Sprintf("spec.volumes[%d] (%s)", i, v.Name)
		var err error
		switch {
		case v.EmptyDir != nil, v.NFS != nil, v.ConfigMap != nil, v.Secret != nil, v.PersistentVolumeClaim != nil:
		case v.DownwardAPI != nil:
			_, err = downwardFiles(pod, v.DownwardAPI.Items)
		case v.Projected != nil:
			for _, src := range v.Projected.Sources {
				switch {
				case src.ConfigMap != nil, src.Secret != nil, src.ServiceAccountToken != nil:
				case src.DownwardAPI != nil:
					_, err = downwardFiles(pod, src.DownwardAPI.Items)
				default:
					err = errUnsupportedProjection
				}
				if err != nil {
					break
				}
			}
		default:
			return unsupportedVolume(field, v)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", field, err)
		}
	}
	return nil
}

func unsupportedVolume(field string, v corev1.Volume) error {
	typ := volumeType(v.VolumeSource)
	return &InvalidPodError{Field: field + "." + typ, Reason: typ + " volumes are not supported on ECI",
		Fix: "use emptyDir, configMap, secret, downwardAPI, projected, nfs or a PVC backed by NAS/NFS or a cloud disk, or run the pod on a real node"}
}

var errUnsupportedProjection = &InvalidPodError{Field: "projected source", Reason: "only configMap, secret, downwardAPI and serviceAccountToken sources are supported on ECI"}

type file struct {
	path string
	data []byte
	mode *int32
	// expires is set for service-account tokens, which must be renewed.
	expires time.Time
	// pending is the token still being minted, for m.finish to write.
	pending *pendingToken
}

// volumeFiles resolves the files of a configMap, secret, downwardAPI or
// projected volume.
func (t *Translator) volumeFiles(ctx context.Context, pod *corev1.Pod, v corev1.Volume, m *mints) ([]file, *int32, error) {
	switch {
	case v.ConfigMap != nil:
		files, err := t.configMapFiles(ctx, pod.Namespace, v.ConfigMap.Name, v.ConfigMap.Items, v.ConfigMap.Optional)
		return files, v.ConfigMap.DefaultMode, err
	case v.Secret != nil:
		files, err := t.secretFiles(ctx, pod.Namespace, v.Secret.SecretName, v.Secret.Items, v.Secret.Optional)
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
			files, err = t.configMapFiles(ctx, pod.Namespace, src.ConfigMap.Name, src.ConfigMap.Items, src.ConfigMap.Optional)
		case src.Secret != nil:
			files, err = t.secretFiles(ctx, pod.Namespace, src.Secret.Name, src.Secret.Items, src.Secret.Optional)
		case src.DownwardAPI != nil:
			files, err = downwardFiles(pod, src.DownwardAPI.Items)
		case src.ServiceAccountToken != nil:
			files, err = t.tokenFile(ctx, pod, src.ServiceAccountToken, m)
		default:
			err = errUnsupportedProjection
		}
		if err != nil {
			return nil, nil, err
		}
		all = append(all, files...)
	}
	return all, v.Projected.DefaultMode, nil
}

func (t *Translator) configMapFiles(ctx context.Context, ns, name string, items []corev1.KeyToPath, optional *bool) ([]file, error) {
	d, err := t.configMapData(ctx, ns, name, ptr.Deref(optional, false))
	if err != nil {
		return nil, err
	}
	data := make(map[string][]byte, len(d))
	for k, v := range d {
		data[k] = []byte(v)
	}
	return keyFiles("configMap "+name, data, items, optional)
}

func (t *Translator) secretFiles(ctx context.Context, ns, name string, items []corev1.KeyToPath, optional *bool) ([]file, error) {
	data, err := t.secretData(ctx, ns, name, ptr.Deref(optional, false))
	if err != nil {
		return nil, err
	}
	return keyFiles("secret "+name, data, items, optional)
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

// tokenFile is the file of a service-account token bound to the pod,
// minted with the TokenRequest API as the kubelet does (never a legacy
// token Secret): m's, or one minted now.
func (t *Translator) tokenFile(ctx context.Context, pod *corev1.Pod, src *corev1.ServiceAccountTokenProjection, m *mints) ([]file, error) {
	sa, req := projectedTokenRequest(pod, src)
	if f := m.projectedMint(src); f != nil {
		return []file{{path: path.Clean(src.Path), pending: &pendingToken{mint: f, what: fmt.Sprintf("service account token for %s/%s", pod.Namespace, sa)}}}, nil
	}
	out, err := t.cluster.Token(ctx, pod.Namespace, sa, req)
	if err != nil {
		return nil, fmt.Errorf("service account token for %s/%s: %w", pod.Namespace, sa, err)
	}
	return []file{{path: path.Clean(src.Path), data: []byte(out.Status.Token), expires: out.Status.ExpirationTimestamp.Time}}, nil
}

// projectedTokenRequest is the TokenRequest of a projected token source
// and the ServiceAccount it is for.
func projectedTokenRequest(pod *corev1.Pod, src *corev1.ServiceAccountTokenProjection) (string, *authv1.TokenRequest) {
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
	return sa, tr
}

// volumeType names the volume source a pod uses, as written in YAML.
func volumeType(vs corev1.VolumeSource) string {
	v := reflect.ValueOf(vs)
	for i := 0; i < v.NumField(); i++ {
		if !v.Field(i).IsNil() {
			return strings.Split(v.Type().Field(i).Tag.Get("json"), ",")[0]
		}
	}
	return "unknown"
}

// CSI drivers of Alibaba Cloud storage that ECI mounts natively.
const (
	diskCSIDriver = "diskplugin.csi.alibabacloud.com"
	nasCSIDriver  = "nasplugin.csi.alibabacloud.com"
)

// claimVolume maps a PVC to the storage behind its bound PV: NFS/NAS or a
// cloud disk. Other storage is refused with the field and the fix.
func (t *Translator) claimVolume(ctx context.Context, ns string, src *corev1.PersistentVolumeClaimVolumeSource, field string) (*eci.Volume, error) {
	pvc, err := t.cluster.PersistentVolumeClaim(ctx, ns, src.ClaimName)
	if err != nil {
		return nil, fmt.Errorf("%s: persistentVolumeClaim %s/%s: %w", field, ns, src.ClaimName, err)
	}
	if pvc.Spec.VolumeName == "" || pvc.Status.Phase != corev1.ClaimBound {
		return nil, fmt.Errorf("%s: persistentVolumeClaim %s/%s is not bound yet", field, ns, src.ClaimName)
	}
	pv, err := t.cluster.PersistentVolume(ctx, pvc.Spec.VolumeName)
	if err != nil {
		return nil, fmt.Errorf("%s: persistentVolume %s: %w", field, pvc.Spec.VolumeName, err)
	}
	out := &eci.Volume{}
	switch s := pv.Spec.PersistentVolumeSource; {
	case s.NFS != nil:
		out.Type, out.NFSServer, out.NFSPath, out.NFSReadOnly = eci.VolumeNFS, s.NFS.Server, s.NFS.Path, s.NFS.ReadOnly || src.ReadOnly
	case s.CSI != nil && s.CSI.Driver == nasCSIDriver:
		out.Type, out.NFSServer, out.NFSPath = eci.VolumeNFS, s.CSI.VolumeAttributes["server"], s.CSI.VolumeAttributes["path"]
		out.NFSReadOnly = s.CSI.ReadOnly || src.ReadOnly
		if out.NFSPath == "" {
			out.NFSPath = "/"
		}
	case s.CSI != nil && s.CSI.Driver == diskCSIDriver:
		out.Type, out.DiskVolumeDiskID, out.DiskVolumeFsType = eci.VolumeDisk, s.CSI.VolumeHandle, s.CSI.FSType
		if q, ok := pv.Spec.Capacity[corev1.ResourceStorage]; ok {
			out.DiskVolumeDiskSize = int(q.Value() >> 30)
		}
	default:
		return nil, &InvalidPodError{Field: field + ".persistentVolumeClaim", Reason: fmt.Sprintf("PV %s is not NFS, NAS or an Alibaba Cloud disk", pv.Name),
			Fix: "use a StorageClass backed by NAS or cloud disks"}
	}
	return out, nil
}
