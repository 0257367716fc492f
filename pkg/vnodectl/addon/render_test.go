package addon

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/approver"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/config"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/nodeaccess"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/webhook"
	"github.com/kelseyhightower/envconfig"
	"helm.sh/helm/v3/pkg/releaseutil"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// minimal are the values an install cannot do without.
func minimal() map[string]any {
	return map[string]any{"region": "cn-hangzhou", "vSwitches": []any{"vsw-aaa"}, "securityGroup": "sg-aaa"}
}

func with(base map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

// objects is a rendered release, keyed by "Kind/name" (plus the hooks).
type objects map[string]string

func render(t *testing.T, values map[string]any) (objects, *Rendered) {
	t.Helper()
	r, err := Render(values, RenderOptions{})
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	objs := objects{}
	docs := releaseutil.SplitManifests(r.Manifest)
	for _, h := range r.Hooks {
		docs["hook-"+h.Name] = h.Manifest
	}
	for _, doc := range docs {
		var head struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("rendered document is not YAML: %v\n%s", err, doc)
		}
		if head.Kind == "" {
			continue
		}
		key := head.Kind + "/" + head.Metadata.Name
		if head.Metadata.Namespace != "" {
			key = head.Kind + "/" + head.Metadata.Namespace + "/" + head.Metadata.Name
		}
		if _, dup := objs[key]; dup {
			t.Fatalf("%s rendered twice", key)
		}
		objs[key] = doc
	}
	return objs, r
}

func (o objects) get(t *testing.T, key string, into any) {
	t.Helper()
	doc, ok := o[key]
	if !ok {
		t.Fatalf("%s not rendered; have %v", key, o.keys())
	}
	if err := yaml.UnmarshalStrict([]byte(doc), into); err != nil {
		t.Fatalf("%s: %v\n%s", key, err, doc)
	}
}

func (o objects) keys() []string {
	var k []string
	for key := range o {
		k = append(k, key)
	}
	sort.Strings(k)
	return k
}

func containerEnv(c corev1.Container) map[string]corev1.EnvVar {
	m := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		m[e.Name] = e
	}
	return m
}

// envTags are the variables a config struct reads.
func envTags(v any) map[string]bool {
	out := map[string]bool{}
	rt := reflect.TypeOf(v)
	for i := 0; i < rt.NumField(); i++ {
		if tag := rt.Field(i).Tag.Get("envconfig"); tag != "" {
			out[tag] = true
		}
	}
	return out
}

// loadFromEnv sets the plain values of env and extra in the test's
// environment and, when into is not nil, processes them into it.
func loadFromEnv(t *testing.T, env []corev1.EnvVar, extra map[string]string, into any) {
	t.Helper()
	for _, e := range env {
		if e.ValueFrom == nil {
			t.Setenv(e.Name, e.Value)
		}
	}
	for k, v := range extra {
		t.Setenv(k, v)
	}
	if into == nil {
		return
	}
	if err := envconfig.Process("", into); err != nil {
		t.Fatalf("envconfig: %v", err)
	}
}

