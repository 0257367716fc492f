package provider

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
)

// Pods that must not become billed container groups, and pods that must
// wait for the objects they need.
const (
	// AnnotationDaemonSetOptIn, "true" on a DaemonSet's pod template, lets
	// its pods on a virtual node run as ECI instances. Without it they are
	// refused (ReasonDaemonSetPodRefused): a virtual node is not a machine,
	// and a DaemonSet that tolerates every taint would otherwise put a
	// billed instance behind each virtual node.
	AnnotationDaemonSetOptIn = "alibabacloud.com/eci-daemonset"
	// ReasonDaemonSetPodRefused is the Failed pod's reason and its Warning
	// event's.
	ReasonDaemonSetPodRefused = "DaemonSetPodRefused"

	// The reasons virtual-kubelet's env resolution gives a pod whose
	// ConfigMap or Secret is missing: Mandatory... while the pod waits for
	// the object (its status reason too), Optional... when an optional
	// one is left out and the pod starts without it.
	ReasonMandatoryConfigMapNotFound = "MandatoryConfigMapNotFound"
	ReasonMandatorySecretNotFound    = "MandatorySecretNotFound"
	ReasonOptionalConfigMapNotFound  = "OptionalConfigMapNotFound"
	ReasonOptionalSecretNotFound     = "OptionalSecretNotFound"

	// sourceRetryCap bounds the wait between two looks for a missing
	// ConfigMap or Secret. Its informer event starts the pod at once
	// (SourceChanged); the looks cover an event that came while the pod
	// was between two attempts. A look costs no cloud call and no token.
	sourceRetryCap = 30 * time.Second

	// eventProviderCreateSuccess is the event virtual-kubelet's core
	// records whenever CreatePod returns nil (coreRecorder).
	eventProviderCreateSuccess = "ProviderCreateSuccess"
)

// daemonSetOf returns the name of the DaemonSet that controls pod, "" if
// none does.
func daemonSetOf(pod *corev1.Pod) string {
	for _, o := range pod.OwnerReferences {
		if o.Kind == "DaemonSet" && o.Controller != nil && *o.Controller {
			return o.Name
		}
	}
	return ""
}

// refuseDaemonSetPod fails a DaemonSet pod that was not opted in, before
// anything is read, minted or sent for it, and reports whether it did. The
// pod is Failed like one a kubelet rejects at admission; the DaemonSet
// controller replaces a failed pod only after a backoff per node (1 s
// doubling to 15 minutes), so a DaemonSet kept on the node costs one pod
// and one event per backoff step, not a loop.
func (p *Provider) refuseDaemonSetPod(pod *corev1.Pod) bool {
	ds := daemonSetOf(pod)
	if ds == "" || pod.Annotations[AnnotationDaemonSetOptIn] == "true" {
		return false
	}
	msg := fmt.Sprintf("DaemonSet %s/%s: a virtual node is not a machine, and this pod would run as a billed ECI instance. "+
		"Keep the DaemonSet off virtual nodes (vnodectl exclude-daemonsets, or node affinity type NotIn [virtual-kubelet]), "+
		"or run it on ECI on purpose with the annotation %s: \"true\" in its pod template", pod.Namespace, ds, AnnotationDaemonSetOptIn)
	p.fail(pod, false, ReasonDaemonSetPodRefused, ReasonDaemonSetPodRefused, msg)
	return true
}

// missingSourceReason is the Mandatory...NotFound reason of a translation
// error, "" when the error is not a missing ConfigMap or Secret.
func missingSourceReason(err error) (string, *translate.MissingSourceError) {
	var miss *translate.MissingSourceError
	if !errors.As(err, &miss) {
		return "", nil
	}
	if miss.Kind == translate.KindSecret {
		return ReasonMandatorySecretNotFound, miss
	}
	return ReasonMandatoryConfigMapNotFound, miss
}

// optionalSourceEvents reports the optional ConfigMaps and Secrets the pod
// starts without, one Warning per object (the recorder aggregates repeats).
func (p *Provider) optionalSourceEvents(pod *corev1.Pod, missing []translate.Source) {
	for _, s := range missing {
		reason := ReasonOptionalConfigMapNotFound
		if s.Kind == translate.KindSecret {
			reason = ReasonOptionalSecretNotFound
		}
		p.event(pod, corev1.EventTypeWarning, reason, "%s not found: the pod starts without it", s)
	}
}

