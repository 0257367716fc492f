package webhook

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/profile"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

// entrySuffix makes webhook entry names fully qualified, as the apiserver
// requires.
const entrySuffix = ".vnode-affinity.alibabacloud.com"

// ConfigurationSpec describes the MutatingWebhookConfiguration the webhook
// owns.
type ConfigurationSpec struct {
	// Name of the MutatingWebhookConfiguration.
	Name string
	// Service is the in-cluster clientConfig; used when URL is empty.
	Service *admissionregistrationv1.ServiceReference
	// URL is the clientConfig for out-of-cluster runs and tests, e.g.
	// https://127.0.0.1:9443/mutate-pods.
	URL string
	// CABundle is the PEM bundle that verifies the serving certificate.
	CABundle []byte
	// TimeoutSeconds is the apiserver's wait before it gives up (and,
	// with failurePolicy Ignore, admits the pod unchanged).
	TimeoutSeconds int32
	// Selectors are the eci-profile selectors; each becomes an entry so the
	// pods they match reach the webhook.
	Selectors []profile.Selector
}

// SpecFor returns the ConfigurationSpec of cfg with caBundle and the
// selectors of prof.
func SpecFor(cfg *Config, caBundle []byte, prof *profile.Profile) ConfigurationSpec {
	s := ConfigurationSpec{Name: cfg.ConfigurationName, CABundle: caBundle, TimeoutSeconds: cfg.TimeoutSeconds}
	if prof != nil {
		s.Selectors = prof.Selectors
	}
	if cfg.URL != "" {
		if u, err := cfg.endpointURL(); err == nil {
			s.URL = u.String()
		}
	}
	if s.URL == "" {
		s.Service = &admissionregistrationv1.ServiceReference{
			Namespace: cfg.Namespace, Name: cfg.ServiceName, Path: ptr.To(DefaultPath), Port: ptr.To(cfg.ServicePort),
		}
	}
	return s
}

// DesiredWebhooks returns the entries of the configuration. Every entry
// calls the same endpoint, which re-evaluates all rules; the entries only
// decide which pods are worth a call, so the apiserver never calls the
// webhook for unrelated pods:
//
//   - pod-label / pod-legacy-label: objectSelector alibabacloud.com/eci=true
//     or eci=true;
//   - namespace-label / namespace-legacy-label / namespace-injection-label:
//     namespaceSelector alibabacloud.com/eci=true, eci=true or
//     virtual-node-affinity-injection=enabled;
//   - one entry per eci-profile selector, with the selector's own
//     namespaceSelector and objectSelector. Mirroring the selectors (rather
//     than one catch-all entry) keeps the webhook off the path of every
//     other pod of the cluster: no added latency, and nothing to fail open
//     on, for pods that never go to ECI. The cost is that a selector added
//     to the profile takes effect once this configuration is updated, about
//     a second later.
//
// Label selectors cannot express "or", hence one entry per alternative; a
// pod matching several entries is called several times, which is harmless
// because Decide is idempotent. Every entry excludes kube-system and pods
// labelled alibabacloud.com/eci=false.
func DesiredWebhooks(s ConfigurationSpec) []admissionregistrationv1.MutatingWebhook {
	notSystem := metav1.LabelSelectorRequirement{
		Key: corev1.LabelMetadataName, Operator: metav1.LabelSelectorOpNotIn, Values: []string{metav1.NamespaceSystem},
	}
	notOptedOut := metav1.LabelSelectorRequirement{
		Key: LabelECI, Operator: metav1.LabelSelectorOpNotIn, Values: []string{"false"},
	}
	in := func(key, value string) metav1.LabelSelectorRequirement {
		return metav1.LabelSelectorRequirement{Key: key, Operator: metav1.LabelSelectorOpIn, Values: []string{value}}
	}
	entry := func(name string, ns, obj metav1.LabelSelector) admissionregistrationv1.MutatingWebhook {
		ns.MatchExpressions = append(ns.MatchExpressions, notSystem)
		obj.MatchExpressions = append(obj.MatchExpressions, notOptedOut)
		return s.webhook(name, ns, obj)
	}
	hooks := []admissionregistrationv1.MutatingWebhook{
		s.webhook("pod-label"+entrySuffix,
			metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{notSystem}},
			metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{in(LabelECI, "true")}}),
		entry("pod-legacy-label"+entrySuffix, metav1.LabelSelector{},
			metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{in(LabelECILegacy, "true")}}),
		entry("namespace-label"+entrySuffix,
			metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{in(LabelECI, "true")}}, metav1.LabelSelector{}),
		entry("namespace-legacy-label"+entrySuffix,
			metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{in(LabelECILegacy, "true")}}, metav1.LabelSelector{}),
		entry("namespace-injection-label"+entrySuffix,
			metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{in(LabelInjectionLegacy, "enabled")}}, metav1.LabelSelector{}),
	}
	for i, sel := range s.Selectors {
		hooks = append(hooks, entry(selectorEntryName(i, sel.Name),
			metav1.LabelSelector{MatchLabels: copyLabels(sel.NamespaceSelector.MatchLabels)},
			metav1.LabelSelector{MatchLabels: copyLabels(sel.ObjectSelector.MatchLabels)}))
	}
	return hooks
}

