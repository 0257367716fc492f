package virtualnode

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/config"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/drain"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/ownership"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
)

// The StatefulSet form (seed 001: `kubectl -n kube-system scale statefulset
// virtual-node-eci --replicas=N` gives nodes virtual-node-eci-0..N-1): each
// ordinal pod runs its own node. A pod that receives SIGTERM while its
// ordinal is at or above the StatefulSet's spec.replicas is being scaled
// away, and nobody would serve its node again: before it stops, it drains
// the node (cordon, delete its pods so their controllers recreate them on
// the other nodes, wait for their groups to go, delete the groups left) and,
// once nothing is left, deletes the Node (its heartbeat Lease goes with it)
// and its ownership Lease. Any other SIGTERM (a rolling update, a deleted
// or evicted pod, the StatefulSet deleted, a node drained) keeps everything,
// and the pod that comes back under the same name takes its node back.

// AnnotationScaleDownDrain is on a Node that a StatefulSet pod scaled away
// cordoned to drain it (the value is the pod). A drain that finishes
// deletes the Node; when one did not finish and the node is served again
// (the StatefulSet scaled back up), the node uncordons itself and drops
// the annotation. A cordon without it is the user's and is kept.
const AnnotationScaleDownDrain = "alibabacloud.com/scale-down-drain"

