// Package nodeaccess gives a virtual node of a self-managed cluster its
// identity: the RBAC the vendor's documentation lists, a bootstrap token
// (TLS bootstrapping, rotatable) or a ServiceAccount token, and a
// self-contained kubeconfig (vnode-config) with the cluster CA inlined.
// It replaces the vendor's vnode-deploy.sh; `vnodectl kubeconfig` wires it.
//
// Every object it creates carries LabelManagedBy=ManagedByValue so that a
// second run finds and reuses (or rotates) them instead of piling up
// tokens.
package nodeaccess

import (
	"context"
	"fmt"
	"slices"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Identity names. The node group and CN prefix are the ones vnode-approver
// approves by default (pkg/approver DefaultPolicy): a virtual node named
// vn1 authenticates as system:vnode:vn1 in group system:vnodes once TLS
// bootstrapping has issued its certificate.
const (
	// NodeGroup is the group (certificate organisation) of every virtual
	// node; the node permissions are bound to it.
	NodeGroup = "system:vnodes"
	// NodeCNPrefix prefixes the node name in the certificate's common name.
	NodeCNPrefix = "system:vnode:"
	// BootstrapGroup is the extra group of the bootstrap token
	// (auth-extra-groups). Bootstrap token groups must start with
	// "system:bootstrappers:"; a group of our own means only our token may
	// ask for virtual-node certificates, not every kubeadm join token.
	BootstrapGroup = "system:bootstrappers:vnode"
	// Namespace holds the bootstrap token Secret and the ServiceAccount,
	// as the vendor's script does (the kubeconfig's namespace too).
	Namespace = metav1.NamespaceSystem
	// ServiceAccountName is the ServiceAccount of serviceaccount mode.
	ServiceAccountName = "vnode"
	// UserName is the kubeconfig user entry name in vnode-config.
	UserName = "vnode"

	// LabelManagedBy marks every object vnodectl owns.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByValue is the value of LabelManagedBy.
	ManagedByValue = "vnodectl"
	// LabelTokenMode tells the bootstrap token Secret apart from the
	// ServiceAccount token Secret among vnodectl's objects.
	LabelTokenMode = "vnode.alibabacloud.com/token-mode"

	// ExtraRoleName is the ClusterRole with the permissions beyond the
	// built-in roles.
	ExtraRoleName = "ack-virtual-node:vnode"
	// LeasesRoleName is the Role (and RoleBinding) in kube-system for the
	// ownership and membership Leases replicas share nodes through
	// (pkg/ownership, POD_NAMESPACE, default kube-system).
	LeasesRoleName = "ack-virtual-node:vnode-leases"
	// bindingPrefix prefixes every ClusterRoleBinding vnodectl creates.
	bindingPrefix = "ack-virtual-node:vnode:"
)

// Built-in ClusterRoles the seeds list as the standard permissions.
const (
	RoleNode             = "system:node"
	RoleNodeProxier      = "system:node-proxier"
	RoleNodeBootstrapper = "system:node-bootstrapper"
	RoleNodeClient       = "system:certificates.k8s.io:certificatesigningrequests:nodeclient"
	RoleSelfNodeClient   = "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient"
)

// Mode is how the virtual node authenticates.
type Mode string

// The two modes of the vendor's script: "bootstrap" (TLS bootstrapping,
// certificate rotation) and "common" (ServiceAccount token).
const (
	ModeBootstrap      Mode = "bootstrap"
	ModeServiceAccount Mode = "serviceaccount"
)

// ParseMode accepts the mode names, including the vendor script's "common".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "bootstrap":
		return ModeBootstrap, nil
	case "serviceaccount", "common":
		return ModeServiceAccount, nil
	}
	return "", fmt.Errorf("--mode %q: use bootstrap (TLS bootstrapping, certificates rotate; recommended) or serviceaccount (a token that cannot rotate)", s)
}

func managedLabels() map[string]string { return map[string]string{LabelManagedBy: ManagedByValue} }

// ExtraRole is the ClusterRole for what the built-in roles do not grant:
// pods and persistentvolumeclaims update/patch (annotations such as
// k8s.aliyun.com/eci-instance-id), reading the kube-system namespace (the
// controller derives CLUSTER_ID from its UID), and with extraPrivilege the
// endpoints create/update that 1.13 clusters need for leader election.
func ExtraRole(extraPrivilege bool) *rbacv1.ClusterRole {
	rules := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"update", "patch"}},
		{APIGroups: []string{""}, Resources: []string{"persistentvolumeclaims"}, Verbs: []string{"update", "patch"}},
		{APIGroups: []string{""}, Resources: []string{"namespaces"}, ResourceNames: []string{metav1.NamespaceSystem}, Verbs: []string{"get"}},
	}
	if extraPrivilege {
		rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"endpoints"}, Verbs: []string{"create", "update"}})
	}
	return &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: ExtraRoleName, Labels: managedLabels()},
		Rules:      rules,
	}
}

