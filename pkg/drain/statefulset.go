package drain

import (
	"context"
	"fmt"
	"sort"
	"strconv"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/config"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// StatefulSetNodes are the virtual nodes of the StatefulSet form's
// StatefulSet namespace/name (pod <name>-<i> serves node <name>-<i>):
// <name>-<i> for every ordinal below its spec.replicas, every registered
// Node named <name>-<ordinal> (a pod scaled away whose drain did not finish
// leaves its node registered), and legacy, the Deployment form's nodes
// ordinal 0 still serves (VIRTUAL_NODE_LEGACY_NAMES).
func StatefulSetNodes(ctx context.Context, kube kubernetes.Interface, namespace, name string, legacy []string) ([]string, error) {
	seen := map[string]bool{}
	sts, err := kube.AppsV1().StatefulSets(namespace).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return nil, fmt.Errorf("read StatefulSet %s/%s: %w", namespace, name, err)
	default:
		replicas := 1
		if sts.Spec.Replicas != nil {
			replicas = int(*sts.Spec.Replicas)
		}
		for i := 0; i < replicas; i++ {
			seen[name+"-"+strconv.Itoa(i)] = true
		}
	}
	nodes, err := kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: "type=virtual-kubelet"})
	if err != nil {
		return nil, fmt.Errorf("list the virtual nodes: %w", err)
	}
	for _, n := range nodes.Items {
		if sts, _, ok := config.StatefulSetOrdinal(n.Name); ok && sts == name {
			seen[n.Name] = true
		}
	}
	for _, n := range legacy {
		seen[n] = true
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}
