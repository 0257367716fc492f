package addon

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/kubeversion"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"helm.sh/helm/v3/pkg/releaseutil"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"
)

// crdKinds are the kinds the chart renders that no Kubernetes version
// serves by itself: they come from the Prometheus Operator's CRDs, which
// the chart renders only when monitoring.* is enabled (and which need
// apiextensions.k8s.io/v1, 1.16+, like every current Prometheus Operator).
var crdKinds = map[schema.GroupVersionKind]bool{
	{Group: "monitoring.coreos.com", Version: "v1", Kind: "ServiceMonitor"}: true,
	{Group: "monitoring.coreos.com", Version: "v1", Kind: "PrometheusRule"}: true,
}

// podSpecAt is where each workload kind keeps its pod spec.
var podSpecAt = map[string]string{
	"Deployment": "spec.template.spec", "StatefulSet": "spec.template.spec", "DaemonSet": "spec.template.spec",
	"Job": "spec.template.spec", "Pod": "spec",
}

// newFields are fields that Kubernetes added (or turned on by default,
// leaving them dropped by the apiserver before) after 1.16, with the first
// minor that honours them. A field used below that minor is either refused
// by Helm's schema validation or silently dropped by the apiserver. Path
// segments ending in [] walk every item of a list; "<pod>" is the kind's
// pod spec (podSpecAt). Sources: the Kubernetes documentation of each
// field's feature gate (feature-gates page, "Feature gates for graduated
// or deprecated features") and the release notes.
var newFields = []struct {
	kinds []string
	path  string
	since int
	what  string
}{
	{nil, "<pod>.containers[].securityContext.seccompProfile", 19, "seccompProfile field (GA 1.19; annotation before)"},
	{nil, "<pod>.initContainers[].securityContext.seccompProfile", 19, "seccompProfile field"},
	{nil, "<pod>.securityContext.seccompProfile", 19, "seccompProfile field"},
	{nil, "<pod>.containers[].startupProbe", 18, "StartupProbe gate (beta, on by default from 1.18)"},
	{nil, "<pod>.topologySpreadConstraints", 18, "EvenPodsSpread gate (beta, on by default from 1.18)"},
	{nil, "<pod>.setHostnameAsFQDN", 20, "SetHostnameAsFQDN gate (beta 1.20)"},
	{nil, "<pod>.os", 25, "IdentifyPodOS (GA 1.25)"},
	{[]string{"NetworkPolicy"}, "spec.ingress[].ports[].endPort", 22, "NetworkPolicyEndPort gate (beta, on by default from 1.22)"},
	{[]string{"NetworkPolicy"}, "spec.egress[].ports[].endPort", 22, "NetworkPolicyEndPort gate"},
	{[]string{"Job"}, "spec.ttlSecondsAfterFinished", 21, "TTLAfterFinished gate (beta, on by default from 1.21)"},
	{[]string{"Job"}, "spec.completionMode", 22, "IndexedJob gate (beta 1.22)"},
	{[]string{"Job"}, "spec.suspend", 22, "SuspendJob gate (beta 1.22)"},
	{[]string{"Job"}, "spec.podFailurePolicy", 26, "JobPodFailurePolicy gate (beta 1.26)"},
	{[]string{"StatefulSet"}, "spec.minReadySeconds", 25, "StatefulSetMinReadySeconds (GA 1.25)"},
	{[]string{"StatefulSet"}, "spec.persistentVolumeClaimRetentionPolicy", 27, "StatefulSetAutoDeletePVC gate (beta 1.27)"},
	{[]string{"StatefulSet"}, "spec.ordinals", 27, "StatefulSetStartOrdinal gate (beta 1.27)"},
	{[]string{"PodDisruptionBudget"}, "spec.unhealthyPodEvictionPolicy", 27, "PDBUnhealthyPodEvictionPolicy gate (beta 1.27)"},
	{[]string{"Service"}, "spec.internalTrafficPolicy", 22, "ServiceInternalTrafficPolicy gate (beta 1.22)"},
	{[]string{"Service"}, "spec.ipFamilyPolicy", 20, "IPv6DualStack API (1.20)"},
}

