// Package imagecache is the ImageCache controller: it builds the cloud
// image cache of each ImageCache object (pkg/imagecache/api) with
// CreateImageCache, follows it with DescribeImageCaches into the object's
// status (phase, progress, cache id, the cloud's events, conditions) and
// Kubernetes events, deletes it with DeleteImageCache through a finalizer
// when the object is deleted, and adopts a cache it created (found by its
// tags) instead of creating a second one when its status was not written
// (a restart between the create and the status update).
//
// A change of spec cannot be applied in place: UpdateImageCache is not in
// the documented RAM policy, so a new cache is built for the new
// generation (ClientToken: object UID and generation) and the older ones
// are deleted once it is Ready or Failed. Meanwhile pods keep using the
// older Ready cache (status.readyImageCacheId).
//
// One controller runs per cluster: the virtual-node binary runs it on the
// replica that holds the first virtual node (its Lease), see
// pkg/virtualnode.
package imagecache

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/imagecache/api"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// Finalizer keeps a deleted ImageCache until its cloud caches are gone.
const Finalizer = "eci.alibabacloud.com/imagecache"

// Tags on every cloud cache the controller creates; adoption and deletion
// find the caches of an object by them.
const (
	TagManagedBy  = translate.TagManagedBy
	TagClusterID  = translate.TagClusterID
	TagName       = "ImageCacheObject"
	TagUID        = "ImageCacheUID"
	TagGeneration = "ImageCacheGeneration"
)

// Event reasons on ImageCache objects.
const (
	ReasonCreated           = "ImageCacheCreated"
	ReasonAdopted           = "ImageCacheAdopted"
	ReasonReady             = "ImageCacheReady"
	ReasonFailed            = "ImageCacheFailed"
	ReasonInvalidSpec       = "InvalidSpec"
	ReasonPullSecretMissing = "PullSecretMissing"
	ReasonCreateFailed      = "CreateFailed"
	ReasonDeleteFailed      = "DeleteFailed"
	ReasonDeleted           = "ImageCacheDeleted"
	ReasonCacheGone         = "ImageCacheGone"
	ReasonRebuilding        = "Rebuilding"
)

// Cloud is the part of *eci.Client the controller calls.
type Cloud interface {
	CreateImageCache(ctx context.Context, req *eci.CreateImageCacheRequest) (*eci.CreateImageCacheResponse, error)
	DescribeImageCaches(ctx context.Context, req *eci.DescribeImageCachesRequest) (*eci.DescribeImageCachesResponse, error)
	DeleteImageCache(ctx context.Context, id string) error
}

// Options configure the controller.
type Options struct {
	Kube     kubernetes.Interface
	Dynamic  dynamic.Interface
	Cloud    Cloud
	Recorder record.EventRecorder
	// ClusterID tags the caches, so two clusters sharing an account
	// never adopt each other's.
	ClusterID string
	// VSwitches and SecurityGroup are where the build instances run unless
	// an object's annotations say otherwise (the controller's ECI_VSWITCH
	// and ECI_SECURITY_GROUP).
	VSwitches     []string
	SecurityGroup string
	// ResourceGroupID is the resource group of new caches.
	ResourceGroupID string
	// PollInterval is how often a building cache is described (10s).
	PollInterval time.Duration
	// RetryInterval is how often an object waiting for something outside
	// the controller (a pull secret, the cloud) is tried again (30s).
	RetryInterval time.Duration
	// Workers reconcile objects concurrently (2).
	Workers int
}

// Controller reconciles ImageCache objects.
type Controller struct {
	opts     Options
	queue    workqueue.TypedRateLimitingInterface[string]
	informer cache.SharedIndexInformer
}

// crdWaitInterval is how often Run looks for the ImageCache resource when
// the cluster does not serve it (the CRD is not installed).
const crdWaitInterval = time.Minute