func TestRenderDefaults(t *testing.T) {
	objs, r := render(t, minimal())
	for _, key := range []string{
		"Deployment/kube-system/ack-virtual-node-controller",
		"ServiceAccount/kube-system/ack-virtual-node-controller",
		"ClusterRole/ack-virtual-node:controller",
		"ClusterRoleBinding/ack-virtual-node:controller",
		"Role/kube-node-lease/ack-virtual-node:controller",
		"Role/kube-system/ack-virtual-node:controller-leases",
		"RoleBinding/kube-node-lease/ack-virtual-node:controller",
		"Deployment/kube-system/ack-virtual-node-webhook",
		"Service/kube-system/virtual-node-affinity-admission-controller",
		"MutatingWebhookConfiguration/virtual-node-affinity-admission-controller",
		"ClusterRole/ack-virtual-node:webhook",
		"Role/kube-system/ack-virtual-node:webhook",
		"Role/kube-system/ack-virtual-node:webhook-eci-profile",
		"ConfigMap/kube-system/eci-profile",
		"Secret/kube-system/ack-virtual-node-webhook-cert",
		"PodDisruptionBudget/kube-system/ack-virtual-node-controller",
		"PodDisruptionBudget/kube-system/ack-virtual-node-webhook",
		"Job/kube-system/ack-virtual-node-drain",
	} {
		if _, ok := objs[key]; !ok {
			t.Errorf("%s not rendered", key)
		}
	}
	for key := range objs {
		if strings.Contains(key, "approver") || key == "Secret/kube-system/alibaba-addon-secret" {
			t.Errorf("%s rendered by default", key)
		}
	}

	var d appsv1.Deployment
	objs.get(t, "Deployment/kube-system/ack-virtual-node-controller", &d)
	pod := d.Spec.Template.Spec
	if pod.ServiceAccountName != ControllerServiceAccount || len(pod.Containers) != 1 || pod.Containers[0].Name != ControllerContainer {
		t.Fatalf("controller pod: sa %q containers %v", pod.ServiceAccountName, pod.Containers)
	}
	c := pod.Containers[0]
	if c.Image != "registry.example.com/ack-virtual-node/virtual-node:0.1.0" {
		t.Errorf("image %q, want the appVersion tag", c.Image)
	}
	env := containerEnv(c)
	for name, want := range map[string]string{
		"ECI_REGION": "cn-hangzhou", "ECI_VSWITCH": "vsw-aaa", "ECI_SECURITY_GROUP": "sg-aaa",
		"ECI_KUBE_PROXY": "true", "VIRTUAL_NODE_NAME": "virtual-kubelet", "METRICS_ADDR": ":10255", "KUBELET_PORT": "10250",
	} {
		if env[name].Value != want {
			t.Errorf("env %s = %q, want %q", name, env[name].Value, want)
		}
	}
	for name, key := range map[string]string{"ALIBABA_CLOUD_ACCESS_KEY_ID": "access-key-id", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "access-key-secret"} {
		ref := env[name].ValueFrom
		if ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != "alibaba-addon-secret" || ref.SecretKeyRef.Key != key {
			t.Errorf("env %s = %+v, want secretKeyRef alibaba-addon-secret/%s", name, env[name], key)
		}
	}
	for name, path := range map[string]string{"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace", "VIRTUAL_NODE_IP": "status.podIP"} {
		if ref := env[name].ValueFrom; ref == nil || ref.FieldRef == nil || ref.FieldRef.FieldPath != path {
			t.Errorf("env %s = %+v, want the downward API %s", name, env[name], path)
		}
	}
	if d.Spec.Template.Annotations["checksum/config"] == "" {
		t.Error("no checksum/config annotation on the controller pod template")
	}
	for what, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port.StrVal != "metrics" {
			t.Errorf("%s probe %+v, want GET /healthz on the metrics port", what, p)
		}
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
		t.Errorf("controller resource requests %v", c.Resources.Requests)
	}
	// The controller keeps its heap under its memory limit (issue 15): the
	// chart limits its memory and hands the limit to it, in bytes, through
	// the downward API; the binary takes 90 % of it as its Go memory limit.
	if c.Resources.Limits.Memory().IsZero() {
		t.Errorf("controller has no memory limit: %v", c.Resources.Limits)
	}
	if ref := env["MEMORY_LIMIT_BYTES"].ValueFrom; ref == nil || ref.ResourceFieldRef == nil || ref.ResourceFieldRef.Resource != "limits.memory" ||
		ref.ResourceFieldRef.Divisor.Value() != 1 || (ref.ResourceFieldRef.ContainerName != "" && ref.ResourceFieldRef.ContainerName != c.Name) {
		t.Errorf("env MEMORY_LIMIT_BYTES = %+v, want the downward API resourceFieldRef limits.memory with divisor 1 (bytes)", env["MEMORY_LIMIT_BYTES"])
	}
	if sc := c.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("controller security context %+v is not non-root without privilege escalation", sc)
	}

	// values → env → the controller's own validation: the chart's plain
	// env (plus what the kubelet would resolve) is a valid configuration.
	loadFromEnv(t, c.Env, map[string]string{"VIRTUAL_NODE_IP": "10.0.0.5"}, nil)
	if _, err := config.Load(); err != nil {
		t.Errorf("controller config from the rendered env: %v", err)
	}
	// Every variable the chart sets is one the programs read (a typo would
	// be silently ignored).
	known := envTags(config.Config{})
	for _, name := range []string{"ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET"} {
		known[name] = true
	}
	for name := range env {
		if !known[name] {
			t.Errorf("controller env %s is read by nothing in pkg/config", name)
		}
	}

	var wd appsv1.Deployment
	objs.get(t, "Deployment/kube-system/ack-virtual-node-webhook", &wd)
	wenv := wd.Spec.Template.Spec.Containers[0].Env
	wknown := envTags(webhook.Config{})
	for _, e := range wenv {
		if !wknown[e.Name] {
			t.Errorf("webhook env %s is read by nothing in pkg/webhook", e.Name)
		}
	}
	var wcfg webhook.Config
	loadFromEnv(t, wenv, nil, &wcfg)
	if err := wcfg.Validate(); err != nil {
		t.Errorf("webhook config from the rendered env: %v", err)
	}
	var svc corev1.Service
	objs.get(t, "Service/kube-system/virtual-node-affinity-admission-controller", &svc)
	if svc.Name != wcfg.ServiceName || svc.Spec.Ports[0].Port != wcfg.ServicePort || svc.Spec.Ports[0].TargetPort.StrVal != "https" {
		t.Errorf("webhook Service %s:%d does not match WEBHOOK_SERVICE_NAME/PORT %s:%d", svc.Name, svc.Spec.Ports[0].Port, wcfg.ServiceName, wcfg.ServicePort)
	}
	var mwc admissionregistrationv1.MutatingWebhookConfiguration
	objs.get(t, "MutatingWebhookConfiguration/virtual-node-affinity-admission-controller", &mwc)
	if mwc.Name != wcfg.ConfigurationName || len(mwc.Webhooks) != 0 {
		t.Errorf("MutatingWebhookConfiguration %s with %d entries: want the webhook's own name and no entries (the webhook owns them)", mwc.Name, len(mwc.Webhooks))
	}

	var cert corev1.Secret
	objs.get(t, "Secret/kube-system/ack-virtual-node-webhook-cert", &cert)
	if cert.Name != wcfg.CertSecretName || cert.Type != corev1.SecretTypeTLS || len(cert.Data["tls.crt"]) != 0 {
		t.Errorf("webhook cert Secret %s type %s data %v: want WEBHOOK_CERT_SECRET, TLS, empty until the webhook fills it", cert.Name, cert.Type, cert.Data)
	}

	var cm corev1.ConfigMap
	objs.get(t, "ConfigMap/kube-system/eci-profile", &cm)
	if cm.Annotations["helm.sh/resource-policy"] != "keep" {
		t.Errorf("eci-profile annotations %v, want helm.sh/resource-policy: keep", cm.Annotations)
	}
	for _, k := range []string{"vSwitchIds", "securityGroupId", "selectors"} {
		if v, ok := cm.Data[k]; !ok || v != "" {
			t.Errorf("eci-profile %s = %q (present %v): the default profile must override nothing", k, v, ok)
		}
	}

	var job batchv1.Job
	objs.get(t, "Job/kube-system/ack-virtual-node-drain", &job)
	if job.Annotations["helm.sh/hook"] != "pre-delete" {
		t.Errorf("drain Job hook %q, want pre-delete", job.Annotations["helm.sh/hook"])
	}
	jc := job.Spec.Template.Spec.Containers[0]
	if !reflect.DeepEqual(jc.Args, []string{"drain", "--pod-timeout=2m", "--group-timeout=1m"}) || jc.Image != c.Image || job.Spec.Template.Spec.ServiceAccountName != ControllerServiceAccount {
		t.Errorf("drain Job runs %v %v as %s; want the controller image with [drain] as the controller SA", jc.Image, jc.Args, job.Spec.Template.Spec.ServiceAccountName)
	}
	if job.Spec.ActiveDeadlineSeconds == nil || *job.Spec.ActiveDeadlineSeconds != 600 {
		t.Errorf("drain Job deadline %v, want 600 (bounded)", job.Spec.ActiveDeadlineSeconds)
	}
	jenv := containerEnv(jc)
	for name, e := range env {
		if !reflect.DeepEqual(jenv[name], e) {
			t.Errorf("drain Job env %s = %+v, controller has %+v", name, jenv[name], e)
		}
	}
	var pdb policyv1.PodDisruptionBudget
	objs.get(t, "PodDisruptionBudget/kube-system/ack-virtual-node-controller", &pdb)
	if !reflect.DeepEqual(pdb.Spec.Selector.MatchLabels, d.Spec.Selector.MatchLabels) {
		t.Errorf("PDB selects %v, controller pods are %v", pdb.Spec.Selector.MatchLabels, d.Spec.Selector.MatchLabels)
	}
	for _, want := range []string{"alibabacloud.com/eci=true", "kubectl -n kube-system edit deployment ack-virtual-node-controller", "virtual-kubelet",
		"ContainerInstanceAPI", "virtual-kubelet.io/cloud-unavailable", "--set apiServerUrl=https://"} {
		if !strings.Contains(r.Notes, want) {
			t.Errorf("NOTES.txt does not mention %q:\n%s", want, r.Notes)
		}
	}
	// The minimal RAM policy: exactly the actions the controller uses.
	if n := strings.Count(r.Notes, `"eci:`); n != len(eci.ControllerActions) {
		t.Errorf("NOTES.txt lists %d ECI actions, the controller uses %d", n, len(eci.ControllerActions))
	}
	for _, a := range eci.ControllerActions {
		if !strings.Contains(r.Notes, `"eci:`+a.Action+`"`) {
			t.Errorf("NOTES.txt's RAM policy lacks eci:%s", a.Action)
		}
	}
	var pol struct{ Statement []struct{ Action []string } }
	start, end := strings.Index(r.Notes, "{\n"), strings.Index(r.Notes, "\n  }\n")
	if start < 0 || end < start || json.Unmarshal([]byte(r.Notes[start:end+4]), &pol) != nil || len(pol.Statement) != 1 {
		t.Errorf("NOTES.txt's RAM policy is not valid JSON:\n%s", r.Notes)
	}
}