// present reports whether path (dot-separated, "x[]" walks list x) exists
// in obj.
func present(obj any, path []string) bool {
	if len(path) == 0 {
		return true
	}
	m, ok := obj.(map[string]any)
	if !ok {
		return false
	}
	seg, list := strings.CutSuffix(path[0], "[]")
	v, ok := m[seg]
	if !ok || v == nil {
		return false
	}
	if !list {
		return present(v, path[1:])
	}
	items, _ := v.([]any)
	for _, it := range items {
		if present(it, path[1:]) {
			return true
		}
	}
	return false
}

// renderedDocs are the manifests and hooks of a render, split.
func renderedDocs(r *Rendered) map[string]string {
	docs := releaseutil.SplitManifests(r.Manifest)
	for _, h := range r.Hooks {
		docs["hook-"+h.Name] = h.Manifest
	}
	return docs
}

// TestRenderEveryKubeVersion renders the chart, as `helm template
// --kube-version 1.N` does, for every supported minor (pkg/kubeversion)
// with the default values and with every value set, and checks that
//   - every object's apiVersion/kind is one that minor serves (the table in
//     pkg/kubeversion, from the Kubernetes deprecation guide), so no kind
//     is left out: a kind missing from the table fails the test;
//   - no object uses a field that minor does not honour (newFields);
//   - what _compat.tpl replaces is there instead: the seccomp annotation,
//     the liveness delay, each port of the kubelet port range;
//   - `helm lint` for that version (which flags APIs deprecated there)
//     reports no warning.
func TestRenderEveryKubeVersion(t *testing.T) {
	valueSets := map[string]map[string]any{"defaults": minimal(), "every value": with(everyValue(),
		"securityContext", map[string]any{"runAsNonRoot": true, "seccompProfile": map[string]any{"type": "RuntimeDefault"}}),
		"StatefulSet form": statefulSetForm(with(everyValue(),
			"securityContext", map[string]any{"runAsNonRoot": true, "seccompProfile": map[string]any{"type": "RuntimeDefault"}}))}
	for _, minor := range kubeversion.Minors() {
		version := fmt.Sprintf("v1.%d.3", minor)
		t.Run(version, func(t *testing.T) {
			for name, vals := range valueSets {
				r, err := Render(vals, RenderOptions{KubeVersion: version})
				if err != nil {
					t.Fatalf("%s: render for %s: %v", name, version, err)
				}
				kinds := map[string]int{}
				for _, doc := range renderedDocs(r) {
					var obj map[string]any
					if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
						t.Fatalf("%s: rendered document is not YAML: %v\n%s", name, err, doc)
					}
					if obj == nil {
						continue
					}
					checkObjectForMinor(t, name, minor, obj)
					kind, _ := obj["kind"].(string)
					kinds[kind]++
				}
				// The value sets must reach the templates that differ.
				if kinds["PodDisruptionBudget"] == 0 && name == "every value" {
					t.Errorf("%s: no PodDisruptionBudget rendered: the test does not reach pdb.yaml", name)
				}
				if kinds["NetworkPolicy"] == 0 && name == "every value" {
					t.Errorf("%s: no NetworkPolicy rendered: the test does not reach networkpolicy.yaml", name)
				}
			}
			kv, err := chartutil.ParseKubeVersion(version)
			if err != nil {
				t.Fatal(err)
			}
			l := lint.AllWithKubeVersion(filepath.Join("..", "..", "..", "charts", "ack-virtual-node"), valueSets["every value"], DefaultNamespace, kv)
			if len(l.Messages) == 0 {
				t.Fatal("helm lint reported nothing at all, not even its INFO lines: it did not run")
			}
			for _, m := range l.Messages {
				if m.Severity >= support.WarningSev {
					t.Errorf("helm lint --kube-version %s: %s", version, m)
				}
			}
		})
	}
}