// LeasesRole is the kube-system Role for pkg/ownership's Leases, kept out
// of the ClusterRole so the node cannot touch Leases anywhere else.
func LeasesRole() *rbacv1.Role {
	return &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: LeasesRoleName, Namespace: Namespace, Labels: managedLabels()},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "list", "create", "update", "delete"}},
		},
	}
}

// Permission is one verb on one resource the node needs, checked by
// `vnodectl doctor` with a SelfSubjectAccessReview.
type Permission struct {
	Verb        string `json:"verb"`
	Group       string `json:"group,omitempty"`
	Resource    string `json:"resource"`
	Subresource string `json:"subresource,omitempty"`
	// Namespace is set for checks of one namespace (kube-system).
	Namespace string `json:"namespace,omitempty"`
	// Name is set for checks of one object.
	Name string `json:"name,omitempty"`
}

// String renders the permission as "verb resource[/sub]" with its group.
func (p Permission) String() string {
	r := p.Resource
	if p.Group != "" {
		r += "." + p.Group
	}
	if p.Subresource != "" {
		r += "/" + p.Subresource
	}
	s := p.Verb + " " + r
	if p.Name != "" {
		s += " " + p.Name
	}
	if p.Namespace != "" {
		s += " in " + p.Namespace
	}
	return s
}

// NodePermissions are the API calls a running virtual node makes (Node
// and Lease upkeep, pod sync and status, the kubelet's volume and env
// sources, annotations, events, certificate renewal).
func NodePermissions(extraPrivilege bool) []Permission {
	p := []Permission{
		{Verb: "get", Resource: "nodes"}, {Verb: "create", Resource: "nodes"}, {Verb: "update", Resource: "nodes"}, {Verb: "patch", Resource: "nodes"},
		{Verb: "patch", Resource: "nodes", Subresource: "status"}, {Verb: "update", Resource: "nodes", Subresource: "status"},
		{Verb: "get", Group: "coordination.k8s.io", Resource: "leases", Namespace: corev1.NamespaceNodeLease},
		{Verb: "create", Group: "coordination.k8s.io", Resource: "leases", Namespace: corev1.NamespaceNodeLease},
		{Verb: "update", Group: "coordination.k8s.io", Resource: "leases", Namespace: corev1.NamespaceNodeLease},
		{Verb: "list", Resource: "pods"}, {Verb: "watch", Resource: "pods"}, {Verb: "get", Resource: "pods"}, {Verb: "delete", Resource: "pods"},
		{Verb: "update", Resource: "pods"}, {Verb: "patch", Resource: "pods"},
		{Verb: "update", Resource: "pods", Subresource: "status"}, {Verb: "patch", Resource: "pods", Subresource: "status"},
		{Verb: "list", Resource: "configmaps"}, {Verb: "watch", Resource: "configmaps"},
		{Verb: "list", Resource: "secrets"}, {Verb: "watch", Resource: "secrets"},
		{Verb: "list", Resource: "services"}, {Verb: "watch", Resource: "services"},
		{Verb: "get", Resource: "persistentvolumeclaims"}, {Verb: "update", Resource: "persistentvolumeclaims"}, {Verb: "patch", Resource: "persistentvolumeclaims"},
		{Verb: "get", Resource: "persistentvolumes"},
		{Verb: "create", Resource: "serviceaccounts", Subresource: "token"},
		// The kube-proxy of ECI pods (EnsureKubeProxyIdentity).
		{Verb: "create", Resource: "serviceaccounts", Subresource: "token", Namespace: Namespace, Name: KubeProxyServiceAccountName},
		{Verb: "create", Resource: "events"}, {Verb: "patch", Resource: "events"},
		{Verb: "get", Resource: "namespaces", Name: metav1.NamespaceSystem},
		{Verb: "create", Group: certificatesv1.GroupName, Resource: "certificatesigningrequests"},
		{Verb: "create", Group: certificatesv1.GroupName, Resource: "certificatesigningrequests", Subresource: "selfnodeclient"},
	}
	for _, v := range LeasesRole().Rules[0].Verbs {
		p = append(p, Permission{Verb: v, Group: "coordination.k8s.io", Resource: "leases", Namespace: Namespace})
	}
	if extraPrivilege {
		p = append(p, Permission{Verb: "create", Resource: "endpoints"}, Permission{Verb: "update", Resource: "endpoints"})
	}
	return p
}