// everyValue sets every value of values.yaml to something other than its
// default; TestValuesDocumented checks that no value is missing here.
func everyValue() map[string]any {
	return map[string]any{
		"region":          "cn-shanghai",
		"vSwitches":       []any{"vsw-one", "vsw-two"},
		"securityGroup":   "sg-custom",
		"kubeProxy":       false,
		"kubeProxyImage":  "reg.local/kube-proxy:v1.30.1-aliyun.1",
		"apiServerUrl":    "https://192.168.0.10:6443",
		"clusterId":       "c-123",
		"eciEndpoint":     "eci-vpc.cn-shanghai.aliyuncs.com",
		"resourceGroupId": "rg-everyvalue",
		"tags":            map[string]any{"team": "web", "cost-center": "42"},
		"imageCache":      map[string]any{"controller": false},
		"credentials": map[string]any{
			"mode": "secret", "secretName": "my-ak", "create": true, "accessKeyId": "LTAIid", "accessKeySecret": "s3cr3t",
			"rrsa":    map[string]any{"roleArn": "acs:ram::1:role/x", "oidcProviderArn": "acs:ram::1:oidc-provider/y", "audience": "aud"},
			"ramRole": map[string]any{"roleName": "role-x"},
		},
		"image": map[string]any{"repository": "reg.local/vn/", "tag": "9.9.9", "pullPolicy": "Always", "pullSecrets": []any{"regcred"}},
		"controller": map[string]any{
			"nodeLabels": map[string]any{"pool": "eci"}, "nodeTaints": []any{map[string]any{"key": "dedicated", "value": "batch", "effect": "NoSchedule"}},
			"defaultTaint": false,
			"nodeName":     "vnode-a", "nodeCount": 3, "kubeAPIQPS": 50, "kubeAPIBurst": 80, "podCapacity": 500, "cpuCapacity": "100", "memoryCapacity": "1Ti",
			"statusInterval": "5s", "resyncInterval": "2m", "kubeletPort": 11250, "metricsPort": 11255, "replicas": 2,
			"tlsBootstrap": map[string]any{"enabled": true, "kubeconfigSecret": "vnode-bootstrap"},
			"extraEnv":     []any{map[string]any{"name": "SA_TOKEN_REFRESH_FRACTION", "value": "0.5"}},
			"resources":    map[string]any{"requests": map[string]any{"cpu": "1", "memory": "1Gi"}, "limits": map[string]any{"memory": "2Gi"}},
			"nodeSelector": map[string]any{"pool": "system"}, "tolerations": []any{map[string]any{"key": "dedicated", "operator": "Exists"}},
			"affinity": map[string]any{"nodeAffinity": map[string]any{"requiredDuringSchedulingIgnoredDuringExecution": map[string]any{
				"nodeSelectorTerms": []any{map[string]any{"matchExpressions": []any{map[string]any{"key": "zone", "operator": "In", "values": []any{"a"}}}}}}}},
			"priorityClassName": "system-cluster-critical", "podAnnotations": map[string]any{"prometheus.io/scrape": "true"},
			"podDisruptionBudget": map[string]any{"enabled": true, "maxUnavailable": 0},
			// The StatefulSet form's values are rendered by TestRenderStatefulSet.
			"kind": "Deployment", "statefulSet": map[string]any{"name": "vn-sts", "legacyNodes": []any{"vnode-old"}, "scaleDownTimeoutSeconds": 60},
		},
		"webhook": map[string]any{
			"enabled": true, "replicas": 3, "name": "vn-webhook", "certSecretName": "vn-webhook-cert", "timeoutSeconds": 10,
			"port": 10443, "metricsPort": 18080, "extraEnv": []any{map[string]any{"name": "WEBHOOK_RESYNC_INTERVAL", "value": "30s"}},
			"resources":    map[string]any{"requests": map[string]any{"cpu": "200m", "memory": "100Mi"}, "limits": map[string]any{"memory": "300Mi"}},
			"nodeSelector": map[string]any{"pool": "web"}, "tolerations": []any{map[string]any{"key": "web", "operator": "Exists"}},
			"affinity":            map[string]any{"podAntiAffinity": map[string]any{}},
			"podDisruptionBudget": map[string]any{"enabled": true, "maxUnavailable": 2},
		},
		"approver": map[string]any{
			"enabled": true, "organization": "system:vnodes-x", "cnPrefix": "vn:", "metricsPort": 18081,
			"resources": map[string]any{"requests": map[string]any{"cpu": "30m", "memory": "40Mi"}, "limits": map[string]any{"memory": "64Mi"}},
		},
		"eciProfile": map[string]any{"create": true, "data": map[string]any{
			"vSwitchIds": "vsw-p", "securityGroupId": "sg-p", "vpcId": "vpc-p", "selectors": "[]"}},
		"networkPolicy": map[string]any{"enabled": true,
			"kubeletApi": map[string]any{"cidrs": []any{"192.168.0.0/16", "fd00::/8"}, "namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": "kube-system"}}},
			"metrics": map[string]any{"cidrs": []any{"10.10.0.0/24"}, "namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": "monitoring"}},
				"podSelector": map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/name": "prometheus"}}},
		},
		"monitoring":      everyMonitoringValue(),
		"drain":           map[string]any{"enabled": true, "timeoutSeconds": 120, "podTimeout": "30s", "groupTimeout": "20s"},
		"securityContext": map[string]any{"runAsNonRoot": true, "runAsUser": 1000, "allowPrivilegeEscalation": false},
	}
}