// Run reconciles ImageCache objects until ctx ends. It waits (checking
// every minute) while the cluster does not serve the resource.
func Run(ctx context.Context, opts Options) error {
	if opts.PollInterval <= 0 {
		opts.PollInterval = 10 * time.Second
	}
	if opts.RetryInterval <= 0 {
		opts.RetryInterval = 30 * time.Second
	}
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	logger := klog.FromContext(ctx).WithValues("controller", "imagecache")
	ctx = klog.NewContext(ctx, logger)
	logged := false
	for {
		served, err := resourceServed(opts.Kube)
		if served {
			break
		}
		if !logged {
			logger.Info("the cluster does not serve imagecaches.eci.alibabacloud.com: ImageCache objects are not reconciled until the CRD is installed (charts/ack-virtual-node/crds/imagecaches.yaml); checking every minute", "err", err)
			logged = true
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(crdWaitInterval):
		}
	}
	c := &Controller{opts: opts, queue: workqueue.NewTypedRateLimitingQueue(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](time.Second, 5*time.Minute))}
	c.informer = dynamicinformer.NewFilteredDynamicInformer(opts.Dynamic, api.GVR, "", 10*time.Minute, cache.Indexers{}, nil).Informer()
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			c.queue.Add(key)
		}
	}
	if _, err := c.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue, UpdateFunc: func(_, o any) { enqueue(o) }, DeleteFunc: enqueue,
	}); err != nil {
		return err
	}
	go c.informer.Run(ctx.Done())
	defer c.queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), c.informer.HasSynced) {
		return nil
	}
	logger.Info("reconciling ImageCache objects", "workers", opts.Workers)
	for i := 0; i < opts.Workers; i++ {
		go wait.UntilWithContext(ctx, c.worker, time.Second)
	}
	<-ctx.Done()
	return nil
}

// resourceServed reports whether the apiserver serves the ImageCache
// resource.
func resourceServed(kube kubernetes.Interface) (bool, error) {
	list, err := kube.Discovery().ServerResourcesForGroupVersion(api.Group + "/" + api.Version)
	if err != nil {
		return false, err
	}
	for _, r := range list.APIResources {
		if r.Name == api.Resource {
			return true, nil
		}
	}
	return false, nil
}

func (c *Controller) worker(ctx context.Context) {
	for {
		key, quit := c.queue.Get()
		if quit {
			return
		}
		after, err := c.reconcile(ctx, key)
		switch {
		case err != nil:
			klog.FromContext(ctx).Error(err, "reconcile ImageCache", "imageCache", key)
			c.queue.AddRateLimited(key)
		case after > 0:
			c.queue.Forget(key)
			c.queue.AddAfter(key, after)
		default:
			c.queue.Forget(key)
		}
		c.queue.Done(key)
	}
}

func (c *Controller) ref(ic *api.ImageCache) *corev1.ObjectReference {
	return &corev1.ObjectReference{APIVersion: api.Group + "/" + api.Version, Kind: api.Kind, Name: ic.Name, UID: ic.UID}
}

// reconcile brings one object a step further; after > 0 asks to be
// called again then.
func (c *Controller) reconcile(ctx context.Context, name string) (after time.Duration, err error) {
	obj, exists, err := c.informer.GetStore().GetByKey(name)
	if err != nil || !exists {
		return 0, err
	}
	ic, err := api.FromUnstructured(obj.(*unstructured.Unstructured))
	if err != nil {
		return 0, err
	}
	if ic.DeletionTimestamp != nil {
		return 0, c.finalize(ctx, ic)
	}
	if !hasFinalizer(ic) {
		ic.Finalizers = append(ic.Finalizers, Finalizer)
		u, err := api.ToUnstructured(ic)
		if err != nil {
			return 0, err
		}
		_, err = c.opts.Dynamic.Resource(api.GVR).Update(ctx, u, metav1.UpdateOptions{})
		return 0, err // the update brings the object back
	}
	st := ic.Status.DeepCopy()
	defer func() {
		if err == nil {
			err = c.writeStatus(ctx, ic, st)
		}
	}()
	if problems := ic.Spec.Validate(); len(problems) > 0 {
		c.setPending(ic, st, ReasonInvalidSpec, strings.Join(problems, "; "))
		return 0, nil
	}
	if st.ImageCacheId == "" || st.ObservedGeneration != ic.Generation {
		return c.build(ctx, ic, st)
	}
	return c.follow(ctx, ic, st)
}

