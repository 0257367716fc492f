package addon

import (
	"reflect"
	"strings"
	"testing"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/config"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// statefulSetValues are minimal values of the StatefulSet form.
func statefulSetValues(controller map[string]any) map[string]any {
	c := map[string]any{"kind": "StatefulSet"}
	for k, v := range controller {
		c[k] = v
	}
	return with(minimal(), "controller", c)
}

// TestRenderStatefulSet: controller.kind=StatefulSet renders the seeds'
// StatefulSet kube-system/virtual-node-eci (Parallel, its headless
// Service, the Deployment's pod spec with a grace period that covers the
// scale-down drain), no controller Deployment, an env from which ordinal
// pod virtual-node-eci-2 serves node virtual-node-eci-2, the RBAC a pod
// scaled away needs, a PDB that selects its pods and a drain hook for all
// of its nodes.
func TestRenderStatefulSet(t *testing.T) {
	objs, _ := render(t, statefulSetValues(map[string]any{"replicas": 3}))
	if _, ok := objs["Deployment/kube-system/"+ControllerDeployment]; ok {
		t.Error("the controller Deployment is rendered with kind StatefulSet")
	}
	var sts appsv1.StatefulSet
	objs.get(t, "StatefulSet/kube-system/virtual-node-eci", &sts)
	if sts.Spec.Replicas == nil || *sts.Spec.Replicas != 3 || sts.Spec.PodManagementPolicy != appsv1.ParallelPodManagement || sts.Spec.ServiceName != "virtual-node-eci" {
		t.Errorf("StatefulSet replicas %v, policy %q, serviceName %q; want 3, Parallel, virtual-node-eci", sts.Spec.Replicas, sts.Spec.PodManagementPolicy, sts.Spec.ServiceName)
	}
	var svc corev1.Service
	objs.get(t, "Service/kube-system/virtual-node-eci", &svc)
	if svc.Spec.ClusterIP != corev1.ClusterIPNone || !reflect.DeepEqual(svc.Spec.Selector, sts.Spec.Selector.MatchLabels) {
		t.Errorf("Service clusterIP %q selector %v; want headless, selecting %v", svc.Spec.ClusterIP, svc.Spec.Selector, sts.Spec.Selector.MatchLabels)
	}
	pod := sts.Spec.Template.Spec
	if pod.TerminationGracePeriodSeconds == nil || *pod.TerminationGracePeriodSeconds != 150 {
		t.Errorf("terminationGracePeriodSeconds %v, want 150 (scale-down timeout 120 s + 30)", pod.TerminationGracePeriodSeconds)
	}
	c := pod.Containers[0]
	env := containerEnv(c)
	if _, set := env["VIRTUAL_NODE_NAME"]; set {
		t.Errorf("VIRTUAL_NODE_NAME = %+v: the ordinal pod's name must name the node", env["VIRTUAL_NODE_NAME"])
	}
	if env["VIRTUAL_NODE_COUNT"].Value != "1" || env["VIRTUAL_NODE_SCALE_DOWN_TIMEOUT"].Value != "120s" {
		t.Errorf("VIRTUAL_NODE_COUNT %q, VIRTUAL_NODE_SCALE_DOWN_TIMEOUT %q", env["VIRTUAL_NODE_COUNT"].Value, env["VIRTUAL_NODE_SCALE_DOWN_TIMEOUT"].Value)
	}
	loadFromEnv(t, c.Env, map[string]string{"VIRTUAL_NODE_IP": "10.0.0.5", "POD_NAME": "virtual-node-eci-2", "POD_NAMESPACE": "kube-system"}, nil)
	cfg, err := config.Load()
	if err != nil {
		t.Fatalf("controller config from the rendered env: %v", err)
	}
	if cfg.NodeName != "virtual-node-eci-2" || cfg.StatefulSet != "virtual-node-eci" || cfg.Ordinal != 2 {
		t.Errorf("ordinal pod 2 serves %q of StatefulSet %q ordinal %d", cfg.NodeName, cfg.StatefulSet, cfg.Ordinal)
	}

	// The pod spec is the Deployment's but for the grace period.
	dobjs, _ := render(t, minimal())
	var d appsv1.Deployment
	dobjs.get(t, "Deployment/kube-system/"+ControllerDeployment, &d)
	dpod := d.Spec.Template.Spec.DeepCopy()
	spod := pod.DeepCopy()
	dpod.TerminationGracePeriodSeconds, spod.TerminationGracePeriodSeconds = nil, nil
	dpod.Containers[0].Env, spod.Containers[0].Env = nil, nil
	if !reflect.DeepEqual(dpod, spod) {
		t.Errorf("the StatefulSet's pod spec differs from the Deployment's (keep controller-statefulset.yaml in step):\n%+v\n%+v", spod, dpod)
	}
	if !reflect.DeepEqual(d.Spec.Template.Labels, sts.Spec.Template.Labels) {
		t.Errorf("pod labels %v, want the Deployment's %v (PDB, NetworkPolicy)", sts.Spec.Template.Labels, d.Spec.Template.Labels)
	}
	var pdb policyv1.PodDisruptionBudget
	objs.get(t, "PodDisruptionBudget/kube-system/ack-virtual-node-controller", &pdb)
	if sel, _ := metav1.LabelSelectorAsSelector(pdb.Spec.Selector); !sel.Matches(labels.Set(sts.Spec.Template.Labels)) {
		t.Errorf("the controller PDB %v does not select the StatefulSet's pods", pdb.Spec.Selector)
	}

	var cr rbacv1.ClusterRole
	objs.get(t, "ClusterRole/ack-virtual-node:controller", &cr)
	if !allows(cr.Rules, "", "nodes", "delete", "") || !allows(cr.Rules, "", "nodes", "list", "") {
		t.Errorf("ClusterRole does not let a pod scaled away delete its Node or the drain list nodes: %+v", cr.Rules)
	}
	var role rbacv1.Role
	objs.get(t, "Role/kube-system/ack-virtual-node:controller-statefulset", &role)
	if !allows(role.Rules, "apps", "statefulsets", "get", "virtual-node-eci") || allows(role.Rules, "apps", "statefulsets", "get", "other") {
		t.Errorf("Role %+v: want get on StatefulSet virtual-node-eci only", role.Rules)
	}
	// Rendered with kind Deployment too: a switch to the Deployment form
	// stops the StatefulSet's pods after Helm applied it, and they must
	// still read that their StatefulSet is gone (not a scale-down).
	var drole rbacv1.Role
	dobjs.get(t, "Role/kube-system/ack-virtual-node:controller-statefulset", &drole)
	if !reflect.DeepEqual(drole.Rules, role.Rules) {
		t.Errorf("Deployment form's StatefulSet Role %+v, want %+v", drole.Rules, role.Rules)
	}
	var drcr rbacv1.ClusterRole
	dobjs.get(t, "ClusterRole/ack-virtual-node:controller", &drcr)
	if allows(drcr.Rules, "", "nodes", "delete", "") {
		t.Error("the Deployment form may delete nodes: only the StatefulSet form needs it")
	}

	var job batchv1.Job
	objs.get(t, "Job/kube-system/ack-virtual-node-drain", &job)
	if args := strings.Join(job.Spec.Template.Spec.Containers[0].Args, " "); !strings.Contains(args, "--statefulset=virtual-node-eci") {
		t.Errorf("drain hook args %q: want --statefulset=virtual-node-eci", args)
	}
}

// TestRenderStatefulSetLegacyNodes: the migration setting reaches ordinal
// 0 (VIRTUAL_NODE_LEGACY_NAMES), and the NetworkPolicy admits the kubelet
// ports of its extra nodes.
func TestRenderStatefulSetLegacyNodes(t *testing.T) {
	objs, _ := render(t, with(statefulSetValues(map[string]any{
		"statefulSet": map[string]any{"name": "vn", "legacyNodes": []any{"virtual-kubelet-0", "virtual-kubelet-1"}, "scaleDownTimeoutSeconds": 60},
	}), "networkPolicy", map[string]any{"enabled": true}))
	var sts appsv1.StatefulSet
	objs.get(t, "StatefulSet/kube-system/vn", &sts)
	c := sts.Spec.Template.Spec.Containers[0]
	env := containerEnv(c)
	if env["VIRTUAL_NODE_LEGACY_NAMES"].Value != "virtual-kubelet-0,virtual-kubelet-1" {
		t.Errorf("VIRTUAL_NODE_LEGACY_NAMES = %q", env["VIRTUAL_NODE_LEGACY_NAMES"].Value)
	}
	if g := sts.Spec.Template.Spec.TerminationGracePeriodSeconds; g == nil || *g != 90 {
		t.Errorf("terminationGracePeriodSeconds %v, want 90", g)
	}
	loadFromEnv(t, c.Env, map[string]string{"VIRTUAL_NODE_IP": "10.0.0.5", "POD_NAME": "vn-0", "POD_NAMESPACE": "kube-system"}, nil)
	cfg, err := config.Load()
	if err != nil {
		t.Fatalf("controller config from the rendered env: %v", err)
	}
	if got := strings.Join(cfg.NodeNames(), ","); got != "vn-0,virtual-kubelet-0,virtual-kubelet-1" {
		t.Errorf("ordinal 0 serves %s", got)
	}
	var np networkingv1.NetworkPolicy
	objs.get(t, "NetworkPolicy/kube-system/ack-virtual-node-controller", &np)
	p := np.Spec.Ingress[0].Ports[0]
	if p.Port.IntValue() != 10250 || p.EndPort == nil || *p.EndPort != 10252 {
		t.Errorf("kubelet ports %v-%v, want 10250-10252", p.Port, p.EndPort)
	}
}

func TestRenderStatefulSetRejects(t *testing.T) {
	for name, tc := range map[string]struct {
		values map[string]any
		want   string
	}{
		"nodeCount with a StatefulSet": {statefulSetValues(map[string]any{"nodeCount": 2}), "controller.nodeCount applies to kind Deployment"},
		"unknown kind":                 {with(minimal(), "controller", map[string]any{"kind": "DaemonSet"}), "/controller/kind"},
		"bad legacy node":              {statefulSetValues(map[string]any{"statefulSet": map[string]any{"legacyNodes": []any{"Old_Node"}}}), "/controller/statefulSet/legacyNodes/0"},
		"scale-down timeout too short": {statefulSetValues(map[string]any{"statefulSet": map[string]any{"scaleDownTimeoutSeconds": 1}}), "/controller/statefulSet/scaleDownTimeoutSeconds"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Render(tc.values, RenderOptions{}); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("render: %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

// allows reports whether rules grant verb on group/resource (and on the
// object name, when name is not empty).
func allows(rules []rbacv1.PolicyRule, group, resource, verb, name string) bool {
	has := func(list []string, v string) bool {
		for _, x := range list {
			if x == v {
				return true
			}
		}
		return false
	}
	for _, r := range rules {
		if has(r.APIGroups, group) && has(r.Resources, resource) && has(r.Verbs, verb) &&
			(len(r.ResourceNames) == 0 || (name != "" && has(r.ResourceNames, name))) {
			return true
		}
	}
	return false
}

// TestRenderedControllerStatefulSet: upgrades compare the live StatefulSet
// with the rendered one (the vendor's `kubectl -n kube-system edit
// statefulset virtual-node-eci`), as they do the Deployment.
func TestRenderedControllerStatefulSet(t *testing.T) {
	r, err := Render(statefulSetValues(nil), RenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := renderedController(r.Manifest)
	if err != nil || w == nil || w.kind != "StatefulSet" || w.name != "virtual-node-eci" {
		t.Fatalf("renderedController = %+v, %v; want StatefulSet virtual-node-eci", w, err)
	}
	if e := w.env["ECI_VSWITCH"]; e == nil || e.Value != "vsw-aaa" {
		t.Errorf("rendered ECI_VSWITCH = %+v, want vsw-aaa", e)
	}
}

// TestNotesStatefulSet: NOTES name the StatefulSet, its nodes and how to
// scale and edit it.
func TestNotesStatefulSet(t *testing.T) {
	_, r := render(t, statefulSetValues(map[string]any{"statefulSet": map[string]any{"legacyNodes": []any{"virtual-kubelet"}}}))
	for _, want := range []string{"statefulset/virtual-node-eci", "node virtual-node-eci-<i>", "virtual-node-eci-0 keeps serving virtual-kubelet",
		"scale statefulset virtual-node-eci --replicas=4", "edit statefulset virtual-node-eci", "grep virtual-node-eci"} {
		if !strings.Contains(r.Notes, want) {
			t.Errorf("NOTES do not say %q:\n%s", want, r.Notes)
		}
	}
	if strings.Contains(r.Notes, "deployment/ack-virtual-node-controller") {
		t.Errorf("NOTES of the StatefulSet form name the Deployment:\n%s", r.Notes)
	}
}