func TestRenderEveryValue(t *testing.T) {
	objs, _ := render(t, everyValue())
	var d appsv1.Deployment
	objs.get(t, "Deployment/kube-system/ack-virtual-node-controller", &d)
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	env := containerEnv(c)
	for name, want := range map[string]string{
		"ECI_REGION": "cn-shanghai", "ECI_VSWITCH": "vsw-one,vsw-two", "ECI_SECURITY_GROUP": "sg-custom", "ECI_KUBE_PROXY": "false",
		"ECI_KUBE_PROXY_IMAGE": "reg.local/kube-proxy:v1.30.1-aliyun.1", "KUBERNETES_APISERVER_URL": "https://192.168.0.10:6443",
		"CLUSTER_ID": "c-123", "ECI_ENDPOINT": "eci-vpc.cn-shanghai.aliyuncs.com", "VIRTUAL_NODE_NAME": "vnode-a",
		"VIRTUAL_NODE_COUNT": "3", "KUBE_API_QPS": "50", "KUBE_API_BURST": "80",
		"ECI_POD_CAPACITY": "500", "ECI_CPU_CAPACITY": "100", "ECI_MEMORY_CAPACITY": "1Ti", "ECI_STATUS_INTERVAL": "5s",
		"ECI_RESYNC_INTERVAL": "2m", "KUBELET_PORT": "11250", "METRICS_ADDR": ":11255", "SA_TOKEN_REFRESH_FRACTION": "0.5",
		"TLS_BOOTSTRAP_ENABLED": "true", "KUBECONFIG": "/etc/ack-virtual-node/bootstrap/kubeconfig", "VNODE_CERT_DIR": "/var/lib/ack-virtual-node/pki",
		"ECI_RESOURCE_GROUP_ID": "rg-everyvalue", "ECI_TAGS": "cost-center:42,team:web", "VIRTUAL_NODE_LABELS": "pool=eci",
		"VIRTUAL_NODE_TAINTS": "dedicated=batch:NoSchedule,virtual-kubelet.io/provider-", "IMAGE_CACHE_CONTROLLER": "false",
	} {
		if env[name].Value != want {
			t.Errorf("env %s = %q, want %q", name, env[name].Value, want)
		}
	}
	if ref := env["ALIBABA_CLOUD_ACCESS_KEY_ID"].ValueFrom; ref == nil || ref.SecretKeyRef.Name != "my-ak" {
		t.Errorf("AccessKey id env %+v, want from secret my-ak", env["ALIBABA_CLOUD_ACCESS_KEY_ID"])
	}
	loadFromEnv(t, c.Env, nil, nil)
	if _, err := config.Load(); err != nil {
		t.Errorf("controller config from the rendered env: %v", err)
	}
	checks := map[string]bool{
		"image":             c.Image == "reg.local/vn/virtual-node:9.9.9",
		"pullPolicy":        c.ImagePullPolicy == corev1.PullAlways,
		"pullSecrets":       len(pod.ImagePullSecrets) == 1 && pod.ImagePullSecrets[0].Name == "regcred",
		"replicas":          *d.Spec.Replicas == 2,
		"resources":         c.Resources.Requests.Cpu().String() == "1" && c.Resources.Limits.Memory().String() == "2Gi",
		"nodeSelector":      pod.NodeSelector["pool"] == "system",
		"tolerations":       len(pod.Tolerations) == 1 && pod.Tolerations[0].Key == "dedicated",
		"affinity":          pod.Affinity != nil && pod.Affinity.NodeAffinity != nil,
		"priorityClassName": pod.PriorityClassName == "system-cluster-critical",
		"podAnnotations":    d.Spec.Template.Annotations["prometheus.io/scrape"] == "true",
		"ports":             c.Ports[0].ContainerPort == 11250 && c.Ports[1].ContainerPort == 11255,
		"securityContext":   c.SecurityContext.RunAsUser != nil && *c.SecurityContext.RunAsUser == 1000,
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		vols[v.Name] = v
	}
	checks["controller.tlsBootstrap"] = mounts["bootstrap-kubeconfig"] == "/etc/ack-virtual-node/bootstrap" && mounts["pki"] == "/var/lib/ack-virtual-node/pki" &&
		vols["bootstrap-kubeconfig"].Secret != nil && vols["bootstrap-kubeconfig"].Secret.SecretName == "vnode-bootstrap" && vols["pki"].EmptyDir != nil
	var sec corev1.Secret
	objs.get(t, "Secret/kube-system/my-ak", &sec)
	checks["credentials.create"] = sec.StringData["access-key-id"] == "LTAIid" && sec.StringData["access-key-secret"] == "s3cr3t"

	var wd appsv1.Deployment
	objs.get(t, "Deployment/kube-system/ack-virtual-node-webhook", &wd)
	wc := wd.Spec.Template.Spec.Containers[0]
	wenv := containerEnv(wc)
	var wcfg webhook.Config
	loadFromEnv(t, wc.Env, nil, &wcfg)
	if err := wcfg.Validate(); err != nil {
		t.Errorf("webhook config: %v", err)
	}
	checks["webhook.replicas"] = *wd.Spec.Replicas == 3
	checks["webhook.name"] = wcfg.ServiceName == "vn-webhook" && wcfg.ConfigurationName == "vn-webhook"
	checks["webhook.certSecretName"] = wcfg.CertSecretName == "vn-webhook-cert"
	checks["webhook.timeoutSeconds"] = wcfg.TimeoutSeconds == 10
	checks["webhook.port"] = wcfg.ListenAddr == ":10443"
	checks["webhook.metricsPort"] = wcfg.MetricsAddr == ":18080"
	checks["webhook.extraEnv"] = wenv["WEBHOOK_RESYNC_INTERVAL"].Value == "30s"
	checks["webhook.image"] = wc.Image == "reg.local/vn/vnode-webhook:9.9.9"
	checks["webhook.scheduling"] = wd.Spec.Template.Spec.NodeSelector["pool"] == "web" && len(wd.Spec.Template.Spec.Tolerations) == 1 && wd.Spec.Template.Spec.Affinity != nil
	checks["webhook.resources"] = wc.Resources.Requests.Cpu().String() == "200m"
	var mwc admissionregistrationv1.MutatingWebhookConfiguration
	objs.get(t, "MutatingWebhookConfiguration/vn-webhook", &mwc)
	var wrole rbacv1.ClusterRole
	objs.get(t, "ClusterRole/ack-virtual-node:webhook", &wrole)
	checks["webhook RBAC names its configuration"] = strings.Contains(objs["ClusterRole/ack-virtual-node:webhook"], "resourceNames: [vn-webhook]")
	_, certRendered := objs["Secret/kube-system/vn-webhook-cert"]
	checks["webhook.certSecretName Secret"] = certRendered
	checks["webhook RBAC names its cert Secret"] = strings.Contains(objs["Role/kube-system/ack-virtual-node:webhook"], "resourceNames: [vn-webhook-cert]")

	var ad appsv1.Deployment
	objs.get(t, "Deployment/kube-system/ack-virtual-node-approver", &ad)
	ac := ad.Spec.Template.Spec.Containers[0]
	var acfg approver.Config
	loadFromEnv(t, ac.Env, nil, &acfg)
	if err := acfg.Validate(); err != nil {
		t.Errorf("approver config: %v", err)
	}
	checks["approver"] = acfg.Organization == "system:vnodes-x" && acfg.CNPrefix == "vn:" && acfg.MetricsAddr == ":18081" &&
		ac.Image == "reg.local/vn/vnode-approver:9.9.9" && ac.Resources.Requests.Cpu().String() == "30m"

	var cm corev1.ConfigMap
	objs.get(t, "ConfigMap/kube-system/eci-profile", &cm)
	checks["eciProfile.data"] = cm.Data["vSwitchIds"] == "vsw-p" && cm.Data["securityGroupId"] == "sg-p" && cm.Data["vpcId"] == "vpc-p"
	var job batchv1.Job
	objs.get(t, "Job/kube-system/ack-virtual-node-drain", &job)
	// The drain Job shares the controller's env, so it needs the same
	// files: every volume the controller mounts is mounted there too.
	jmounts := map[string]string{}
	for _, m := range job.Spec.Template.Spec.Containers[0].VolumeMounts {
		jmounts[m.Name] = m.MountPath
	}
	checks["drain Job mounts what the controller mounts"] = reflect.DeepEqual(jmounts, mounts)
	checks["drain.timeoutSeconds"] = *job.Spec.ActiveDeadlineSeconds == 120
	checks["drain.podTimeout/groupTimeout"] = reflect.DeepEqual(job.Spec.Template.Spec.Containers[0].Args, []string{"drain", "--pod-timeout=30s", "--group-timeout=20s"})
	var pdb, wpdb policyv1.PodDisruptionBudget
	objs.get(t, "PodDisruptionBudget/kube-system/ack-virtual-node-controller", &pdb)
	objs.get(t, "PodDisruptionBudget/kube-system/ack-virtual-node-webhook", &wpdb)
	checks["podDisruptionBudget"] = pdb.Spec.MaxUnavailable.IntValue() == 0 && wpdb.Spec.MaxUnavailable.IntValue() == 2
	for what, ok := range checks {
		if !ok {
			t.Errorf("%s not rendered as set", what)
		}
	}
}

