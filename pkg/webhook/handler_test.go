package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/profile"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

func review(t *testing.T, h http.Handler, ns string, pod *corev1.Pod) *admissionv1.AdmissionResponse {
	t.Helper()
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: types.UID("uid-1"), Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			Namespace: ns, Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, DefaultPath, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if out.APIVersion != "admission.k8s.io/v1" || out.Kind != "AdmissionReview" || out.Response == nil {
		t.Fatalf("bad review: %s", rec.Body)
	}
	if out.Response.UID != "uid-1" || !out.Response.Allowed {
		t.Fatalf("response uid %q allowed %v", out.Response.UID, out.Response.Allowed)
	}
	return out.Response
}

func TestHandler(t *testing.T) {
	cached := map[string]map[string]string{"vk": {LabelECI: "true"}}
	live := map[string]map[string]string{"vk": {LabelECI: "true"}, "fresh": {LabelInjectionLegacy: "enabled"}}
	var liveReads atomic.Int32
	nsFail := false
	prof, err := profile.Parse(map[string]string{"selectors": `[{"name":"big","objectSelector":{"matchLabels":{"size":"big"}},` +
		`"effect":{"annotations":{"k8s.aliyun.com/eci-use-specs":"2-4Gi"}}}]`})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	h := &Handler{
		Namespaces: func(_ context.Context, name string, fresh bool) (map[string]string, error) {
			if nsFail {
				return nil, errors.New("apiserver down")
			}
			if fresh {
				liveReads.Add(1)
				return live[name], nil
			}
			return cached[name], nil
		},
		Profile: func() *profile.Profile { return prof },
		Metrics: NewMetrics(reg),
	}
	// A second server in the same process has its own registry.
	NewMetrics(prometheus.NewRegistry())

	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}}}

	t.Run("namespace label is patched", func(t *testing.T) {
		resp := review(t, h, "vk", pod)
		if resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
			t.Fatalf("patch type %v", resp.PatchType)
		}
		got := applyPatch(t, pod, Decision{Patch: decodeOps(t, resp.Patch)})
		if got.Spec.NodeSelector["type"] != "virtual-kubelet" || len(got.Spec.Tolerations) != 1 {
			t.Errorf("patched pod = %+v", got.Spec)
		}
		if resp.AuditAnnotations["decision"] != ReasonNamespaceLabel {
			t.Errorf("audit annotations = %v", resp.AuditAnnotations)
		}
	})
	t.Run("stale cache is re-read once", func(t *testing.T) {
		before := liveReads.Load()
		resp := review(t, h, "fresh", pod)
		if len(resp.Patch) == 0 || liveReads.Load() != before+1 {
			t.Errorf("patch %s, live reads %d", resp.Patch, liveReads.Load()-before)
		}
	})
	t.Run("no live read for a decided skip", func(t *testing.T) {
		before := liveReads.Load()
		p := pod.DeepCopy()
		p.Labels = map[string]string{LabelECI: "false"}
		if resp := review(t, h, "vk", p); len(resp.Patch) != 0 {
			t.Errorf("opted-out pod patched: %s", resp.Patch)
		}
		if liveReads.Load() != before {
			t.Error("live namespace read for an opted-out pod")
		}
	})
	t.Run("profile selector", func(t *testing.T) {
		p := pod.DeepCopy()
		p.Labels = map[string]string{"size": "big"}
		resp := review(t, h, "default", p)
		got := applyPatch(t, p, Decision{Patch: decodeOps(t, resp.Patch)})
		if got.Annotations["k8s.aliyun.com/eci-use-specs"] != "2-4Gi" {
			t.Errorf("annotations = %v", got.Annotations)
		}
	})
	t.Run("namespace lookup failure still honours pod labels", func(t *testing.T) {
		nsFail = true
		defer func() { nsFail = false }()
		p := pod.DeepCopy()
		p.Labels = map[string]string{LabelECI: "true"}
		if resp := review(t, h, "vk", p); len(resp.Patch) == 0 {
			t.Error("pod label ignored when the namespace cannot be read")
		}
	})
	t.Run("bad requests", func(t *testing.T) {
		for _, tc := range []struct {
			method, ct, body string
			code             int
		}{
			{http.MethodGet, "", "", http.StatusMethodNotAllowed},
			{http.MethodPost, "text/plain", "{}", http.StatusUnsupportedMediaType},
			{http.MethodPost, "application/json", "{", http.StatusBadRequest},
			{http.MethodPost, "application/json", `{"apiVersion":"admission.k8s.io/v1"}`, http.StatusBadRequest},
		} {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(tc.method, DefaultPath, strings.NewReader(tc.body))
			if tc.ct != "" {
				req.Header.Set("Content-Type", tc.ct)
			}
			h.ServeHTTP(rec, req)
			if rec.Code != tc.code {
				t.Errorf("%s %s %q: status %d, want %d", tc.method, tc.ct, tc.body, rec.Code, tc.code)
			}
		}
	})
	t.Run("metrics count outcomes", func(t *testing.T) {
		if n := testutil.ToFloat64(h.Metrics.requests.WithLabelValues(OutcomeMutated, ReasonNamespaceLabel)); n != 1 {
			t.Errorf("mutated/namespace-label = %v", n)
		}
		if n := testutil.ToFloat64(h.Metrics.requests.WithLabelValues(OutcomeSkipped, SkipOptOut)); n != 1 {
			t.Errorf("skipped/opted-out = %v", n)
		}
		if n := testutil.ToFloat64(h.Metrics.requests.WithLabelValues(OutcomeError, ReasonPodLabel)); n != 1 {
			t.Errorf("error/pod-label = %v", n)
		}
		if n := testutil.ToFloat64(h.Metrics.requests.WithLabelValues(OutcomeError, "bad-request")); n != 3 {
			t.Errorf("error/bad-request = %v", n)
		}
		if n, err := testutil.GatherAndCount(reg, "vnode_webhook_admission_duration_seconds"); err != nil || n == 0 {
			t.Errorf("latency series = %d, %v", n, err)
		}
	})
}

func decodeOps(t *testing.T, raw []byte) []PatchOp {
	t.Helper()
	var ops []PatchOp
	if err := json.Unmarshal(raw, &ops); err != nil {
		t.Fatalf("patch %s: %v", raw, err)
	}
	return ops
}
