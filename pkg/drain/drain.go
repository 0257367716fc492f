// Package drain empties virtual nodes before they go away (an uninstall,
// removing a node): it cordons them, deletes their pods with a bounded
// wait, waits for their container groups to leave the cloud, deletes what
// is left and reports what it deleted and what it could not. The vendor's
// own documentation warns that removing the controller before its pods
// leaves ECI instances running and billed; this is the clean-up that
// prevents it, run by `virtual-node drain` (e.g. from a Helm pre-delete
// hook).
package drain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/cloud"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/config"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/kubeconfig"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// Cloud is the part of the ECI API a drain needs (*eci.Client has it).
type Cloud interface {
	DescribeContainerGroups(ctx context.Context, req *eci.DescribeContainerGroupsRequest) (*eci.DescribeContainerGroupsResponse, error)
	DeleteContainerGroup(ctx context.Context, id string) error
}

// Defaults of Options.
const (
	DefaultPodTimeout   = 2 * time.Minute
	DefaultGroupTimeout = time.Minute
	defaultPoll         = 2 * time.Second
)

// Options select the nodes and bound the waits.
type Options struct {
	// Kube is a client of the cluster.
	Kube kubernetes.Interface
	// Cloud is the ECI client with the controller's credentials.
	Cloud Cloud
	// ClusterID is the ClusterId tag of this cluster's groups. Required:
	// without it the drain could touch another cluster's groups.
	ClusterID string
	// Nodes are the virtual nodes to drain. Required.
	Nodes []string
	// PodTimeout bounds the wait for the pods to be deleted by the
	// controller (default 2m). Pods still there afterwards (no controller
	// runs) lose their groups here and are then removed with grace 0.
	PodTimeout time.Duration
	// GroupTimeout bounds the wait for the groups to leave the cloud
	// before the drain deletes them itself (default 1m).
	GroupTimeout time.Duration
	// Poll is the interval of both waits (default 2s).
	Poll time.Duration
}

// Group is one container group the drain dealt with.
type Group struct {
	ID string
	// Pod is namespace/name from the group's tags.
	Pod string
	// Why a group could not be deleted.
	Why string
}

// NodeReport is what happened on one node.
type NodeReport struct {
	Node string
	// Cordoned is false when the node was not registered (its groups
	// are cleaned up all the same).
	Cordoned bool
	// PodsDeleted were asked to terminate.
	PodsDeleted []string
	// PodsForceDeleted were still there after PodTimeout (no controller
	// to finish them) and were removed with grace 0 once their groups
	// were gone.
	PodsForceDeleted []string
	// PodsLeft could not be removed, with the reason.
	PodsLeft []string
	// GroupsGone left the cloud on their own during the wait (the
	// controller deleted them with their pods).
	GroupsGone []Group
	// GroupsDeleted were deleted by the drain.
	GroupsDeleted []Group
	// GroupsLeft still exist, with the reason.
	GroupsLeft []Group
	// Errors are steps that failed (listing, cordoning).
	Errors []string
}

// Report is the outcome of a drain.
type Report struct {
	Nodes []NodeReport
}

// Clean reports whether nothing was left behind.
func (r *Report) Clean() bool {
	for _, n := range r.Nodes {
		if len(n.GroupsLeft) > 0 || len(n.PodsLeft) > 0 || len(n.Errors) > 0 {
			return false
		}
	}
	return true
}

// Write prints the report for people (the hook Job's log).
func (r *Report) Write(w io.Writer) {
	deleted, left := 0, 0
	for _, n := range r.Nodes {
		state := "cordoned"
		if !n.Cordoned {
			state = "not registered (not cordoned)"
		}
		fmt.Fprintf(w, "node %s: %s\n", n.Node, state)
		list := func(what string, items []string) {
			if len(items) > 0 {
				fmt.Fprintf(w, "  %s (%d): %s\n", what, len(items), strings.Join(items, ", "))
			}
		}
		groups := func(what string, gs []Group) {
			for _, g := range gs {
				line := "  " + what + ": " + g.ID
				if g.Pod != "" {
					line += " (pod " + g.Pod + ")"
				}
				if g.Why != "" {
					line += ": " + g.Why
				}
				fmt.Fprintln(w, line)
			}
		}
		list("pods deleted", n.PodsDeleted)
		list("pods removed after their groups were deleted (no controller finished them)", n.PodsForceDeleted)
		list("pods left", n.PodsLeft)
		groups("group deleted by its controller", n.GroupsGone)
		groups("group deleted by drain", n.GroupsDeleted)
		groups("group LEFT", n.GroupsLeft)
		for _, e := range n.Errors {
			fmt.Fprintf(w, "  error: %s\n", e)
		}
		deleted += len(n.GroupsGone) + len(n.GroupsDeleted)
		left += len(n.GroupsLeft)
	}
	if r.Clean() {
		fmt.Fprintf(w, "drain complete: %d container groups deleted, none left\n", deleted)
	} else {
		fmt.Fprintf(w, "drain INCOMPLETE: %d container groups deleted, %d left (see above)\n", deleted, left)
	}
}