// build adopts or creates the cloud cache of the object's generation.
func (c *Controller) build(ctx context.Context, ic *api.ImageCache, st *api.ImageCacheStatus) (time.Duration, error) {
	logger := klog.FromContext(ctx).WithValues("imageCache", ic.Name)
	gen := strconv.FormatInt(ic.Generation, 10)
	found, err := c.listOwn(ctx, ic, eci.Tag{Key: TagGeneration, Value: gen})
	if err != nil {
		return 0, err
	}
	if len(found) > 0 {
		id := found[0].ImageCacheId
		logger.Info("adopted the image cache created for this object", "imageCacheId", id, "generation", ic.Generation)
		c.opts.Recorder.Eventf(c.ref(ic), corev1.EventTypeNormal, ReasonAdopted,
			"adopted image cache %s, created for generation %d of this object (found by its tags), instead of creating another", id, ic.Generation)
		c.started(ic, st, id)
		return c.follow(ctx, ic, st)
	}
	creds, missing, err := c.credentials(ctx, ic)
	if err != nil {
		return 0, err
	}
	if missing != "" {
		setCondition(st, ic, api.ConditionPullSecretsResolved, metav1.ConditionFalse, ReasonPullSecretMissing, missing)
		c.setPending(ic, st, ReasonPullSecretMissing, missing)
		return c.opts.RetryInterval, nil
	}
	setCondition(st, ic, api.ConditionPullSecretsResolved, metav1.ConditionTrue, "Resolved", "every secret of spec.imagePullSecrets was read")
	req := c.request(ic, gen, creds)
	if req.SecurityGroupId == "" || req.VSwitchId == "" {
		c.setPending(ic, st, ReasonInvalidSpec, "no vSwitch or security group: set ECI_VSWITCH and ECI_SECURITY_GROUP on the controller, or the annotations "+api.AnnotationVSwitch+" and "+api.AnnotationSecurityGroup+" on the ImageCache")
		return 0, nil
	}
	out, err := c.opts.Cloud.CreateImageCache(ctx, req)
	if err != nil {
		switch eci.ClassOf(err) {
		case eci.ClassInvalid:
			// The request is wrong and the same spec would be refused
			// again: the object fails, and a change of spec (a new
			// generation) builds it again.
			klog.FromContext(ctx).Error(err, "CreateImageCache refused the spec", "imageCache", ic.Name)
			c.setFailed(ic, st, ReasonCreateFailed, "CreateImageCache: "+eci.StableText(err)+": fix the spec (images, imageCacheSize, retentionDays, annotations) and the cache is built again")
			return 0, nil
		case eci.ClassAuth:
			// The RAM policy or the AccessKey can be fixed outside the
			// cluster: wait for that.
			klog.FromContext(ctx).Error(err, "CreateImageCache refused the credentials; retrying", "imageCache", ic.Name)
			c.setPending(ic, st, ReasonCreateFailed, "CreateImageCache: "+eci.StableText(err)+
				fmt.Sprintf("; retrying every %s (the AccessKey's RAM policy must allow eci:CreateImageCache, as the documented policy does)", c.opts.RetryInterval))
			return c.opts.RetryInterval, nil
		}
		// Out of stock, throttled, unreachable: the object says why it
		// waits (one event while the reason stays the same; the request
		// id goes to the log) and the create is retried.
		klog.FromContext(ctx).Error(err, "CreateImageCache failed; retrying", "imageCache", ic.Name)
		c.setPending(ic, st, ReasonCreateFailed, "CreateImageCache: "+eci.StableText(err)+"; retrying")
		return c.opts.RetryInterval, nil
	}
	rebuilding := st.ImageCacheId != ""
	logger.Info("created image cache", "imageCacheId", out.ImageCacheId, "generation", ic.Generation, "images", ic.Spec.Images)
	if rebuilding {
		c.opts.Recorder.Eventf(c.ref(ic), corev1.EventTypeNormal, ReasonRebuilding,
			"the spec changed (generation %d): building image cache %s to replace %s, which is deleted once the new one is Ready or Failed", ic.Generation, out.ImageCacheId, st.ImageCacheId)
	} else {
		c.opts.Recorder.Eventf(c.ref(ic), corev1.EventTypeNormal, ReasonCreated, "building image cache %s of %d image(s)", out.ImageCacheId, len(ic.Spec.Images))
	}
	c.started(ic, st, out.ImageCacheId)
	return c.opts.PollInterval, nil
}

