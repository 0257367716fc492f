package approver

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	authorizationv1 "k8s.io/api/authorization/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	certlisters "k8s.io/client-go/listers/certificates/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// Decisions, the "decision" label of the counter.
const (
	DecisionApproved    = "approved"
	DecisionNotApproved = "not_approved"
	DecisionError       = "error"
)

// Metrics count every evaluation of a CSR by decision and reason. They are
// registered per Controller (not in the global registry) so that several
// approvers in one process, as in tests, do not collide.
type Metrics struct {
	// Decisions is vnode_approver_csr_decisions_total{decision,reason}.
	Decisions *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them in reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{Decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vnode_approver_csr_decisions_total",
		Help: "CSR evaluations by decision (approved, not_approved, error) and reason.",
	}, []string{"decision", "reason"})}
	if err := reg.Register(m.Decisions); err != nil {
		return nil, fmt.Errorf("register approver metrics: %w", err)
	}
	return m, nil
}

// Options configure a Controller.
type Options struct {
	// Client must be allowed to list/watch CSRs, update their approval,
	// approve for the kube-apiserver-client signer, create
	// SubjectAccessReviews and Events (see ClusterRole).
	Client kubernetes.Interface
	// Policy is the certificate a virtual node may obtain.
	Policy Policy
	// Workers is the number of concurrent evaluations; 0 means 2.
	Workers int
	// ResyncInterval re-evaluates pending CSRs; 0 disables it.
	ResyncInterval time.Duration
	// Registerer receives the metrics; nil means a private registry.
	Registerer prometheus.Registerer

	// csrs replaces the CSR API that New discovers (tests only).
	csrs csrAPI
}

// Controller approves virtual nodes' client-certificate CSRs. It watches
// CSRs through an informer and evaluates each one from a rate-limited
// workqueue, so a CSR is handled by one worker at a time and transient API
// errors are retried with back-off.
type Controller struct {
	client   kubernetes.Interface
	policy   Policy
	workers  int
	csrs     csrAPI
	informer cache.SharedIndexInformer
	lister   certlisters.CertificateSigningRequestLister
	synced   cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	recorder record.EventRecorder
	events   record.EventBroadcaster
	metrics  *Metrics
	runOnce  sync.Once
}

// New builds a Controller; Run starts it.
func New(o Options) (*Controller, error) {
	if o.Client == nil {
		return nil, errors.New("approver: Options.Client is nil")
	}
	if o.Policy.Organization == "" || o.Policy.CNPrefix == "" {
		return nil, errors.New("approver: Options.Policy needs an Organization and a CNPrefix")
	}
	workers := o.Workers
	if workers <= 0 {
		workers = 2
	}
	reg := o.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	csrs := o.csrs
	if csrs == nil {
		// v1 where the cluster serves it (1.19+), else v1beta1 (1.16 to 1.18).
		if csrs, err = discoverCSRAPI(o.Client); err != nil {
			return nil, err
		}
	}
	// The cache holds v1 objects whichever version is served (csrAPI
	// converts), so everything below is the same for both.
	inf := cache.NewSharedIndexInformer(csrs.ListWatch(), &certificatesv1.CertificateSigningRequest{}, o.ResyncInterval, cache.Indexers{})
	c := &Controller{
		client:   o.Client,
		policy:   o.Policy,
		workers:  workers,
		csrs:     csrs,
		informer: inf,
		lister:   certlisters.NewCertificateSigningRequestLister(inf.GetIndexer()),
		synced:   inf.HasSynced,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "vnode-approver"}),
		metrics: m,
	}
	c.events = record.NewBroadcaster()
	c.recorder = c.events.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "vnode-approver"})
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			c.queue.Add(key)
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue,
		// Only pending CSRs are worth a look; Update also carries resyncs.
		UpdateFunc: func(_, obj any) {
			if csr, ok := obj.(*certificatesv1.CertificateSigningRequest); ok && !Decided(csr) {
				enqueue(obj)
			}
		},
	}); err != nil {
		return nil, fmt.Errorf("approver: add CSR event handler: %w", err)
	}
	return c, nil
}

// Metrics returns the controller's metrics, e.g. for tests.
func (c *Controller) Metrics() *Metrics { return c.metrics }

// CSRGroupVersion is the CSR API the controller speaks: CSRv1, or
// CSRv1beta1 on a cluster without v1.
func (c *Controller) CSRGroupVersion() string { return c.csrs.GroupVersion() }

// Run evaluates CSRs until ctx ends, then stops the informer, the queue and
// the event broadcaster and returns. A Controller runs once.
func (c *Controller) Run(ctx context.Context) error {
	err := errors.New("approver: Run called twice")
	c.runOnce.Do(func() { err = c.run(ctx) })
	return err
}

func (c *Controller) run(ctx context.Context) error {
	defer utilruntime.HandleCrash()
	c.events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
	defer c.events.Shutdown()
	var informerDone sync.WaitGroup
	defer informerDone.Wait()
	defer c.queue.ShutDown()

	informerDone.Go(func() { c.informer.RunWithContext(ctx) })
	klog.InfoS("Starting vnode-approver", "organization", c.policy.Organization, "cnPrefix", c.policy.CNPrefix, "workers", c.workers, "csrAPI", c.csrs.GroupVersion())
	if !cache.WaitForCacheSync(ctx.Done(), c.synced) {
		return fmt.Errorf("approver: CSR cache did not sync: %w", context.Cause(ctx))
	}
	var wg sync.WaitGroup
	for range c.workers {
		wg.Go(func() { wait.UntilWithContext(ctx, c.worker, time.Second) })
	}
	<-ctx.Done()
	c.queue.ShutDown()
	wg.Wait()
	klog.InfoS("Stopped vnode-approver")
	return nil
}

