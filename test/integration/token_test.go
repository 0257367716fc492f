package integration

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator"
	"github.com/ack-virtual-node/ack-virtual-node/test/testenv"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// saToken returns the projected service-account token the simulator holds
// for the group.
func saToken(t *testing.T, sim *simulator.Simulator, groupID string) string {
	t.Helper()
	for k, v := range simFiles(t, sim, groupID) {
		if strings.HasPrefix(k, "kube-api-access-") && strings.HasSuffix(k, "/token") {
			return v
		}
	}
	t.Fatalf("group %s has no projected token", groupID)
	return ""
}

// TestTokenRefresh shows the projected service-account token is renewed in
// the running group, in place: the pod is not restarted and the container
// reads the new, valid token.
func TestTokenRefresh(t *testing.T) {
	t.Parallel()
	nodeName := uniqueName("vk-token")
	env := startShared(t, testenv.Options{})
	cfg := env.NodeConfig(t, nodeName)
	cfg.TokenRefreshFraction = 0.002 // ~7 s of a one-hour token
	env.StartNode(t, cfg)
	kube, ctx, ns := env.Kube, context.Background(), uniqueName("tokens")
	createNamespace(t, kube, ns)
	tpl := onVirtualNode(nodeName, nil, corev1.RestartPolicyAlways, "sh", "-c", "while true; do sleep 1; done")
	if _, err := kube.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "reader"}, Spec: tpl.Spec}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var pod *corev1.Pod
	poll(t, "pod Running", 60*time.Second, func(ctx context.Context) (bool, error) {
		p, err := kube.CoreV1().Pods(ns).Get(ctx, "reader", metav1.GetOptions{})
		pod = p
		return err == nil && p.Status.Phase == corev1.PodRunning, err
	})
	groupID := pod.Annotations[translate.AnnotationInstanceID]
	first := saToken(t, env.Simulator, groupID)
	var renewed string
	poll(t, "a renewed token in the group", 60*time.Second, func(ctx context.Context) (bool, error) {
		renewed = saToken(t, env.Simulator, groupID)
		return renewed != first, nil
	})
	review, err := kube.AuthenticationV1().TokenReviews().Create(ctx, &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: renewed}}, metav1.CreateOptions{})
	if err != nil || !review.Status.Authenticated {
		t.Fatalf("renewed token not valid: %+v %v", review, err)
	}
	poll(t, "the container reading the renewed token", 30*time.Second, func(ctx context.Context) (bool, error) {
		out, err := exec.CommandContext(ctx, "kubectl", "--kubeconfig", env.ControlPlane.Kubeconfig(), "-n", ns, "exec", "reader", "--",
			"cat", "/var/run/secrets/kubernetes.io/serviceaccount/token").CombinedOutput()
		if err != nil {
			return false, fmt.Errorf("kubectl exec: %v: %s", err, out)
		}
		current := saToken(t, env.Simulator, groupID)
		// The simulator's output is line-based: cat ends with a newline.
		if strings.TrimSuffix(string(out), "\n") != current {
			return false, fmt.Errorf("container reads %.40q..., group holds %.40q...", out, current)
		}
		return current != first, nil
	})
	g, _ := env.Simulator.Group(groupID)
	if g.Status != simulator.StatusRunning {
		t.Errorf("group status %s after renewal, want Running", g.Status)
	}
	for _, c := range g.Containers {
		if c.RestartCount != 0 {
			t.Errorf("container %s restarted %d times: the renewal must not restart the pod", c.Name, c.RestartCount)
		}
	}
	// The published UpdateContainerGroup takes no file modes: the renewed
	// files keep the mode the group was created with (the pod's
	// defaultMode).
	checked := 0
	for _, v := range pod.Spec.Volumes {
		if !strings.HasPrefix(v.Name, "kube-api-access-") || v.Projected == nil || v.Projected.DefaultMode == nil {
			continue
		}
		checked++
		found := false
		for _, gv := range g.Volumes {
			if gv.Name == v.Name {
				found = true
				if gv.ConfigFileVolumeDefaultMode != int(*v.Projected.DefaultMode) {
					t.Errorf("volume %s has mode %o after renewal, want the pod's defaultMode %o", v.Name, gv.ConfigFileVolumeDefaultMode, *v.Projected.DefaultMode)
				}
			}
		}
		if !found {
			t.Errorf("the group has no volume %s", v.Name)
		}
	}
	if checked == 0 {
		t.Errorf("the pod has no kube-api-access volume with a defaultMode: %+v", pod.Spec.Volumes)
	}
}