func (c *Controller) started(ic *api.ImageCache, st *api.ImageCacheStatus, id string) {
	st.ImageCacheId, st.ObservedGeneration = id, ic.Generation
	st.Phase, st.Progress, st.Reason, st.Message = eci.ImageCachePreparing, "", "", ""
	st.Events, st.StartTime, st.ExpireDateTime = nil, nil, nil
}

// follow describes the object's cache into its status.
func (c *Controller) follow(ctx context.Context, ic *api.ImageCache, st *api.ImageCacheStatus) (time.Duration, error) {
	out, err := c.opts.Cloud.DescribeImageCaches(ctx, &eci.DescribeImageCachesRequest{ImageCacheId: st.ImageCacheId})
	if err != nil && !eci.IsNotFound(err) {
		return 0, err
	}
	var cc *eci.ImageCache
	if out != nil {
		for i := range out.ImageCaches {
			if out.ImageCaches[i].ImageCacheId == st.ImageCacheId {
				cc = &out.ImageCaches[i]
			}
		}
	}
	if cc == nil {
		if st.Phase != api.PhaseFailed || st.Reason != ReasonCacheGone {
			msg := fmt.Sprintf("image cache %s no longer exists in the cloud (expired after spec.retentionDays, or deleted outside the cluster): change the spec or recreate the object to build it again", st.ImageCacheId)
			c.opts.Recorder.Event(c.ref(ic), corev1.EventTypeWarning, ReasonCacheGone, msg)
			st.Phase, st.Progress, st.Reason, st.Message = api.PhaseFailed, "", ReasonCacheGone, msg
			if st.ReadyImageCacheId == st.ImageCacheId {
				st.ReadyImageCacheId = ""
			}
			setCondition(st, ic, api.ConditionReady, metav1.ConditionFalse, ReasonCacheGone, msg)
		}
		return 0, nil
	}
	prev := st.Phase
	st.Phase, st.Progress = cc.Status, cc.Progress
	st.StartTime, st.ExpireDateTime = parseTime(cc.CreationTime), parseTime(cc.ExpireDateTime)
	st.Events = st.Events[:0]
	for _, e := range cc.Events {
		st.Events = append(st.Events, api.Event{Type: e.Type, Reason: e.Reason, Message: e.Message, Count: e.Count,
			FirstTimestamp: e.FirstTimestamp, LastTimestamp: e.LastTimestamp})
	}
	switch cc.Status {
	case eci.ImageCacheReady:
		st.Reason, st.Message = "", ""
		st.ReadyImageCacheId = cc.ImageCacheId
		setCondition(st, ic, api.ConditionReady, metav1.ConditionTrue, ReasonReady, "image cache "+cc.ImageCacheId+" is ready")
		if prev != eci.ImageCacheReady {
			c.opts.Recorder.Eventf(c.ref(ic), corev1.EventTypeNormal, ReasonReady, "image cache %s is ready: pods with the annotation %s: %s use it",
				cc.ImageCacheId, translate.AnnotationImageCacheName, ic.Name)
		}
		return c.olderDeleted(ctx, ic, cc.ImageCacheId), nil
	case eci.ImageCacheFailed, eci.ImageCacheUpdateFailed:
		why := cloudReason(cc)
		st.Reason, st.Message = ReasonFailed, why
		setCondition(st, ic, api.ConditionReady, metav1.ConditionFalse, ReasonFailed, why)
		if prev != cc.Status {
			c.opts.Recorder.Eventf(c.ref(ic), corev1.EventTypeWarning, ReasonFailed, "image cache %s failed: %s; fix the spec (images, imagePullSecrets, imageCacheSize) to build a new one", cc.ImageCacheId, why)
		}
		after := c.olderDeleted(ctx, ic, cc.ImageCacheId)
		if after == 0 {
			st.ReadyImageCacheId = "" // the older caches are gone
		}
		return after, nil
	}
	building := "image cache " + cc.ImageCacheId + " is " + cc.Status + " (" + cc.Progress + ")"
	if st.ReadyImageCacheId != "" && st.ReadyImageCacheId != cc.ImageCacheId {
		// A rebuild: pods keep the older Ready cache meanwhile.
		setCondition(st, ic, api.ConditionReady, metav1.ConditionTrue, ReasonRebuilding,
			fmt.Sprintf("pods use image cache %s while %s is built for generation %d", st.ReadyImageCacheId, building, ic.Generation))
	} else {
		setCondition(st, ic, api.ConditionReady, metav1.ConditionFalse, cc.Status, building)
	}
	return c.opts.PollInterval, nil
}