// sourceWaits are the pods waiting for a ConfigMap or Secret, so the
// object's informer event starts them at once.
type sourceWaits struct {
	mu    sync.Mutex
	byObj map[string]map[string]*sourceWait // kind/ns/name -> pod key -> wait
	byPod map[string]string                 // pod key -> kind/ns/name
}

type sourceWait struct {
	uid   types.UID
	timer *time.Timer // the pod's next attempt
}

func sourceKey(kind, ns, name string) string { return kind + "/" + ns + "/" + name }

// wait records that pod k (uid) waits for the object, its next attempt
// due on timer.
func (w *sourceWaits) wait(k string, uid types.UID, obj string, timer *time.Timer) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.removeLocked(k)
	if w.byObj == nil {
		w.byObj, w.byPod = map[string]map[string]*sourceWait{}, map[string]string{}
	}
	m := w.byObj[obj]
	if m == nil {
		m = map[string]*sourceWait{}
		w.byObj[obj] = m
	}
	m[k] = &sourceWait{uid: uid, timer: timer}
	w.byPod[k] = obj
}

// done forgets the wait of pod k with uid: its attempt is running. A wait
// of another pod of that name (a replacement) is kept.
func (w *sourceWaits) done(k string, uid types.UID) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if sw := w.byObj[w.byPod[k]][k]; sw != nil && sw.uid == uid {
		w.removeLocked(k)
	}
}

func (w *sourceWaits) removeLocked(k string) {
	obj, ok := w.byPod[k]
	if !ok {
		return
	}
	delete(w.byPod, k)
	delete(w.byObj[obj], k)
	if len(w.byObj[obj]) == 0 {
		delete(w.byObj, obj)
	}
}

// take returns the pods waiting for obj whose next attempt had not started
// yet (their timers stopped), and forgets them.
func (w *sourceWaits) take(obj string) map[string]types.UID {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out map[string]types.UID
	for k, sw := range w.byObj[obj] {
		if sw.timer.Stop() {
			if out == nil {
				out = map[string]types.UID{}
			}
			out[k] = sw.uid
		}
		delete(w.byPod, k)
	}
	delete(w.byObj, obj)
	return out
}

// waiting is how many pods wait for a ConfigMap or Secret.
func (w *sourceWaits) waiting() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.byPod)
}

// SourceChanged tells the provider that ConfigMap or Secret (kind
// translate.KindConfigMap or KindSecret) namespace/name was created or
// changed: the pods waiting for it are attempted at once, as a kubelet
// starts a pod once its ConfigMap exists. The node's informers call it.
func (p *Provider) SourceChanged(kind, namespace, name string) {
	for k, uid := range p.sources.take(sourceKey(kind, namespace, name)) {
		go p.retry(k, uid)
	}
}

// CoreRecorder wraps the recorder given to the virtual-kubelet core so
// that it records ProviderCreateSuccess only for a pod that has a group.
// The core records that event whenever CreatePod returns nil, and CreatePod
// returns nil for pods it keeps without a group: waiting for a ConfigMap
// or Secret, retried after a stock-out or a cloud error, or refused and
// Failed (a DaemonSet pod). An error instead would have the core write the
// pod's status itself (Pending, or Failed for restartPolicy Never,
// "ProviderFailed") over the provider's reason, and requeue it.
func (p *Provider) CoreRecorder(r record.EventRecorder) record.EventRecorder {
	return &coreRecorder{EventRecorder: r, p: p}
}

type coreRecorder struct {
	record.EventRecorder
	p *Provider
}

func (c *coreRecorder) Event(obj runtime.Object, typ, reason, message string) {
	if reason == eventProviderCreateSuccess {
		if pod, ok := obj.(*corev1.Pod); ok && !c.p.hasGroup(pod) {
			return
		}
	}
	c.EventRecorder.Event(obj, typ, reason, message)
}

// hasGroup reports whether the provider holds a container group for pod
// (this UID).
func (p *Provider) hasGroup(pod *corev1.Pod) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	e := p.pods[key(pod.Namespace, pod.Name)]
	return e != nil && e.groupID != "" && e.pod.UID == pod.UID
}