func (c *Controller) worker(ctx context.Context) {
	for c.next(ctx) {
	}
}

func (c *Controller) next(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	if err := c.sync(ctx, key); err != nil {
		if ctx.Err() == nil {
			klog.ErrorS(err, "CSR evaluation failed, will retry", "csr", key)
		}
		c.queue.AddRateLimited(key)
		return true
	}
	c.queue.Forget(key)
	return true
}

func (c *Controller) count(decision, reason string) {
	c.metrics.Decisions.WithLabelValues(decision, reason).Inc()
}

// sync evaluates one CSR. It returns an error only for what a retry can
// fix (API errors); a CSR that does not qualify is logged and dropped.
func (c *Controller) sync(ctx context.Context, name string) error {
	csr, err := c.lister.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get CSR %s from cache: %w", name, err)
	}
	req, err := c.policy.Check(csr)
	if rej, ok := errors.AsType[*Rejection](err); ok {
		c.count(DecisionNotApproved, rej.Reason)
		// Other signers' CSRs and finished ones are routine: keep them quiet.
		level := klog.Level(0)
		if rej.Reason == ReasonWrongSigner || rej.Reason == ReasonAlreadyDecided {
			level = 4
		}
		klog.V(level).InfoS("CSR not approved", "csr", name, "reason", rej.Reason, "detail", rej.Detail, "requester", csr.Spec.Username)
		return nil
	}
	if err != nil {
		return err
	}
	allowed, why, err := c.authorize(ctx, csr, req.Subresource())
	if err != nil {
		c.count(DecisionError, ReasonAuthzError)
		return err
	}
	if !allowed {
		c.count(DecisionNotApproved, ReasonNotAuthorized)
		klog.InfoS("CSR not approved", "csr", name, "reason", ReasonNotAuthorized,
			"detail", fmt.Sprintf("requester may not create certificatesigningrequests/%s: %s", req.Subresource(), why),
			"requester", csr.Spec.Username, "commonName", req.CommonName)
		return nil
	}
	reason := ReasonNew
	if req.Renewal {
		reason = ReasonRenewal
	}
	approved, err := c.approve(ctx, csr, req)
	if err != nil {
		c.count(DecisionError, ReasonApproveError)
		return err
	}
	if !approved { // someone else decided first
		c.count(DecisionNotApproved, ReasonAlreadyDecided)
		return nil
	}
	c.count(DecisionApproved, reason)
	klog.InfoS("CSR approved", "csr", name, "reason", reason, "node", req.NodeName, "requester", csr.Spec.Username)
	return nil
}

// authorize asks the apiserver whether the CSR's requester (as recorded by
// the apiserver in spec, not as claimed in the request) may create the
// given certificatesigningrequests subresource.
func (c *Controller) authorize(ctx context.Context, csr *certificatesv1.CertificateSigningRequest, subresource string) (bool, string, error) {
	extra := make(map[string]authorizationv1.ExtraValue, len(csr.Spec.Extra))
	for k, v := range csr.Spec.Extra {
		extra[k] = authorizationv1.ExtraValue(v)
	}
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: csr.Spec.Username, UID: csr.Spec.UID, Groups: csr.Spec.Groups, Extra: extra,
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Group: certificatesv1.GroupName, Resource: "certificatesigningrequests",
			Verb: "create", Subresource: subresource,
		},
	}}
	got, err := c.client.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
	if err != nil {
		return false, "", fmt.Errorf("subjectaccessreview for CSR %s: %w", csr.Name, err)
	}
	why := got.Status.Reason
	if got.Status.EvaluationError != "" {
		why += " (evaluation error: " + got.Status.EvaluationError + ")"
	}
	return got.Status.Allowed, why, nil
}

// approve adds the Approved condition through the approval subresource.
// On a conflict it re-reads the CSR and tries again, unless somebody else
// decided meanwhile (then it returns false): approving twice is harmless,
// overriding a Deny is not.
func (c *Controller) approve(ctx context.Context, csr *certificatesv1.CertificateSigningRequest, req Request) (bool, error) {
	msg := fmt.Sprintf("Auto approving virtual node %q client certificate (requester %q, %s)", req.NodeName, csr.Spec.Username, req.Subresource())
	cur := csr.DeepCopy()
	approved := false
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if Decided(cur) {
			return nil
		}
		cur.Status.Conditions = append(cur.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
			Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue,
			Reason: "AutoApproved", Message: msg,
			LastUpdateTime: metav1.Now(),
		})
		_, served, err := c.csrs.UpdateApproval(ctx, cur)
		if apierrors.IsConflict(err) {
			fresh, gerr := c.csrs.Get(ctx, cur.Name)
			if gerr != nil {
				return fmt.Errorf("re-read CSR %s after conflict: %w", cur.Name, gerr)
			}
			cur = fresh
			return err
		}
		if err != nil {
			return err
		}
		approved = true
		c.recorder.Event(served, corev1.EventTypeNormal, "AutoApproved", msg)
		return nil
	})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("approve CSR %s: %w", csr.Name, err)
	}
	return approved, nil
}