// cloudReason is what the cloud's Warning events say, or the status.
func cloudReason(cc *eci.ImageCache) string {
	var msgs []string
	for _, e := range cc.Events {
		if e.Type == corev1.EventTypeWarning {
			msgs = append(msgs, e.Reason+": "+e.Message)
		}
	}
	if len(msgs) == 0 {
		return "the cloud reports status " + cc.Status
	}
	return strings.Join(msgs, "; ")
}

// olderDeleted deletes the caches of earlier generations once the current
// one (keep) is Ready or Failed. When the cloud refuses, the status is
// still written (the phase event is not repeated), a Warning without
// request id says so, and the object is tried again after RetryInterval,
// which it returns.
func (c *Controller) olderDeleted(ctx context.Context, ic *api.ImageCache, keep string) time.Duration {
	err := c.deleteOlder(ctx, ic, keep)
	if err == nil {
		return 0
	}
	klog.FromContext(ctx).Error(err, "deleting the image cache of an earlier spec failed; retrying", "imageCache", ic.Name, "current", keep)
	c.opts.Recorder.Eventf(c.ref(ic), corev1.EventTypeWarning, ReasonDeleteFailed, "%s; retrying every %s (image cache %s is kept)",
		eci.StableText(err), c.opts.RetryInterval, keep)
	return c.opts.RetryInterval
}

// deleteOlder deletes the object's caches other than keep (those of
// earlier generations).
func (c *Controller) deleteOlder(ctx context.Context, ic *api.ImageCache, keep string) error {
	own, err := c.listOwn(ctx, ic)
	if err != nil {
		return err
	}
	for _, o := range own {
		if o.ImageCacheId == keep {
			continue
		}
		if err := c.opts.Cloud.DeleteImageCache(ctx, o.ImageCacheId); err != nil && !eci.IsNotFound(err) {
			return fmt.Errorf("DeleteImageCache %s, the cache of an earlier spec: %w", o.ImageCacheId, err)
		}
		klog.FromContext(ctx).Info("deleted the image cache of an earlier spec", "imageCache", ic.Name, "imageCacheId", o.ImageCacheId, "current", keep)
	}
	return nil
}