// TestRenderSwitches covers the values that change which objects exist.
func TestRenderSwitches(t *testing.T) {
	cases := []struct {
		name    string
		values  map[string]any
		present []string
		absent  []string
		env     map[string]string // controller env name → value ("" = must be absent)
	}{
		{
			name:   "rrsa replaces the AccessKey with a projected OIDC token",
			values: with(minimal(), "credentials", map[string]any{"mode": "rrsa", "rrsa": map[string]any{"roleArn": "acs:ram::1:role/vn", "oidcProviderArn": "acs:ram::1:oidc-provider/c"}}),
			env: map[string]string{"ALIBABA_CLOUD_ROLE_ARN": "acs:ram::1:role/vn", "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": "acs:ram::1:oidc-provider/c",
				"ALIBABA_CLOUD_OIDC_TOKEN_FILE": "/var/run/secrets/ack.alibabacloud.com/rrsa-tokens/token", "ALIBABA_CLOUD_ACCESS_KEY_ID": ""},
		},
		{
			name:   "ramRole uses the instance role",
			values: with(minimal(), "credentials", map[string]any{"mode": "ramRole", "ramRole": map[string]any{"roleName": "VNodeRole"}}),
			env:    map[string]string{"ALIBABA_CLOUD_ECS_METADATA": "VNodeRole", "ALIBABA_CLOUD_ACCESS_KEY_ID": ""},
		},
		{
			name:    "webhook, drain, profile and PDBs off",
			values:  with(minimal(), "webhook", map[string]any{"enabled": false}, "drain", map[string]any{"enabled": false}, "eciProfile", map[string]any{"create": false}, "controller", map[string]any{"podDisruptionBudget": map[string]any{"enabled": false}}),
			present: []string{"Deployment/kube-system/ack-virtual-node-controller"},
			absent: []string{"Deployment/kube-system/ack-virtual-node-webhook", "MutatingWebhookConfiguration/virtual-node-affinity-admission-controller",
				"Job/kube-system/ack-virtual-node-drain", "ConfigMap/kube-system/eci-profile", "PodDisruptionBudget/kube-system/ack-virtual-node-controller",
				"PodDisruptionBudget/kube-system/ack-virtual-node-webhook", "ClusterRole/ack-virtual-node:webhook"},
		},
		{
			name:    "approver on",
			values:  with(minimal(), "approver", map[string]any{"enabled": true}),
			present: []string{"Deployment/kube-system/ack-virtual-node-approver", "ClusterRole/ack-virtual-node:vnode-approver", "ServiceAccount/kube-system/ack-virtual-node-approver"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			objs, _ := render(t, tc.values)
			for _, k := range tc.present {
				if _, ok := objs[k]; !ok {
					t.Errorf("%s not rendered", k)
				}
			}
			for _, k := range tc.absent {
				if _, ok := objs[k]; ok {
					t.Errorf("%s rendered", k)
				}
			}
			if len(tc.env) == 0 {
				return
			}
			var d appsv1.Deployment
			objs.get(t, "Deployment/kube-system/ack-virtual-node-controller", &d)
			env := containerEnv(d.Spec.Template.Spec.Containers[0])
			for name, want := range tc.env {
				got, ok := env[name]
				if want == "" {
					if ok {
						t.Errorf("env %s is set (%+v)", name, got)
					}
					continue
				}
				if got.Value != want {
					t.Errorf("env %s = %q, want %q", name, got.Value, want)
				}
			}
		})
	}
}