// BootstrapPermissions are what a bootstrap token must allow: creating
// and watching its CSR, and the nodeclient subresource vnode-approver
// checks before approving a new certificate.
func BootstrapPermissions() []Permission {
	return []Permission{
		{Verb: "create", Group: certificatesv1.GroupName, Resource: "certificatesigningrequests"},
		{Verb: "get", Group: certificatesv1.GroupName, Resource: "certificatesigningrequests"},
		{Verb: "watch", Group: certificatesv1.GroupName, Resource: "certificatesigningrequests"},
		{Verb: "create", Group: certificatesv1.GroupName, Resource: "certificatesigningrequests", Subresource: "nodeclient"},
	}
}

// binding is one ClusterRoleBinding vnodectl manages.
type binding struct {
	name, role string
	subject    rbacv1.Subject
}

// bindings returns the ClusterRoleBindings a mode needs. The node's
// permissions go to group system:vnodes (bootstrap) or the ServiceAccount
// kube-system/vnode; the bootstrap token group gets only CSR creation and
// nodeclient.
func bindings(mode Mode) []binding {
	node := rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: NodeGroup}
	if mode == ModeServiceAccount {
		node = rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: ServiceAccountName, Namespace: Namespace}
	}
	out := []binding{
		{bindingPrefix + "node", RoleNode, node},
		{bindingPrefix + "node-proxier", RoleNodeProxier, node},
		{bindingPrefix + "selfnodeclient", RoleSelfNodeClient, node},
		{bindingPrefix + "extra", ExtraRoleName, node},
	}
	if mode == ModeBootstrap {
		boot := rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: BootstrapGroup}
		out = append(out,
			binding{bindingPrefix + "bootstrapper", RoleNodeBootstrapper, boot},
			binding{bindingPrefix + "nodeclient", RoleNodeClient, boot},
		)
	}
	return out
}

// BindingNames lists the ClusterRoleBindings EnsureRBAC manages for mode.
func BindingNames(mode Mode) []string {
	var out []string
	for _, b := range bindings(mode) {
		out = append(out, b.name)
	}
	return out
}

// EnsureRBAC creates or updates the extra ClusterRole and the bindings of
// mode. A binding that exists keeps its other subjects (running both modes
// on one cluster must not revoke the first), and a subject already there is
// not added twice. It returns one line per change for the user.
func EnsureRBAC(ctx context.Context, kube kubernetes.Interface, mode Mode, extraPrivilege bool) ([]string, error) {
	var changes []string
	roles := kube.RbacV1().ClusterRoles()
	want := ExtraRole(extraPrivilege)
	cur, err := roles.Get(ctx, want.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if _, err := roles.Create(ctx, want, metav1.CreateOptions{}); err != nil {
			return changes, fmt.Errorf("create ClusterRole %s: %w", want.Name, err)
		}
		changes = append(changes, "created ClusterRole "+want.Name)
	case err != nil:
		return changes, fmt.Errorf("get ClusterRole %s: %w", want.Name, err)
	default:
		rules := want.Rules
		if !extraPrivilege && hasEndpointsRule(cur.Rules) {
			// Never take away what an earlier --extra-privilege run granted
			// a 1.13 cluster's node: it would stop electing its leader.
			rules = ExtraRole(true).Rules
		}
		if !rulesEqual(cur.Rules, rules) {
			cur.Rules = rules
			if _, err := roles.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
				return changes, fmt.Errorf("update ClusterRole %s: %w", want.Name, err)
			}
			changes = append(changes, "updated ClusterRole "+want.Name)
		}
	}
	more, err := ensureLeasesRole(ctx, kube, bindings(mode)[0].subject)
	changes = append(changes, more...)
	if err != nil {
		return changes, err
	}
	more, err = EnsureKubeProxyIdentity(ctx, kube, Namespace)
	changes = append(changes, more...)
	if err != nil {
		return changes, err
	}
	for _, b := range bindings(mode) {
		more, err := ensureClusterRoleBinding(ctx, kube, b.name, b.role, b.subject)
		changes = append(changes, more...)
		if err != nil {
			return changes, err
		}
	}
	return changes, nil
}