// finalize deletes every cloud cache of a deleted object, then lets it go.
func (c *Controller) finalize(ctx context.Context, ic *api.ImageCache) error {
	if !hasFinalizer(ic) {
		return nil
	}
	own, err := c.listOwn(ctx, ic)
	if err != nil {
		return err
	}
	ids := map[string]bool{}
	for _, o := range own {
		ids[o.ImageCacheId] = true
	}
	if ic.Status.ImageCacheId != "" {
		ids[ic.Status.ImageCacheId] = true
	}
	for id := range ids {
		if err := c.opts.Cloud.DeleteImageCache(ctx, id); err != nil && !eci.IsNotFound(err) {
			// The event's text has no request id, so repeats aggregate
			// into one event with a count; the log keeps the id.
			klog.FromContext(ctx).Error(err, "DeleteImageCache failed; retrying", "imageCache", ic.Name, "imageCacheId", id)
			c.opts.Recorder.Eventf(c.ref(ic), corev1.EventTypeWarning, ReasonDeleteFailed, "DeleteImageCache %s: %s; retrying (the object stays until the cloud cache is gone)", id, eci.StableText(err))
			return err
		}
		klog.FromContext(ctx).Info("deleted image cache", "imageCache", ic.Name, "imageCacheId", id)
	}
	kept := ic.Finalizers[:0]
	for _, f := range ic.Finalizers {
		if f != Finalizer {
			kept = append(kept, f)
		}
	}
	ic.Finalizers = kept
	u, err := api.ToUnstructured(ic)
	if err != nil {
		return err
	}
	_, err = c.opts.Dynamic.Resource(api.GVR).Update(ctx, u, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// listOwn lists the cloud caches this cluster created for ic (by tags),
// narrowed by extra tags.
func (c *Controller) listOwn(ctx context.Context, ic *api.ImageCache, extra ...eci.Tag) ([]eci.ImageCache, error) {
	req := &eci.DescribeImageCachesRequest{Tags: append([]eci.Tag{
		{Key: TagClusterID, Value: c.opts.ClusterID}, {Key: TagUID, Value: string(ic.UID)}}, extra...)}
	var out []eci.ImageCache
	for {
		page, err := c.opts.Cloud.DescribeImageCaches(ctx, req)
		if err != nil {
			return nil, err
		}
		out = append(out, page.ImageCaches...)
		if page.NextToken == "" || page.NextToken == req.NextToken {
			return out, nil
		}
		req.NextToken = page.NextToken
	}
}

// credentials resolves spec.imagePullSecrets; missing names the first
// secret that cannot be used and why.
func (c *Controller) credentials(ctx context.Context, ic *api.ImageCache) (creds []eci.ImageRegistryCredential, missing string, err error) {
	for i, ref := range ic.Spec.ImagePullSecrets {
		ns, name, _ := api.SplitSecretRef(ref)
		s, err := c.opts.Kube.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, fmt.Sprintf("spec.imagePullSecrets[%d]: secret %s/%s does not exist: create it (a kubernetes.io/dockerconfigjson secret) or remove the reference", i, ns, name), nil
		}
		if err != nil {
			return nil, "", fmt.Errorf("read secret %s/%s of ImageCache %s: %w", ns, name, ic.Name, err)
		}
		cs, err := translate.RegistryCredentials(s)
		if err != nil {
			return nil, fmt.Sprintf("spec.imagePullSecrets[%d]: secret %s/%s: %v", i, ns, name, err), nil
		}
		creds = append(creds, cs...)
	}
	return creds, "", nil
}

// request is the CreateImageCache of ic's generation gen.
func (c *Controller) request(ic *api.ImageCache, gen string, creds []eci.ImageRegistryCredential) *eci.CreateImageCacheRequest {
	vsw := strings.Join(c.opts.VSwitches, ",")
	if v := ic.Annotations[api.AnnotationVSwitch]; v != "" {
		vsw = v
	}
	sg := c.opts.SecurityGroup
	if v := ic.Annotations[api.AnnotationSecurityGroup]; v != "" {
		sg = v
	}
	reuse, _ := strconv.ParseBool(ic.Annotations[api.AnnotationEnableReuse])
	return &eci.CreateImageCacheRequest{
		ImageCacheName: CloudName(ic.Name), Images: ic.Spec.Images, SecurityGroupId: sg, VSwitchId: vsw,
		ImageCacheSize: ic.Spec.ImageCacheSize, RetentionDays: ic.Spec.RetentionDays,
		ImageRegistryCredentials: creds, AutoMatchImageCache: reuse, ResourceGroupId: c.opts.ResourceGroupID,
		Tags: []eci.Tag{{Key: TagManagedBy, Value: translate.ManagedByValue}, {Key: TagClusterID, Value: c.opts.ClusterID},
			{Key: TagName, Value: ic.Name}, {Key: TagUID, Value: string(ic.UID)}, {Key: TagGeneration, Value: gen}},
		// The same object and generation never make a second cache, even
		// when a create is retried after its answer was lost.
		ClientToken: string(ic.UID) + "-" + gen,
	}
}

var notCloudName = regexp.MustCompile(`[^a-z0-9-]+`)

// CloudName is the ImageCacheName of an object named name: 2-128
// lowercase letters, digits and '-', neither first nor last.
func CloudName(name string) string {
	n := notCloudName.ReplaceAllString(strings.ToLower(name), "-")
	if len(n) > 128 {
		n = n[:128]
	}
	n = strings.Trim(n, "-")
	if len(n) < 2 {
		n = "imc-" + n
		n = strings.Trim(n, "-")
	}
	return n
}

// setPending says why the object waits: for a pull secret, for the cloud.
func (c *Controller) setPending(ic *api.ImageCache, st *api.ImageCacheStatus, reason, msg string) {
	c.setProblem(ic, st, api.PhasePending, reason, msg)
}

// setFailed marks an object whose cache cannot be built from this spec.
func (c *Controller) setFailed(ic *api.ImageCache, st *api.ImageCacheStatus, reason, msg string) {
	c.setProblem(ic, st, api.PhaseFailed, reason, msg)
}

// setProblem writes reason and msg into the status, with one Warning
// while they stay the same. Phase and the Ready condition are set only
// while no cloud cache exists: during a rebuild they stay those of the
// cache that serves pods.
func (c *Controller) setProblem(ic *api.ImageCache, st *api.ImageCacheStatus, phase, reason, msg string) {
	if st.ImageCacheId == "" {
		st.Phase = phase
		setCondition(st, ic, api.ConditionReady, metav1.ConditionFalse, reason, msg)
	}
	changed := st.Reason != reason || st.Message != msg
	st.Reason, st.Message = reason, msg
	if changed {
		c.opts.Recorder.Event(c.ref(ic), corev1.EventTypeWarning, reason, msg)
	}
}

func setCondition(st *api.ImageCacheStatus, ic *api.ImageCache, typ string, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: typ, Status: status, Reason: conditionReason(reason),
		Message: msg, ObservedGeneration: ic.Generation})
}

