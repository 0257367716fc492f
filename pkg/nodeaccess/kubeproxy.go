package nodeaccess

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// KubeProxyServiceAccountName is the ServiceAccount kube-proxy in ECI pods
// runs as, in the controller's namespace (POD_NAMESPACE, default
// kube-system): the virtual node mints its tokens, the chart and
// `vnodectl kubeconfig` create it.
const KubeProxyServiceAccountName = "ack-virtual-node-kube-proxy"

// KubeProxyBindingName is the ClusterRoleBinding that gives the kube-proxy
// of ECI pods (ServiceAccount KubeProxyServiceAccountName) the
// built-in system:node-proxier and nothing more: list and watch Services,
// EndpointSlices and Nodes, and events. The virtual node mints its tokens
// (TokenRequest) and never lends it its own credentials.
const KubeProxyBindingName = "ack-virtual-node:kube-proxy"

// KubeProxyServiceAccount is the ServiceAccount kube-proxy in ECI pods
// runs as, in namespace (the controller's, POD_NAMESPACE).
func KubeProxyServiceAccount(namespace string) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: KubeProxyServiceAccountName, Namespace: namespace, Labels: managedLabels()},
		// Its tokens come from the TokenRequest API only.
		AutomountServiceAccountToken: new(bool)}
}

// KubeProxySubject is the binding subject of that ServiceAccount.
func KubeProxySubject(namespace string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: KubeProxyServiceAccountName, Namespace: namespace}
}

// EnsureKubeProxyIdentity creates the ServiceAccount and binds it to
// system:node-proxier (keeping other subjects of an existing binding). It
// returns one line per change.
func EnsureKubeProxyIdentity(ctx context.Context, kube kubernetes.Interface, namespace string) ([]string, error) {
	var changes []string
	sa := KubeProxyServiceAccount(namespace)
	_, err := kube.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{})
	switch {
	case err == nil:
		changes = append(changes, "created ServiceAccount "+namespace+"/"+sa.Name)
	case !apierrors.IsAlreadyExists(err):
		return changes, fmt.Errorf("create ServiceAccount %s/%s: %w", namespace, sa.Name, err)
	}
	more, err := ensureClusterRoleBinding(ctx, kube, KubeProxyBindingName, RoleNodeProxier, KubeProxySubject(namespace))
	return append(changes, more...), err
}