// Run drains every node of opts and returns the report; the error is for
// bad options only, everything else is in the report.
func Run(ctx context.Context, opts Options) (*Report, error) {
	switch {
	case opts.Kube == nil || opts.Cloud == nil:
		return nil, errors.New("drain: a Kubernetes and an ECI client are required")
	case opts.ClusterID == "":
		return nil, errors.New("drain: the cluster id (CLUSTER_ID) is required so that only this cluster's container groups are touched")
	case len(opts.Nodes) == 0:
		return nil, errors.New("drain: no virtual node given (VIRTUAL_NODE_NAME or arguments)")
	}
	if opts.PodTimeout <= 0 {
		opts.PodTimeout = DefaultPodTimeout
	}
	if opts.GroupTimeout <= 0 {
		opts.GroupTimeout = DefaultGroupTimeout
	}
	if opts.Poll <= 0 {
		opts.Poll = defaultPoll
	}
	d := &drainer{opts: opts}
	rep := &Report{}
	// Cordon and ask every node's pods to go first, so the waits of
	// several nodes overlap.
	// The groups are listed before the pods are deleted, so the report
	// can tell the groups the controller deleted from those drain did.
	initial := make([]map[string]Group, len(opts.Nodes))
	for i, node := range opts.Nodes {
		nr := NodeReport{Node: node}
		nr.Cordoned = d.cordon(ctx, &nr)
		var err error
		if initial[i], err = d.groups(ctx, node); err != nil {
			nr.Errors = append(nr.Errors, fmt.Sprintf("list container groups: %v", err))
		}
		d.deletePods(ctx, &nr)
		rep.Nodes = append(rep.Nodes, nr)
	}
	for i := range rep.Nodes {
		d.finish(ctx, &rep.Nodes[i], initial[i])
	}
	return rep, nil
}

type drainer struct{ opts Options }

// cordon marks the node unschedulable so nothing new lands on it.
func (d *drainer) cordon(ctx context.Context, nr *NodeReport) bool {
	_, err := d.opts.Kube.CoreV1().Nodes().Patch(ctx, nr.Node, types.MergePatchType,
		[]byte(`{"spec":{"unschedulable":true}}`), metav1.PatchOptions{})
	switch {
	case err == nil:
		return true
	case apierrors.IsNotFound(err):
		return false
	default:
		nr.Errors = append(nr.Errors, fmt.Sprintf("cordon: %v", err))
		return false
	}
}

func (d *drainer) podsOn(ctx context.Context, node string) ([]corev1.Pod, error) {
	list, err := d.opts.Kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.nodeName", node).String()})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}

// deletePods asks every pod on the node to terminate.
func (d *drainer) deletePods(ctx context.Context, nr *NodeReport) {
	pods, err := d.podsOn(ctx, nr.Node)
	if err != nil {
		nr.Errors = append(nr.Errors, fmt.Sprintf("list pods: %v", err))
		return
	}
	for _, p := range pods {
		name := p.Namespace + "/" + p.Name
		if p.DeletionTimestamp == nil {
			err := d.opts.Kube.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{
				Preconditions: metav1.NewUIDPreconditions(string(p.UID))})
			if err != nil && !apierrors.IsNotFound(err) {
				nr.PodsLeft = append(nr.PodsLeft, fmt.Sprintf("%s (delete: %v)", name, err))
				continue
			}
		}
		nr.PodsDeleted = append(nr.PodsDeleted, name)
	}
}

// groups lists the node's groups of this cluster, by id.
func (d *drainer) groups(ctx context.Context, node string) (map[string]Group, error) {
	out := map[string]Group{}
	req := &eci.DescribeContainerGroupsRequest{Limit: eci.MaxDescribeLimit, Tags: []eci.Tag{
		{Key: translate.TagClusterID, Value: d.opts.ClusterID}, {Key: translate.TagNodeName, Value: node}}}
	for {
		resp, err := d.opts.Cloud.DescribeContainerGroups(ctx, req)
		if err != nil {
			return nil, err
		}
		for _, g := range resp.ContainerGroups {
			pod := ""
			for _, t := range g.Tags {
				if t.Key == translate.TagPodName {
					pod = t.Value
				}
			}
			for _, t := range g.Tags {
				if t.Key == translate.TagPodNamespace && pod != "" {
					pod = t.Value + "/" + pod
				}
			}
			out[g.ContainerGroupId] = Group{ID: g.ContainerGroupId, Pod: pod}
		}
		if resp.NextToken == "" || len(resp.ContainerGroups) == 0 {
			return out, nil
		}
		req.NextToken = resp.NextToken
	}
}