var notReason = regexp.MustCompile(`[^A-Za-z0-9_]`)

// conditionReason makes s a valid condition reason (CamelCase letters).
func conditionReason(s string) string {
	s = notReason.ReplaceAllString(s, "")
	if s == "" {
		return "Unknown"
	}
	return s
}

// writeStatus writes st when it differs from the object's status.
func (c *Controller) writeStatus(ctx context.Context, ic *api.ImageCache, st *api.ImageCacheStatus) error {
	if equalStatus(&ic.Status, st) {
		return nil
	}
	now := metav1.Now()
	st.LastUpdatedTime = &now
	ic.Status = *st
	u, err := api.ToUnstructured(ic)
	if err != nil {
		return err
	}
	_, err = c.opts.Dynamic.Resource(api.GVR).UpdateStatus(ctx, u, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) {
		// A newer object is on its way through the informer.
		return errors.New("status update conflicted; retrying with the newer object")
	}
	return err
}

func equalStatus(a, b *api.ImageCacheStatus) bool {
	x, y := *a, *b
	x.LastUpdatedTime, y.LastUpdatedTime = nil, nil
	return equality.Semantic.DeepEqual(x, y)
}

func hasFinalizer(ic *api.ImageCache) bool {
	for _, f := range ic.Finalizers {
		if f == Finalizer {
			return true
		}
	}
	return false
}

// parseTime is a timestamp of the cloud's answer (eci.ParseTime), nil
// when there is none.
func parseTime(s string) *metav1.Time {
	t := eci.ParseTime(s)
	if t.IsZero() {
		return nil
	}
	mt := metav1.NewTime(t)
	return &mt
}