// ensureClusterRoleBinding makes the ClusterRoleBinding name bind role to
// subject, keeping the other subjects of an existing binding; one bound to
// another role is replaced (roleRef is immutable). It returns one line per
// change.
func ensureClusterRoleBinding(ctx context.Context, kube kubernetes.Interface, name, role string, subject rbacv1.Subject) ([]string, error) {
	crbs := kube.RbacV1().ClusterRoleBindings()
	cur, err := crbs.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err := crbs.Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: managedLabels()},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{subject},
		}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			// Created meanwhile (another run): check it as found.
			return ensureClusterRoleBinding(ctx, kube, name, role, subject)
		}
		if err != nil {
			return nil, fmt.Errorf("create ClusterRoleBinding %s: %w", name, err)
		}
		return []string{fmt.Sprintf("created ClusterRoleBinding %s (%s to %s %s)", name, role, subject.Kind, subjectName(subject))}, nil
	case err != nil:
		return nil, fmt.Errorf("get ClusterRoleBinding %s: %w", name, err)
	case cur.RoleRef.Name != role:
		if err := crbs.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("replace ClusterRoleBinding %s (role %s, want %s): %w", name, cur.RoleRef.Name, role, err)
		}
		more, err := ensureClusterRoleBinding(ctx, kube, name, role, subject)
		return append([]string{fmt.Sprintf("deleted ClusterRoleBinding %s (it bound %s, not %s)", name, cur.RoleRef.Name, role)}, more...), err
	case !slices.Contains(cur.Subjects, subject):
		cur.Subjects = append(cur.Subjects, subject)
		if _, err := crbs.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			return nil, fmt.Errorf("update ClusterRoleBinding %s: %w", name, err)
		}
		return []string{fmt.Sprintf("added %s %s to ClusterRoleBinding %s", subject.Kind, subjectName(subject), name)}, nil
	}
	return nil, nil
}

// ensureLeasesRole creates or updates the Leases Role and binds it to the
// node's subject, keeping other subjects.
func ensureLeasesRole(ctx context.Context, kube kubernetes.Interface, subject rbacv1.Subject) ([]string, error) {
	var changes []string
	want := LeasesRole()
	roles := kube.RbacV1().Roles(Namespace)
	cur, err := roles.Get(ctx, want.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if _, err := roles.Create(ctx, want, metav1.CreateOptions{}); err != nil {
			return changes, fmt.Errorf("create Role %s/%s: %w", Namespace, want.Name, err)
		}
		changes = append(changes, "created Role "+Namespace+"/"+want.Name)
	case err != nil:
		return changes, fmt.Errorf("get Role %s/%s: %w", Namespace, want.Name, err)
	case !rulesEqual(cur.Rules, want.Rules):
		cur.Rules = want.Rules
		if _, err := roles.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			return changes, fmt.Errorf("update Role %s/%s: %w", Namespace, want.Name, err)
		}
		changes = append(changes, "updated Role "+Namespace+"/"+want.Name)
	}
	rbs := kube.RbacV1().RoleBindings(Namespace)
	rb, err := rbs.Get(ctx, want.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err := rbs.Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: want.Name, Namespace: Namespace, Labels: managedLabels()},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: want.Name},
			Subjects:   []rbacv1.Subject{subject},
		}, metav1.CreateOptions{})
		if err != nil {
			return changes, fmt.Errorf("create RoleBinding %s/%s: %w", Namespace, want.Name, err)
		}
		changes = append(changes, fmt.Sprintf("created RoleBinding %s/%s (to %s %s)", Namespace, want.Name, subject.Kind, subjectName(subject)))
	case err != nil:
		return changes, fmt.Errorf("get RoleBinding %s/%s: %w", Namespace, want.Name, err)
	case !slices.Contains(rb.Subjects, subject):
		rb.Subjects = append(rb.Subjects, subject)
		if _, err := rbs.Update(ctx, rb, metav1.UpdateOptions{}); err != nil {
			return changes, fmt.Errorf("update RoleBinding %s/%s: %w", Namespace, want.Name, err)
		}
		changes = append(changes, fmt.Sprintf("added %s %s to RoleBinding %s/%s", subject.Kind, subjectName(subject), Namespace, want.Name))
	}
	return changes, nil
}

func subjectName(s rbacv1.Subject) string {
	if s.Namespace != "" {
		return s.Namespace + "/" + s.Name
	}
	return s.Name
}

func hasEndpointsRule(rules []rbacv1.PolicyRule) bool {
	for _, r := range rules {
		if slices.Contains(r.Resources, "endpoints") {
			return true
		}
	}
	return false
}

func rulesEqual(a, b []rbacv1.PolicyRule) bool {
	return slices.EqualFunc(a, b, func(x, y rbacv1.PolicyRule) bool {
		return slices.Equal(x.APIGroups, y.APIGroups) && slices.Equal(x.Resources, y.Resources) &&
			slices.Equal(x.Verbs, y.Verbs) && slices.Equal(x.ResourceNames, y.ResourceNames) &&
			slices.Equal(x.NonResourceURLs, y.NonResourceURLs)
	})
}
