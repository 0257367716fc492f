package webhook

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/profile"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
)

func testConfig() *Config {
	return &Config{
		ListenAddr: ":9443", Namespace: "kube-system", ServiceName: "vnode-webhook", ServicePort: 443,
		CertSecretName: "ack-virtual-node-webhook-cert", ConfigurationName: "vnode-affinity", TimeoutSeconds: 3,
		ProfileNamespace: "kube-system", ProfileName: "eci-profile",
		CAValidity: 87600 * time.Hour, CertValidity: 8760 * time.Hour, RenewBefore: 720 * time.Hour, ResyncInterval: time.Minute,
	}
}

// calls reports which entries the apiserver would call for a pod with
// podLabels in a namespace with nsLabels.
func calls(t *testing.T, hooks []admissionregistrationv1.MutatingWebhook, nsLabels, podLabels map[string]string) []string {
	t.Helper()
	var out []string
	for _, h := range hooks {
		ns, err := metav1.LabelSelectorAsSelector(h.NamespaceSelector)
		if err != nil {
			t.Fatal(err)
		}
		obj, err := metav1.LabelSelectorAsSelector(h.ObjectSelector)
		if err != nil {
			t.Fatal(err)
		}
		if ns.Matches(labels.Set(nsLabels)) && obj.Matches(labels.Set(podLabels)) {
			out = append(out, strings.SplitN(h.Name, ".", 2)[0])
		}
	}
	return out
}

func TestDesiredWebhooks(t *testing.T) {
	prof, err := profile.Parse(map[string]string{"selectors": `[
		{"name":"Big Jobs!","objectSelector":{"matchLabels":{"size":"big"}}},
		{"name":"team","namespaceSelector":{"matchLabels":{"team":"a"}},"objectSelector":{"matchLabels":{"app":"x"}}}]`})
	if err != nil {
		t.Fatal(err)
	}
	spec := SpecFor(testConfig(), []byte("ca"), prof)
	hooks := DesiredWebhooks(spec)
	for _, h := range hooks {
		if errs := validation.IsDNS1123Subdomain(h.Name); len(errs) > 0 || strings.Count(h.Name, ".") < 2 {
			t.Errorf("entry name %q is not fully qualified: %v", h.Name, errs)
		}
		if *h.FailurePolicy != admissionregistrationv1.Ignore || *h.TimeoutSeconds != 3 || *h.SideEffects != admissionregistrationv1.SideEffectClassNone {
			t.Errorf("%s: failurePolicy %v timeout %v sideEffects %v", h.Name, *h.FailurePolicy, *h.TimeoutSeconds, *h.SideEffects)
		}
		svc := h.ClientConfig.Service
		if svc == nil || svc.Name != "vnode-webhook" || svc.Namespace != "kube-system" || *svc.Path != DefaultPath || *svc.Port != 443 {
			t.Errorf("%s: clientConfig %+v", h.Name, h.ClientConfig)
		}
	}
	sys := map[string]string{"kubernetes.io/metadata.name": "kube-system", LabelECI: "true"}
	for _, tc := range []struct {
		name     string
		ns, pod  map[string]string
		wantCall []string
	}{
		{"unrelated pod never calls", map[string]string{"kubernetes.io/metadata.name": "default"}, map[string]string{"app": "web"}, nil},
		{"pod label", nil, map[string]string{LabelECI: "true"}, []string{"pod-label"}},
		{"legacy pod label", nil, map[string]string{"eci": "true"}, []string{"pod-legacy-label"}},
		{"namespace label", map[string]string{LabelECI: "true"}, nil, []string{"namespace-label"}},
		{"legacy namespace labels", map[string]string{"eci": "true", LabelInjectionLegacy: "enabled"}, nil,
			[]string{"namespace-legacy-label", "namespace-injection-label"}},
		{"opt-out in a labelled namespace", map[string]string{LabelECI: "true"}, map[string]string{LabelECI: "false"}, nil},
		{"kube-system never calls", sys, map[string]string{LabelECI: "true", "size": "big"}, nil},
		{"profile object selector", nil, map[string]string{"size": "big"}, []string{"selector-0-big-jobs"}},
		{"profile selectors are ANDed", map[string]string{"team": "a"}, map[string]string{"app": "y"}, nil},
		{"profile namespace and object selector", map[string]string{"team": "a"}, map[string]string{"app": "x"}, []string{"selector-1-team"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := calls(t, hooks, tc.ns, tc.pod)
			if strings.Join(got, ",") != strings.Join(tc.wantCall, ",") {
				t.Errorf("called entries %v, want %v", got, tc.wantCall)
			}
		})
	}

	cfg := testConfig()
	cfg.URL = "https://127.0.0.1:9443"
	u := SpecFor(cfg, []byte("ca"), nil)
	h := DesiredWebhooks(u)
	if len(h) != 5 || h[0].ClientConfig.URL == nil || *h[0].ClientConfig.URL != "https://127.0.0.1:9443/mutate-pods" || h[0].ClientConfig.Service != nil {
		t.Errorf("URL mode: %d entries, clientConfig %+v", len(h), h[0].ClientConfig)
	}
}