// webhook builds one entry with every field the apiserver would default set
// explicitly, so that comparing with the stored object finds no spurious
// difference.
func (s ConfigurationSpec) webhook(name string, ns, obj metav1.LabelSelector) admissionregistrationv1.MutatingWebhook {
	cc := admissionregistrationv1.WebhookClientConfig{CABundle: s.CABundle}
	if s.URL != "" {
		cc.URL = ptr.To(s.URL)
	} else if s.Service != nil {
		svc := *s.Service
		cc.Service = &svc
	}
	return admissionregistrationv1.MutatingWebhook{
		Name:         name,
		ClientConfig: cc,
		Rules: []admissionregistrationv1.RuleWithOperations{{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
			Rule: admissionregistrationv1.Rule{
				APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"},
				Scope: ptr.To(admissionregistrationv1.NamespacedScope),
			},
		}},
		// Routing is a convenience: when the webhook is down, pods are
		// created unchanged rather than not at all.
		FailurePolicy:           ptr.To(admissionregistrationv1.Ignore),
		MatchPolicy:             ptr.To(admissionregistrationv1.Equivalent),
		NamespaceSelector:       &ns,
		ObjectSelector:          &obj,
		SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
		TimeoutSeconds:          ptr.To(s.TimeoutSeconds),
		AdmissionReviewVersions: []string{"v1"},
		ReinvocationPolicy:      ptr.To(admissionregistrationv1.NeverReinvocationPolicy),
	}
}

var nonName = regexp.MustCompile(`[^a-z0-9-]+`)

// selectorEntryName names the entry of selector i: the index keeps names
// unique, the sanitised selector name makes them readable.
func selectorEntryName(i int, name string) string {
	n := strings.Trim(nonName.ReplaceAllString(strings.ToLower(name), "-"), "-")
	if len(n) > 40 {
		n = strings.Trim(n[:40], "-")
	}
	label := "selector-" + strconv.Itoa(i)
	if n != "" {
		label += "-" + n
	}
	return label + ".profile" + entrySuffix
}

func copyLabels(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// EnsureConfiguration creates or updates the MutatingWebhookConfiguration
// s.Name so that it holds exactly DesiredWebhooks(s). It writes only when
// something differs, so calling it on every resync is cheap. The
// configuration is owned by this code: a chart should grant RBAC for it
// rather than template it, or the two would fight.
func EnsureConfiguration(ctx context.Context, kube kubernetes.Interface, s ConfigurationSpec) error {
	if len(s.CABundle) == 0 {
		return fmt.Errorf("webhook configuration %s: no CA bundle", s.Name)
	}
	want := DesiredWebhooks(s)
	client := kube.AdmissionregistrationV1().MutatingWebhookConfigurations()
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := client.Get(ctx, s.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = client.Create(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{
				ObjectMeta: metav1.ObjectMeta{Name: s.Name, Labels: map[string]string{managedByLabel: component}},
				Webhooks:   want,
			}, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				// Another replica won the race; compare with its version.
				return apierrors.NewConflict(admissionregistrationv1.Resource("mutatingwebhookconfigurations"), s.Name, err)
			}
			if err != nil {
				return fmt.Errorf("create MutatingWebhookConfiguration %s: %w", s.Name, err)
			}
			klog.InfoS("created webhook configuration", "name", s.Name, "entries", len(want))
			return nil
		}
		if err != nil {
			return fmt.Errorf("read MutatingWebhookConfiguration %s: %w", s.Name, err)
		}
		if apiequality.Semantic.DeepEqual(cur.Webhooks, want) && cur.Labels[managedByLabel] == component {
			return nil
		}
		upd := cur.DeepCopy()
		upd.Webhooks = want
		if upd.Labels == nil {
			upd.Labels = map[string]string{}
		}
		upd.Labels[managedByLabel] = component
		if _, err := client.Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
			if apierrors.IsConflict(err) {
				return err
			}
			return fmt.Errorf("update MutatingWebhookConfiguration %s: %w", s.Name, err)
		}
		klog.InfoS("updated webhook configuration", "name", s.Name, "entries", len(want))
		return nil
	})
}