// TestRenderNetworkPolicy: networkPolicy.enabled admits to the controller
// pods only the kubelet API ports (every node's, from the configured CIDRs
// and namespaces, or from anywhere) and the metrics port (from the
// configured scrapers only), and the ports are the containers' own.
func TestRenderNetworkPolicy(t *testing.T) {
	const key = "NetworkPolicy/kube-system/ack-virtual-node-controller"
	if objs, _ := render(t, minimal()); objs[key] != "" {
		t.Errorf("%s rendered by default:\n%s", key, objs[key])
	}
	var notes string
	policy := func(t *testing.T, values map[string]any) (networkingv1.NetworkPolicy, appsv1.Deployment) {
		t.Helper()
		objs, r := render(t, values)
		notes = r.Notes
		var np networkingv1.NetworkPolicy
		objs.get(t, key, &np)
		var d appsv1.Deployment
		objs.get(t, "Deployment/kube-system/ack-virtual-node-controller", &d)
		if !reflect.DeepEqual(np.Spec.PodSelector.MatchLabels, d.Spec.Selector.MatchLabels) || len(np.Spec.PodSelector.MatchExpressions) != 0 {
			t.Errorf("NetworkPolicy selects %+v, the controller pods are %v", np.Spec.PodSelector, d.Spec.Selector.MatchLabels)
		}
		if !reflect.DeepEqual(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) || len(np.Spec.Egress) != 0 {
			t.Errorf("policy types %v egress %v, want Ingress only", np.Spec.PolicyTypes, np.Spec.Egress)
		}
		return np, d
	}
	containerPort := func(d appsv1.Deployment, name string) int32 {
		for _, p := range d.Spec.Template.Spec.Containers[0].Ports {
			if p.Name == name {
				return p.ContainerPort
			}
		}
		return -1
	}
	portOf := func(r networkingv1.NetworkPolicyIngressRule) (int32, int32) {
		if len(r.Ports) != 1 || r.Ports[0].Port == nil || r.Ports[0].Protocol == nil || *r.Ports[0].Protocol != corev1.ProtocolTCP {
			return -1, -1
		}
		end := r.Ports[0].Port.IntVal
		if r.Ports[0].EndPort != nil {
			end = *r.Ports[0].EndPort
		}
		return r.Ports[0].Port.IntVal, end
	}

	t.Run("enabled alone: kubelet API from anywhere, metrics from the node only", func(t *testing.T) {
		np, d := policy(t, with(minimal(), "networkPolicy", map[string]any{"enabled": true}))
		if len(np.Spec.Ingress) != 1 {
			t.Fatalf("ingress rules %+v, want the kubelet API's only", np.Spec.Ingress)
		}
		r := np.Spec.Ingress[0]
		if first, last := portOf(r); first != containerPort(d, "kubelet-api") || last != first || len(r.From) != 0 {
			t.Errorf("kubelet API rule %+v, want TCP %d from any source", r, containerPort(d, "kubelet-api"))
		}
		// Nobody scrapes through it yet: the notes say what to set.
		if !strings.Contains(notes, "networkPolicy.metrics.namespaceSelector") || !strings.Contains(notes, "port 10250) from any source") {
			t.Errorf("NOTES.txt does not tell how to admit Prometheus and where the kubelet API is open from:\n%s", notes)
		}
	})

	t.Run("every value: CIDRs and selectors, every node's port", func(t *testing.T) {
		np, d := policy(t, everyValue())
		if len(np.Spec.Ingress) != 2 {
			t.Fatalf("ingress rules %+v, want the kubelet API's and the metrics port's", np.Spec.Ingress)
		}
		kubelet, metrics := np.Spec.Ingress[0], np.Spec.Ingress[1]
		// nodeCount 3: nodes listen on kubeletPort, +1, +2.
		if first, last := portOf(kubelet); first != containerPort(d, "kubelet-api") || first != 11250 || last != 11252 {
			t.Errorf("kubelet API ports %d-%d, want 11250-11252 (controller.kubeletPort .. +nodeCount-1)", first, last)
		}
		wantKubelet := []networkingv1.NetworkPolicyPeer{
			{IPBlock: &networkingv1.IPBlock{CIDR: "192.168.0.0/16"}}, {IPBlock: &networkingv1.IPBlock{CIDR: "fd00::/8"}},
			{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "kube-system"}}},
		}
		if !reflect.DeepEqual(kubelet.From, wantKubelet) {
			t.Errorf("kubelet API sources %+v, want %+v", kubelet.From, wantKubelet)
		}
		if first, last := portOf(metrics); first != containerPort(d, "metrics") || first != 11255 || last != first {
			t.Errorf("metrics port %d-%d, want 11255 only", first, last)
		}
		// Namespace and pod selector in one peer: those pods in those
		// namespaces, not every pod of them or any pod named so.
		wantMetrics := []networkingv1.NetworkPolicyPeer{
			{IPBlock: &networkingv1.IPBlock{CIDR: "10.10.0.0/24"}},
			{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "monitoring"}},
				PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "prometheus"}}},
		}
		if !reflect.DeepEqual(metrics.From, wantMetrics) {
			t.Errorf("metrics sources %+v, want %+v", metrics.From, wantMetrics)
		}
		if strings.Contains(notes, "networkPolicy.metrics.namespaceSelector") || !strings.Contains(notes, "port 11250-11252) from networkPolicy.kubeletApi only") {
			t.Errorf("NOTES.txt with scrapers and API server CIDRs set:\n%s", notes)
		}
	})

	t.Run("metrics from a pod selector alone stays in the release namespace", func(t *testing.T) {
		np, _ := policy(t, with(minimal(), "networkPolicy", map[string]any{"enabled": true,
			"metrics": map[string]any{"podSelector": map[string]any{"matchLabels": map[string]any{"app": "prom"}}}}))
		if len(np.Spec.Ingress) != 2 || len(np.Spec.Ingress[1].From) != 1 || np.Spec.Ingress[1].From[0].NamespaceSelector != nil ||
			np.Spec.Ingress[1].From[0].PodSelector == nil || np.Spec.Ingress[1].From[0].PodSelector.MatchLabels["app"] != "prom" {
			t.Errorf("ingress %+v, want metrics from pods app=prom of the release namespace only", np.Spec.Ingress)
		}
	})
}

