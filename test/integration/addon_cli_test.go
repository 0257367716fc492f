package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/vnodectl"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/vnodectl/addon"
	"github.com/ack-virtual-node/ack-virtual-node/test/controlplane"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestVnodectlAddon drives `vnodectl addon install|status|upgrade|uninstall`
// in-process against the real apiserver with the embedded chart.
func TestVnodectlAddon(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("integration test: skipped with -short")
	}
	// A control plane of its own: the add-on installs a cluster-wide
	// MutatingWebhookConfiguration, RBAC and kube-system/eci-profile.
	cp := controlplane.StartForTest(t, controlplane.Options{})
	kube := cp.Clientset()
	ctx := context.Background()
	run := func(args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		code := vnodectl.Execute(ctx, vnodectl.Options{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }},
			append(args, "--kubeconfig", cp.Kubeconfig()))
		return out.String(), errb.String(), code
	}
	// The drain hook needs a kubelet to run its Job; the CLI's uninstall
	// path is what this test is about (TestAddonLifecycle runs the hook).
	base := []string{"--region", "cn-hangzhou", "--security-group", "sg-aaa", "--set", "drain.enabled=false"}

	steps := []struct {
		name     string
		args     []string
		before   func()
		wantCode int
		want     []string
	}{
		{
			name: "install lists what is missing", args: append([]string{"addon", "install"}, base...), wantCode: 1,
			want: []string{"cannot be installed yet", "vSwitches is empty", "alibaba-addon-secret not found"},
		},
		{
			name: "bad flag value is a usage error", args: []string{"addon", "install", "--set", "vSwitches"}, wantCode: 2, want: []string{"--set vSwitches"},
		},
		{
			// No kubelet runs the pods: not waiting here
			// (TestVnodectlAddonWaits is about the waits).
			name: "install", args: append([]string{"addon", "install", "--wait=false", "--vswitch", "vsw-aaa,vsw-bbb"}, base...),
			before: func() {
				// A profile the user made before the add-on: the release
				// must leave it alone (not adopt, not overwrite, not delete).
				if _, err := kube.CoreV1().ConfigMaps("kube-system").Create(ctx, &corev1.ConfigMap{
					ObjectMeta: metav1.ObjectMeta{Name: "eci-profile"},
					Data:       map[string]string{"vSwitchIds": "vsw-mine"},
				}, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
				if _, err := kube.CoreV1().Secrets("kube-system").Create(ctx, &corev1.Secret{
					ObjectMeta: metav1.ObjectMeta{Name: "alibaba-addon-secret"},
					Data:       map[string][]byte{"access-key-id": []byte("id"), "access-key-secret": []byte("secret")},
				}, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"installed ack-virtual-node", "revision 1", "kubectl run nginx --image nginx -l alibabacloud.com/eci=true"},
		},
		{name: "install twice", args: append([]string{"addon", "install", "--vswitch", "vsw-aaa"}, base...), wantCode: 1, want: []string{"already installed in kube-system: use upgrade"}},
		{name: "status", args: []string{"addon", "status", "-o", "json"}, want: []string{`"status": "deployed"`, `"ack-virtual-node-controller": "0/1"`}},
		{name: "upgrade", args: []string{"addon", "upgrade", "--wait=false", "--vswitch", "vsw-ccc"}, want: []string{"upgraded ack-virtual-node", "revision 2"}},
		{name: "uninstall", args: []string{"addon", "uninstall"}, want: []string{"uninstalled ack-virtual-node"}},
	}
	for _, s := range steps {
		if s.before != nil {
			s.before()
		}
		stdout, stderr, code := run(s.args...)
		if code != s.wantCode {
			t.Fatalf("%s: exit %d, want %d\nstdout: %s\nstderr: %s", s.name, code, s.wantCode, stdout, stderr)
		}
		for _, w := range s.want {
			if !strings.Contains(stdout+stderr, w) {
				t.Errorf("%s: output does not contain %q\nstdout: %s\nstderr: %s", s.name, w, stdout, stderr)
			}
		}
		switch s.name {
		case "install", "upgrade", "uninstall":
			cm, err := kube.CoreV1().ConfigMaps("kube-system").Get(ctx, "eci-profile", metav1.GetOptions{})
			if err != nil || cm.Data["vSwitchIds"] != "vsw-mine" || len(cm.Data) != 1 || cm.Annotations["meta.helm.sh/release-name"] != "" {
				t.Errorf("%s: the user's eci-profile was changed: %v %v %v", s.name, err, cm.Data, cm.Annotations)
			}
		}
		switch s.name {
		case "status":
			var st map[string]any
			if err := json.Unmarshal([]byte(stdout), &st); err != nil {
				t.Errorf("status -o json: %v\n%s", err, stdout)
			}
		case "upgrade":
			d, err := kube.AppsV1().Deployments("kube-system").Get(ctx, addon.ControllerDeployment, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range d.Spec.Template.Spec.Containers[0].Env {
				if e.Name == "ECI_VSWITCH" && e.Value != "vsw-ccc" {
					t.Errorf("after upgrade ECI_VSWITCH=%s, want vsw-ccc", e.Value)
				}
				if e.Name == "ECI_SECURITY_GROUP" && e.Value != "sg-aaa" {
					t.Errorf("after upgrade ECI_SECURITY_GROUP=%s, want the installed sg-aaa (values reused)", e.Value)
				}
			}
		case "uninstall":
			if _, err := kube.AppsV1().Deployments("kube-system").Get(ctx, addon.ControllerDeployment, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("controller Deployment after uninstall: %v", err)
			}
			if _, err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "virtual-node-affinity-admission-controller", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("MutatingWebhookConfiguration after uninstall: %v", err)
			}
			if _, err := kube.CoreV1().ConfigMaps("kube-system").Get(ctx, "eci-profile", metav1.GetOptions{}); err != nil {
				t.Errorf("the user's eci-profile must survive uninstall: %v", err)
			}
		}
	}
}
