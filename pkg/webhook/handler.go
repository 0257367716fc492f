package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/profile"
	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
)

// maxBody bounds an AdmissionReview: a pod is at most ~1.5 MiB in etcd and
// the review carries it once (CREATE has no oldObject).
const maxBody = 4 << 20

// Outcomes of an admission request (the "outcome" metric label).
const (
	// OutcomeMutated: the pod was patched.
	OutcomeMutated = "mutated"
	// OutcomeSkipped: the pod was admitted unchanged by decision.
	OutcomeSkipped = "skipped"
	// OutcomeError: the request or a lookup failed; the pod was admitted
	// unchanged or decided on pod labels only.
	OutcomeError = "error"
)

// NamespaceLabels returns the labels of a namespace. fresh asks for a live
// read instead of a cached one.
type NamespaceLabels func(ctx context.Context, name string, fresh bool) (map[string]string, error)

// Metrics are the admission metrics of one server. They live in a registry
// of the server so that several servers in one process (tests) never
// collide in the default registry.
type Metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// NewMetrics registers the admission metrics in reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vnode_webhook", Name: "admission_requests_total",
			Help: "Pod admission requests by outcome (mutated, skipped, error) and reason (the rule that routed or skipped the pod).",
		}, []string{"outcome", "reason"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "vnode_webhook", Name: "admission_duration_seconds",
			Help:    "Time to answer a pod admission request, by outcome.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"outcome"}),
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}

func (m *Metrics) observe(outcome, reason string, start time.Time) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(outcome, reason).Inc()
	m.latency.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
}

// Handler answers AdmissionReview requests for pods with a JSON patch. It
// never denies a pod: routing is a convenience, and the worst a failure may
// do is leave a pod unchanged.
type Handler struct {
	// Namespaces reads namespace labels.
	Namespaces NamespaceLabels
	// Profile returns the eci-profile in effect; nil means none.
	Profile func() *profile.Profile
	// Metrics counts requests; nil disables them.
	Metrics *Metrics
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if r.Method != http.MethodPost {
		http.Error(w, "POST an admission.k8s.io/v1 AdmissionReview", http.StatusMethodNotAllowed)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		h.Metrics.observe(OutcomeError, "bad-request", start)
		http.Error(w, "content type must be application/json", http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err == nil && len(body) > maxBody {
		err = fmt.Errorf("body larger than %d bytes", maxBody)
	}
	var review admissionv1.AdmissionReview
	if err == nil {
		err = json.Unmarshal(body, &review)
	}
	if err == nil && review.Request == nil {
		err = errors.New("AdmissionReview has no request")
	}
	if err != nil {
		klog.ErrorS(err, "bad admission request", "remote", r.RemoteAddr)
		h.Metrics.observe(OutcomeError, "bad-request", start)
		http.Error(w, "bad AdmissionReview: "+err.Error(), http.StatusBadRequest)
		return
	}
	resp, outcome, reason := h.review(r.Context(), review.Request)
	resp.UID = review.Request.UID
	out, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: admissionv1.SchemeGroupVersion.String(), Kind: "AdmissionReview"},
		Response: resp,
	})
	if err != nil {
		klog.ErrorS(err, "encode admission response")
		h.Metrics.observe(OutcomeError, "encode", start)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
	h.Metrics.observe(outcome, reason, start)
}

// review decides one request and returns the response with its outcome and
// reason for the metrics.
func (h *Handler) review(ctx context.Context, req *admissionv1.AdmissionRequest) (*admissionv1.AdmissionResponse, string, string) {
	allow := &admissionv1.AdmissionResponse{Allowed: true}
	if req.Kind.Kind != "Pod" || req.Operation != admissionv1.Create || req.SubResource != "" {
		return allow, OutcomeSkipped, "not-pod-create"
	}
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		klog.ErrorS(err, "decode pod of admission request", "namespace", req.Namespace, "uid", req.UID)
		return allow, OutcomeError, "decode"
	}
	logger := klog.FromContext(ctx).WithValues("pod", klog.KRef(req.Namespace, podName(&pod)), "uid", req.UID)
	var prof *profile.Profile
	if h.Profile != nil {
		prof = h.Profile()
	}
	nsLabels, nsErr := h.Namespaces(ctx, req.Namespace, false)
	d := Decide(Input{Namespace: req.Namespace, NamespaceLabels: nsLabels, Pod: &pod, Profile: prof})
	if d.Reason == SkipNoMatch {
		// The apiserver called us, so some entry matched: a namespace label
		// added a moment ago may not be in our cache yet. One live read
		// settles it; pods that match nothing rarely get here at all.
		if fresh, err := h.Namespaces(ctx, req.Namespace, true); err == nil {
			nsErr = nil
			if !maps.Equal(fresh, nsLabels) {
				d = Decide(Input{Namespace: req.Namespace, NamespaceLabels: fresh, Pod: &pod, Profile: prof})
			}
		} else if nsErr == nil {
			nsErr = err
		}
	}
	outcome := OutcomeSkipped
	if nsErr != nil {
		// Pod labels still route the pod; only namespace rules are lost.
		logger.Error(nsErr, "namespace labels unavailable; decided on pod labels only", "namespace", req.Namespace)
		outcome = OutcomeError
	}
	allow.AuditAnnotations = map[string]string{"decision": d.Reason}
	if len(d.Patch) == 0 {
		logger.V(4).Info("pod left unchanged", "reason", d.Reason, "route", d.Route)
		return allow, outcome, d.Reason
	}
	patch, err := json.Marshal(d.Patch)
	if err != nil {
		logger.Error(err, "encode patch")
		return allow, OutcomeError, "encode"
	}
	pt := admissionv1.PatchTypeJSONPatch
	allow.Patch, allow.PatchType = patch, &pt
	if outcome != OutcomeError {
		outcome = OutcomeMutated
	}
	logger.V(2).Info("pod routed to the virtual node", "reason", d.Reason, "selectors", d.Selectors, "operations", len(d.Patch))
	return allow, outcome, d.Reason
}

// podName names a pod in logs before it has a name (generateName).
func podName(p *corev1.Pod) string {
	if p.Name != "" {
		return p.Name
	}
	return p.GenerateName + "*"
}