// TestRenderRejects: the schema and the required checks stop a bad install
// with a message that names the value.
func TestRenderRejects(t *testing.T) {
	cases := []struct {
		name   string
		values map[string]any
		want   []string
	}{
		{"vSwitch not an id", with(minimal(), "vSwitches", []any{"subnet-1"}), []string{"/vSwitches/0", "'subnet-1' does not match pattern"}},
		{"more than 10 vSwitches", with(minimal(), "vSwitches", []any{"vsw-1", "vsw-2", "vsw-3", "vsw-4", "vsw-5", "vsw-6", "vsw-7", "vsw-8", "vsw-9", "vsw-10", "vsw-11"}), []string{"/vSwitches", "maxItems"}},
		{"kubeProxy not a boolean", with(minimal(), "kubeProxy", "perhaps"), []string{"/kubeProxy", "want boolean"}},
		{"security group not an id", with(minimal(), "securityGroup", "default"), []string{"/securityGroup", "does not match pattern"}},
		{"unknown credentials mode", with(minimal(), "credentials", map[string]any{"mode": "password"}), []string{"/credentials/mode", "value must be one of"}},
		{"misspelt value", with(minimal(), "vSwitch", []any{"vsw-a"}), []string{"additional properties 'vSwitch' not allowed"}},
		{"webhook timeout above 30s", with(minimal(), "webhook", map[string]any{"timeoutSeconds": 31}), []string{"/webhook/timeoutSeconds", "maximum"}},
		{"approver for a privileged group", with(minimal(), "approver", map[string]any{"organization": "system:masters"}), []string{"/approver/organization"}},
		{"vSwitches missing", with(minimal(), "vSwitches", []any{}), []string{"vSwitches is required", "vsw-aaa,vsw-bbb", "ECI_VSWITCH"}},
		{"security group missing", with(minimal(), "securityGroup", ""), []string{"securityGroup is required", "sg-xxx", "ECI_SECURITY_GROUP"}},
		{"region missing", with(minimal(), "region", ""), []string{"region is required", "cn-hangzhou", "ECI_REGION"}},
		{"rrsa without a role", with(minimal(), "credentials", map[string]any{"mode": "rrsa"}), []string{"credentials.rrsa.roleArn is required"}},
		{"TLS bootstrap without its kubeconfig", with(minimal(), "controller", map[string]any{"tlsBootstrap": map[string]any{"enabled": true}}), []string{"controller.tlsBootstrap.kubeconfigSecret is required"}},
		{"network policy CIDR without a prefix", with(minimal(), "networkPolicy", map[string]any{"enabled": true, "kubeletApi": map[string]any{"cidrs": []any{"10.0.0.1"}}}), []string{"/networkPolicy/kubeletApi/cidrs/0", "does not match pattern"}},
		{"network policy selector misspelt", with(minimal(), "networkPolicy", map[string]any{"metrics": map[string]any{"namespaceSelector": map[string]any{"matchLabel": map[string]any{"a": "b"}}}}), []string{"/networkPolicy/metrics/namespaceSelector", "additional properties 'matchLabel' not allowed"}},
		{"created secret without a key", with(minimal(), "credentials", map[string]any{"create": true}), []string{"credentials.accessKeyId is required"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Render(tc.values, RenderOptions{})
			if err == nil {
				t.Fatal("rendered without error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestRenderRBAC: no wildcard, no built-in admin role, no escalation verbs,
// and the approver's rules are the ones pkg/approver declares.
func TestRenderRBAC(t *testing.T) {
	objs, _ := render(t, with(minimal(), "approver", map[string]any{"enabled": true}))
	n := 0
	for key, doc := range objs {
		kind := strings.SplitN(key, "/", 2)[0]
		switch kind {
		case "ClusterRole", "Role":
			n++
			var r rbacv1.ClusterRole
			if err := yaml.Unmarshal([]byte(doc), &r); err != nil {
				t.Fatal(err)
			}
			for _, rule := range r.Rules {
				for _, list := range [][]string{rule.APIGroups, rule.Resources, rule.Verbs, rule.NonResourceURLs} {
					for _, v := range list {
						if strings.Contains(v, "*") {
							t.Errorf("%s has a wildcard rule %+v", key, rule)
						}
					}
				}
				for _, v := range rule.Verbs {
					if v == "escalate" || v == "bind" || v == "impersonate" {
						t.Errorf("%s grants %s", key, v)
					}
				}
			}
			if r.AggregationRule != nil {
				t.Errorf("%s aggregates other roles", key)
			}
		case "ClusterRoleBinding", "RoleBinding":
			var b rbacv1.ClusterRoleBinding
			if err := yaml.Unmarshal([]byte(doc), &b); err != nil {
				t.Fatal(err)
			}
			if key == "ClusterRoleBinding/"+nodeaccess.KubeProxyBindingName {
				// The one built-in role the chart binds: system:node-proxier,
				// to the kube-proxy of ECI pods and nobody else.
				want := nodeaccess.KubeProxySubject("kube-system")
				if b.RoleRef.Name != nodeaccess.RoleNodeProxier || len(b.Subjects) != 1 || b.Subjects[0].Kind != want.Kind ||
					b.Subjects[0].Name != want.Name || b.Subjects[0].Namespace != want.Namespace {
					t.Errorf("%s binds %s to %+v, want %s to %+v only", key, b.RoleRef.Name, b.Subjects, nodeaccess.RoleNodeProxier, want)
				}
				continue
			}
			if strings.HasPrefix(b.RoleRef.Name, "system:") || b.RoleRef.Name == "cluster-admin" || b.RoleRef.Name == "admin" || b.RoleRef.Name == "edit" {
				t.Errorf("%s binds the built-in role %s", key, b.RoleRef.Name)
			}
			if !strings.HasPrefix(b.RoleRef.Name, "ack-virtual-node:") {
				t.Errorf("%s binds %s, not a role of this chart", key, b.RoleRef.Name)
			}
		}
	}
	if n < 5 {
		t.Fatalf("only %d roles rendered", n)
	}
	var ar rbacv1.ClusterRole
	objs.get(t, "ClusterRole/"+approver.ClusterRoleName, &ar)
	if !reflect.DeepEqual(ar.Rules, approver.ClusterRole().Rules) {
		t.Errorf("chart approver rules\n%+v\ndiffer from approver.ClusterRole()\n%+v", ar.Rules, approver.ClusterRole().Rules)
	}
}

// TestChecksumRollsOnConfigChange: the pod-template checksum follows the
// controller's configuration, so `helm upgrade` restarts it exactly when
// its environment changes.
func TestChecksumRollsOnConfigChange(t *testing.T) {
	sum := func(values map[string]any) string {
		objs, _ := render(t, values)
		var d appsv1.Deployment
		objs.get(t, "Deployment/kube-system/ack-virtual-node-controller", &d)
		return d.Spec.Template.Annotations["checksum/config"]
	}
	base := sum(minimal())
	cases := []struct {
		name   string
		values map[string]any
		same   bool
	}{
		{"same values", minimal(), true},
		{"webhook-only change", with(minimal(), "webhook", map[string]any{"replicas": 2}), true},
		{"vSwitch change", with(minimal(), "vSwitches", []any{"vsw-bbb"}), false},
		{"security group change", with(minimal(), "securityGroup", "sg-bbb"), false},
		{"kube-proxy change", with(minimal(), "kubeProxy", false), false},
		{"AccessKey change", with(minimal(), "credentials", map[string]any{"create": true, "accessKeyId": "a", "accessKeySecret": "b"}), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := sum(tc.values); (got == base) != tc.same {
				t.Errorf("checksum %s vs %s: same=%v, want %v", got, base, got == base, tc.same)
			}
		})
	}
}

// TestValuesDocumented: every value in values.yaml has a `# --` comment
// and is exercised by everyValue.
func TestValuesDocumented(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "..", "..", "charts", "ack-virtual-node", "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type frame struct {
		indent int
		key    string
	}
	var stack []frame
	var leaves []string
	documented := map[string]bool{}
	comment := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		indent := len(line) - len(strings.TrimLeft(line, " "))
		switch {
		case strings.HasPrefix(trimmed, "# --"):
			comment = true
			continue
		case strings.HasPrefix(trimmed, "#"), trimmed == "":
			continue
		case indent > 0 && len(stack) > 0 && stack[len(stack)-1].indent >= 0 && !strings.Contains(trimmed, ":"):
			continue // a continuation of a block value
		}
		if strings.HasPrefix(trimmed, "- ") {
			continue
		}
		key, rest, _ := strings.Cut(trimmed, ":")
		for len(stack) > 0 && stack[len(stack)-1].indent >= indent {
			stack = stack[:len(stack)-1]
		}
		parent := ""
		if len(stack) > 0 {
			parent = stack[len(stack)-1].key + "."
		}
		path := parent + key
		// A value documented with `# --` is a leaf for this check even if
		// it is a map (resources, securityContext), and its children are
		// its example content.
		if len(stack) > 0 && documented[stack[len(stack)-1].key] {
			continue
		}
		stack = append(stack, frame{indent, path})
		if comment {
			documented[path] = true
			leaves = append(leaves, path)
		} else if strings.TrimSpace(rest) != "" {
			t.Errorf("value %s has no `# --` comment", path)
		}
		comment = false
	}
	if len(leaves) < 40 {
		t.Fatalf("found only %d documented values: the parser is off", len(leaves))
	}
	all := everyValue()
	for _, p := range leaves {
		var cur any = all
		for _, k := range strings.Split(p, ".") {
			m, ok := cur.(map[string]any)
			if !ok {
				cur = nil
				break
			}
			cur = m[k]
		}
		if cur == nil {
			t.Errorf("value %s is not set by everyValue (TestRenderEveryValue would not cover it)", p)
		}
	}
}