// uncordonScaledDown undoes the cordon of an unfinished scale-down drain on
// a node that is about to be served again.
func uncordonScaledDown(ctx context.Context, kube kubernetes.Interface, name string) error {
	n, err := kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read node %s: %w", name, err)
	}
	by, ok := n.Annotations[AnnotationScaleDownDrain]
	if !ok {
		return nil
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:null}},"spec":{"unschedulable":false}}`, AnnotationScaleDownDrain)
	if _, err := kube.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("uncordon node %s after an unfinished scale-down drain: %w", name, err)
	}
	klog.FromContext(ctx).Info("served again after an unfinished scale-down drain: uncordoned the node", "node", name, "drainedBy", by)
	return nil
}

// statefulSetSet is the ownership node-set id of a StatefulSet's ordinal
// pods: they run their own nodes but split the account's quota as one set.
func statefulSetSet(cfg *config.Config) string {
	return ownership.SetID([]string{"statefulset/" + cfg.PodNamespace + "/" + cfg.StatefulSet})
}

// scaleDown is the scale-down of one ordinal pod.
type scaleDown struct {
	cfg       *config.Config
	kube      kubernetes.Interface
	cloud     drain.Cloud
	clusterID string
	recorder  record.EventRecorder

	mu    sync.Mutex
	clean []string // nodes drained with nothing left
}

// ScaledAway reports whether the ordinal pod podName of StatefulSet
// namespace/statefulSet is being scaled away (its ordinal is not below
// spec.replicas), and why. Whatever it cannot establish counts as not
// scaled away: keeping a node is always safe, draining one is not.
func ScaledAway(ctx context.Context, kube kubernetes.Interface, namespace, statefulSet, podName string, ordinal int) (bool, string) {
	_, away, why := scaledAway(ctx, kube, namespace, statefulSet, podName, ordinal)
	return away, why
}

// scaledAway is ScaledAway that also returns the StatefulSet read.
func scaledAway(ctx context.Context, kube kubernetes.Interface, namespace, statefulSet, podName string, ordinal int) (*appsv1.StatefulSet, bool, string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	sts, err := kube.AppsV1().StatefulSets(namespace).Get(ctx, statefulSet, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, false, fmt.Sprintf("StatefulSet %s/%s not found: deleting the StatefulSet is not a scale-down, its nodes, pods and groups are kept (drain them first: virtual-node drain)", namespace, statefulSet)
	case err != nil:
		return nil, false, fmt.Sprintf("cannot read StatefulSet %s/%s (%v): keeping the nodes", namespace, statefulSet, err)
	case sts.DeletionTimestamp != nil:
		return nil, false, fmt.Sprintf("StatefulSet %s/%s is being deleted: not a scale-down, its nodes, pods and groups are kept", namespace, statefulSet)
	}
	replicas := int32(1)
	if sts.Spec.Replicas != nil {
		replicas = *sts.Spec.Replicas
	}
	if int32(ordinal) < replicas {
		return nil, false, fmt.Sprintf("ordinal %d is within the %d replicas of StatefulSet %s/%s: a restart, the pod that comes back takes its nodes back", ordinal, replicas, namespace, statefulSet)
	}
	// The pod is normally still there (terminating); if it is, it must be
	// this StatefulSet's.
	pod, err := kube.CoreV1().Pods(namespace).Get(ctx, podName, metav1.GetOptions{})
	if err == nil {
		if ref := metav1.GetControllerOf(pod); ref == nil || ref.Kind != "StatefulSet" || ref.Name != statefulSet {
			return nil, false, fmt.Sprintf("pod %s/%s is not controlled by StatefulSet %s: keeping the nodes", namespace, podName, statefulSet)
		}
	}
	return sts, true, fmt.Sprintf("ordinal %d is not within the %d replicas of StatefulSet %s/%s: scaled away", ordinal, replicas, namespace, statefulSet)
}

// beforeStop runs when the pod is asked to stop, while its nodes still run:
// it drains them if the pod is being scaled away.
func (s *scaleDown) beforeStop(ctx context.Context) {
	logger := klog.FromContext(ctx)
	sts, away, why := scaledAway(ctx, s.kube, s.cfg.PodNamespace, s.cfg.StatefulSet, s.cfg.PodName, s.cfg.Ordinal)
	names := s.cfg.NodeNames()
	if !away {
		logger.Info("stopping without draining", "reason", why, "nodes", names)
		return
	}
	timeout := s.cfg.ScaleDownTimeout
	logger.Info("scaled away: draining the nodes before stopping, so no pod or group is left that nobody serves", "reason", why, "nodes", names, "timeout", timeout)
	dctx, cancel := context.WithTimeout(ctx, timeout+30*time.Second)
	defer cancel()
	// Say on each Node who cordons it, so the ordinal that serves it
	// again after an unfinished drain (killed at the end of its grace
	// period, then scaled back up) uncordons it.
	for _, n := range names {
		patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, AnnotationScaleDownDrain, s.cfg.PodName)
		if _, err := s.kube.CoreV1().Nodes().Patch(dctx, n, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
			logger.Error(err, "cannot mark the node as drained for a scale-down", "node", n)
		}
	}
	rep, err := drain.Run(dctx, drain.Options{
		Kube: s.kube, Cloud: s.cloud, ClusterID: s.clusterID, Nodes: names,
		PodTimeout: timeout * 2 / 3, GroupTimeout: timeout / 3,
	})
	if err != nil {
		logger.Error(err, "scale-down drain could not run: the nodes are kept")
		return
	}
	var out strings.Builder
	rep.Write(&out)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range rep.Nodes {
		if len(n.GroupsLeft) == 0 && len(n.PodsLeft) == 0 && len(n.Errors) == 0 {
			s.clean = append(s.clean, n.Node)
			continue
		}
		s.recorder.Eventf(nodeRef(n.Node), corev1.EventTypeWarning, "ScaleDownDrainIncomplete",
			"pod %s was scaled away but could not empty node %s: %d pods and %d container groups left (%s); the node stays, cordoned: "+
				"scale the StatefulSet back up to serve it, or run `virtual-node drain %s`, then `kubectl uncordon` or `kubectl delete node`",
			s.cfg.PodName, n.Node, len(n.PodsLeft), len(n.GroupsLeft), summary(n), n.Node)
	}
	logger.Info("scale-down drain finished", "report", out.String(), "drained", s.clean)
	if len(s.clean) > 0 {
		pods, groups := 0, 0
		for _, n := range rep.Nodes {
			pods += len(n.PodsDeleted) + len(n.PodsForceDeleted)
			groups += len(n.GroupsGone) + len(n.GroupsDeleted)
		}
		ref := &corev1.ObjectReference{Kind: "StatefulSet", APIVersion: "apps/v1", Namespace: sts.Namespace, Name: sts.Name, UID: sts.UID}
		s.recorder.Eventf(ref, corev1.EventTypeNormal, "VirtualNodeScaledDown",
			"pod %s was scaled away and drained nodes %s: %d pods deleted (their controllers recreate them on the other nodes), %d container groups deleted, none left",
			s.cfg.PodName, strings.Join(s.clean, ", "), pods, groups)
	}
}

// summary is what a node's drain left, short enough for an event.
func summary(n drain.NodeReport) string {
	var parts []string
	for _, g := range n.GroupsLeft {
		parts = append(parts, "group "+g.ID+": "+g.Why)
	}
	parts = append(parts, n.PodsLeft...)
	parts = append(parts, n.Errors...)
	if len(parts) > 3 {
		parts = append(parts[:3], fmt.Sprintf("and %d more", len(parts)-3))
	}
	return strings.Join(parts, "; ")
}

// removeNodes deletes, once the nodes have stopped and their Leases are
// released, the Node and the ownership Lease of every node drained clean:
// nobody will serve them again, and a scale-up registers them afresh. A
// Node that is not cordoned any more, or a Lease someone holds, is left.
func (s *scaleDown) removeNodes(ctx context.Context) {
	s.mu.Lock()
	nodes := append([]string(nil), s.clean...)
	s.mu.Unlock()
	if len(nodes) == 0 {
		return
	}
	logger := klog.FromContext(ctx)
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for _, name := range nodes {
		n, err := s.kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			logger.Error(err, "cannot read the drained node: it stays registered", "node", name)
		case !n.Spec.Unschedulable:
			logger.Info("the drained node was uncordoned meanwhile: it stays registered", "node", name)
		default:
			err := s.kube.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{Preconditions: metav1.NewUIDPreconditions(string(n.UID))})
			if err != nil && !apierrors.IsNotFound(err) {
				logger.Error(err, "cannot delete the drained node", "node", name)
			} else {
				logger.Info("deleted the drained node", "node", name)
			}
		}
		leases := s.kube.CoordinationV1().Leases(s.cfg.PodNamespace)
		l, err := leases.Get(ctx, ownership.NodeLeaseName(name), metav1.GetOptions{})
		if err != nil {
			if !apierrors.IsNotFound(err) {
				logger.Error(err, "cannot read the drained node's ownership Lease", "node", name)
			}
			continue
		}
		if h := l.Spec.HolderIdentity; h != nil && *h != "" && *h != s.cfg.PodName {
			continue // someone runs the node again
		}
		err = leases.Delete(ctx, l.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &l.UID, ResourceVersion: &l.ResourceVersion}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			logger.Error(err, "cannot delete the drained node's ownership Lease", "node", name, "lease", l.Name)
		}
	}
}

// stopAfter returns a context that ends when parent ends, but only once
// decide has been called and the function it was given (if any) has run
// with that context still alive: a scale-down drain needs its nodes
// running, and a pod scaled away while it was still starting drains too.
// stop ends it at once.
func stopAfter(parent context.Context) (ctx context.Context, stop context.CancelFunc, decide func(func(context.Context))) {
	ctx, stop = context.WithCancel(context.WithoutCancel(parent))
	decided := make(chan struct{})
	var before func(context.Context)
	var once sync.Once
	go func() {
		for _, ch := range []<-chan struct{}{parent.Done(), decided} {
			select {
			case <-ch:
			case <-ctx.Done():
				return
			}
		}
		if before != nil {
			before(ctx)
		}
		stop()
	}()
	return ctx, stop, func(f func(context.Context)) {
		once.Do(func() {
			before = f
			close(decided)
		})
	}
}