func TestEnsureConfiguration(t *testing.T) {
	ctx := context.Background()
	cp := controlPlane(t)
	admin := cp.Clientset()
	cfg := testConfig()
	// The configuration is cluster-scoped: a name of this test's own, and
	// removed at the end so it routes no pod of other tests.
	cfg.ConfigurationName = "test-ensure-configuration"
	t.Cleanup(func() {
		_ = admin.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, cfg.ConfigurationName, metav1.DeleteOptions{})
	})
	// EnsureConfiguration's client counts the writes it sends to the
	// apiserver: a no-op update would not change the stored object, so
	// only the requests show whether it wrote.
	var mu sync.Mutex
	n := 0
	kube := clientWith(t, cp, func(r *http.Request) {
		if strings.Contains(r.URL.Path, "/mutatingwebhookconfigurations") && r.Method != http.MethodGet {
			mu.Lock()
			n++
			mu.Unlock()
		}
	})
	writes := func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
	spec := SpecFor(cfg, []byte("ca-1"), nil)
	if err := EnsureConfiguration(ctx, kube, spec); err != nil {
		t.Fatal(err)
	}
	if writes() != 1 {
		t.Fatalf("writes after create = %d", writes())
	}
	// Unchanged: no write.
	if err := EnsureConfiguration(ctx, kube, spec); err != nil {
		t.Fatal(err)
	}
	if writes() != 1 {
		t.Errorf("EnsureConfiguration wrote an unchanged configuration")
	}
	// A new CA bundle and a selector are written.
	prof, _ := profile.Parse(map[string]string{"selectors": `[{"name":"a","objectSelector":{"matchLabels":{"x":"y"}}}]`})
	spec = SpecFor(cfg, []byte("ca-2"), prof)
	if err := EnsureConfiguration(ctx, kube, spec); err != nil {
		t.Fatal(err)
	}
	got, err := admin.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, cfg.ConfigurationName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Webhooks) != 6 || string(got.Webhooks[0].ClientConfig.CABundle) != "ca-2" || got.Labels[managedByLabel] != component {
		t.Errorf("updated configuration: %d entries, caBundle %q, labels %v", len(got.Webhooks), got.Webhooks[0].ClientConfig.CABundle, got.Labels)
	}
	// A manual edit is repaired. The apiserver defaults the removed
	// failurePolicy to Fail, so the repair must bring back Ignore.
	got.Webhooks[0].FailurePolicy = nil
	got.Webhooks = got.Webhooks[:2]
	edited, err := admin.AdmissionregistrationV1().MutatingWebhookConfigurations().Update(ctx, got, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(edited.Webhooks) != 2 || edited.Webhooks[0].FailurePolicy == nil || *edited.Webhooks[0].FailurePolicy != admissionregistrationv1.Fail {
		t.Fatalf("manual edit stored as %+v", edited.Webhooks)
	}
	if err := EnsureConfiguration(ctx, kube, spec); err != nil {
		t.Fatal(err)
	}
	got, _ = admin.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, cfg.ConfigurationName, metav1.GetOptions{})
	if len(got.Webhooks) != 6 || got.Webhooks[0].FailurePolicy == nil || *got.Webhooks[0].FailurePolicy != admissionregistrationv1.Ignore {
		t.Errorf("manual edit not repaired: %+v", got.Webhooks)
	}
	if err := EnsureConfiguration(ctx, kube, ConfigurationSpec{Name: "x"}); err == nil {
		t.Error("configuration without a CA bundle accepted")
	}
}

func TestSelectorEntryName(t *testing.T) {
	for in, want := range map[string]string{
		"":                      "selector-3.profile" + entrySuffix,
		"Big Jobs!":             "selector-3-big-jobs.profile" + entrySuffix,
		strings.Repeat("a", 80): "selector-3-" + strings.Repeat("a", 40) + ".profile" + entrySuffix,
	} {
		if got := selectorEntryName(3, in); got != want {
			t.Errorf("selectorEntryName(%q) = %q, want %q", in, got, want)
		}
	}
}