// wait polls cond every Poll until it holds or timeout passes.
func (d *drainer) wait(ctx context.Context, timeout time.Duration, cond func() bool) {
	deadline := time.Now().Add(timeout)
	for !cond() && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(d.opts.Poll):
		}
	}
}

// finish waits for the node's pods and groups, deletes the groups left
// and removes the pods nobody finished.
func (d *drainer) finish(ctx context.Context, nr *NodeReport, initial map[string]Group) {
	logger := klog.FromContext(ctx).WithValues("node", nr.Node)
	var err error
	// A running controller deletes each pod's group and then the pod.
	d.wait(ctx, d.opts.PodTimeout, func() bool {
		pods, err := d.podsOn(ctx, nr.Node)
		return err == nil && len(pods) == 0
	})
	var current map[string]Group
	d.wait(ctx, d.opts.GroupTimeout, func() bool {
		current, err = d.groups(ctx, nr.Node)
		return err == nil && len(current) == 0
	})
	if err != nil {
		nr.Errors = append(nr.Errors, fmt.Sprintf("list container groups: %v", err))
		return
	}
	for id, g := range initial {
		if _, ok := current[id]; !ok {
			nr.GroupsGone = append(nr.GroupsGone, g)
		}
	}
	failed := map[string]string{}
	for id, g := range current {
		err := d.opts.Cloud.DeleteContainerGroup(ctx, id)
		if err != nil && !eci.IsNotFound(err) {
			failed[id] = fmt.Sprintf("%v (class %s)", err, eci.ClassOf(err))
			logger.Error(err, "could not delete container group", "group", id, "pod", g.Pod)
			continue
		}
		logger.Info("deleted container group", "group", id, "pod", g.Pod)
	}
	// Check the cloud itself rather than trusting the answers.
	after, err := d.groups(ctx, nr.Node)
	if err != nil {
		nr.Errors = append(nr.Errors, fmt.Sprintf("list container groups after deleting: %v", err))
		after = current
	}
	for id, g := range current {
		if _, left := after[id]; !left {
			nr.GroupsDeleted = append(nr.GroupsDeleted, g)
			continue
		}
		g.Why = failed[id]
		if g.Why == "" {
			g.Why = "still listed after a delete the cloud accepted"
		}
		nr.GroupsLeft = append(nr.GroupsLeft, g)
	}
	for id, g := range after {
		if _, seen := current[id]; !seen {
			g.Why = "appeared during the drain (is a controller still creating pods on this node?)"
			nr.GroupsLeft = append(nr.GroupsLeft, g)
		}
	}
	// Pods nobody finished: remove them once their group is gone, as the
	// kubelet would once the containers stopped.
	leftPod := map[string]bool{}
	for _, g := range nr.GroupsLeft {
		leftPod[g.Pod] = true
	}
	pods, err := d.podsOn(ctx, nr.Node)
	if err != nil {
		nr.Errors = append(nr.Errors, fmt.Sprintf("list pods: %v", err))
	}
	for _, p := range pods {
		name := p.Namespace + "/" + p.Name
		if leftPod[name] {
			nr.PodsLeft = append(nr.PodsLeft, name+" (its container group is still there)")
			continue
		}
		zero := int64(0)
		err := d.opts.Kube.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{
			GracePeriodSeconds: &zero, Preconditions: metav1.NewUIDPreconditions(string(p.UID))})
		if err != nil && !apierrors.IsNotFound(err) {
			nr.PodsLeft = append(nr.PodsLeft, fmt.Sprintf("%s (remove: %v)", name, err))
			continue
		}
		nr.PodsForceDeleted = append(nr.PodsForceDeleted, name)
	}
	for _, s := range [][]string{nr.PodsDeleted, nr.PodsForceDeleted, nr.PodsLeft} {
		sort.Strings(s)
	}
	for _, gs := range [][]Group{nr.GroupsGone, nr.GroupsDeleted, nr.GroupsLeft} {
		sort.Slice(gs, func(i, j int) bool { return gs[i].ID < gs[j].ID })
	}
}

// FromConfig builds the clients of a drain the way the controller builds
// its own (package cloud: same environment, cluster ID, credentials chain
// and API quotas), so the controller image can run it as a Helm pre-delete
// hook. Nodes default to the
// configured ones (cfg.NodeNames).
func FromConfig(ctx context.Context, cfg *config.Config) (Options, error) {
	restCfg, err := kubeconfig.Load(cfg.Kubeconfig)
	if err != nil {
		return Options{}, err
	}
	kube, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return Options{}, fmt.Errorf("kubernetes client: %w", err)
	}
	clusterID, err := cloud.ClusterID(ctx, cfg, kube)
	if err != nil {
		return Options{}, err
	}
	client, err := cloud.NewClient(cfg, nil, nil)
	if err != nil {
		return Options{}, err
	}
	return Options{Kube: kube, Cloud: client, ClusterID: clusterID, Nodes: cfg.NodeNames()}, nil
}