func checkObjectForMinor(t *testing.T, valueSet string, minor int, obj map[string]any) {
	t.Helper()
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	meta, _ := obj["metadata"].(map[string]any)
	id := fmt.Sprintf("%s: 1.%d: %s %s/%v", valueSet, minor, apiVersion, kind, meta["name"])
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		t.Errorf("%s: apiVersion: %v", id, err)
		return
	}
	gvk := gv.WithKind(kind)
	if !crdKinds[gvk] {
		ok, known := kubeversion.Served(gvk, minor)
		switch {
		case !known:
			t.Errorf("%s: kind not in pkg/kubeversion's table: add it with the versions that serve it (Kubernetes deprecation guide)", id)
		case !ok:
			t.Errorf("%s: Kubernetes 1.%d does not serve %s %s: pick the version in templates/_compat.tpl", id, minor, apiVersion, kind)
		}
	}
	for _, f := range newFields {
		if f.kinds != nil && !contains(f.kinds, kind) {
			continue
		}
		path := f.path
		if rest, ok := strings.CutPrefix(path, "<pod>."); ok {
			at, isWorkload := podSpecAt[kind]
			if !isWorkload {
				continue
			}
			path = at + "." + rest
		}
		if minor < f.since && present(obj, strings.Split(path, ".")) {
			t.Errorf("%s: %s is set, but Kubernetes 1.%d does not honour it (%s, from 1.%d): leave it out there in templates/_compat.tpl", id, path, minor, f.what, f.since)
		}
	}
	checkReplacements(t, id, minor, kind, obj)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// checkReplacements: below the minor of a field, what stands for it is
// rendered.
func checkReplacements(t *testing.T, id string, minor int, kind string, obj map[string]any) {
	t.Helper()
	if at, ok := podSpecAt[kind]; ok && minor < 19 {
		tmplMeta := strings.TrimSuffix(at, "spec") + "metadata.annotations"
		ann, _ := nested(obj, strings.Split(tmplMeta, ".")...).(map[string]any)
		if got := ann["seccomp.security.alpha.kubernetes.io/pod"]; got != "runtime/default" {
			t.Errorf("%s: pod annotation seccomp.security.alpha.kubernetes.io/pod = %v, want runtime/default (stands for seccompProfile below 1.19)", id, got)
		}
	}
	if (kind == "Deployment" || kind == "StatefulSet") && minor < 18 {
		spec := nested(obj, "spec", "template", "spec", "containers")
		for _, c := range spec.([]any) {
			c := c.(map[string]any)
			if c["name"] != "virtual-node" {
				continue
			}
			if d := nested(c, "livenessProbe", "initialDelaySeconds"); d != float64(300) {
				t.Errorf("%s: controller livenessProbe.initialDelaySeconds = %v, want 300 (stands for the startup probe below 1.18)", id, d)
			}
		}
	}
	if kind == "NetworkPolicy" && minor < 22 {
		// everyValue: kubeletPort 11250, nodeCount 3 (the StatefulSet
		// form: two legacy nodes besides ordinal 0's own).
		ports := map[float64]bool{}
		for _, rule := range nested(obj, "spec", "ingress").([]any) {
			for _, p := range nested(rule, "ports").([]any) {
				ports[nested(p, "port").(float64)] = true
			}
		}
		for _, want := range []float64{11250, 11251, 11252} {
			if !ports[want] {
				t.Errorf("%s: kubelet port %v not admitted (ports %v): below 1.22 each port of the range is listed", id, want, ports)
			}
		}
	}
}

func nested(obj any, keys ...string) any {
	for _, k := range keys {
		m, ok := obj.(map[string]any)
		if !ok {
			return nil
		}
		obj = m[k]
	}
	return obj
}

// statefulSetForm is vals with controller.kind StatefulSet (and the one
// node per pod that form requires), the rest of controller kept.
func statefulSetForm(vals map[string]any) map[string]any {
	c := map[string]any{}
	if base, ok := vals["controller"].(map[string]any); ok {
		for k, v := range base {
			c[k] = v
		}
	}
	c["kind"], c["nodeCount"] = "StatefulSet", 1
	// Ordinal 0 serves two legacy nodes on the next kubelet ports, so the
	// NetworkPolicy admits 11250 to 11252 as with everyValue's 3 nodes.
	c["statefulSet"] = map[string]any{"legacyNodes": []any{"virtual-kubelet", "virtual-kubelet-1"}}
	return with(vals, "controller", c)
}
