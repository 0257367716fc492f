package approver

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/kubeversion"
	"github.com/prometheus/client_golang/prometheus/testutil"
	certificatesv1 "k8s.io/api/certificates/v1"
	certificatesv1beta1 "k8s.io/api/certificates/v1beta1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
)

// TestPickCSRVersion: for every supported minor, the version the approver
// picks from what that minor serves (pkg/kubeversion's table, from the
// Kubernetes deprecation guide) is v1 from 1.19 and v1beta1 before.
func TestPickCSRVersion(t *testing.T) {
	for _, minor := range kubeversion.Minors() {
		got, err := pickCSRVersion(func(gv string) (bool, error) {
			g, err := schema.ParseGroupVersion(gv)
			if err != nil {
				return false, err
			}
			ok, known := kubeversion.Served(g.WithKind("CertificateSigningRequest"), minor)
			if !known {
				t.Fatalf("pkg/kubeversion does not know CertificateSigningRequest in %s", gv)
			}
			return ok, nil
		})
		want := CSRv1
		if minor < 19 {
			want = CSRv1beta1
		}
		if err != nil || got != want {
			t.Errorf("Kubernetes 1.%d: picked %q (%v), want %s", minor, got, err, want)
		}
	}
	_, err := pickCSRVersion(func(string) (bool, error) { return false, nil })
	if err == nil || !strings.Contains(err.Error(), "neither") {
		t.Errorf("no CSR API: %v, want an error saying neither version is served", err)
	}
	_, err = pickCSRVersion(func(gv string) (bool, error) { return false, fmt.Errorf("discovery of %s refused", gv) })
	if err == nil || !strings.Contains(err.Error(), CSRv1) {
		t.Errorf("discovery error: %v, want it named with the group/version", err)
	}
}

// TestDiscoverCSRAPI: on the real apiserver (1.30) discovery picks v1.
func TestDiscoverCSRAPI(t *testing.T) {
	got, err := discoverCSRAPI(controlPlane(t).Clientset())
	if err != nil {
		t.Fatal(err)
	}
	if got.GroupVersion() != CSRv1 {
		t.Errorf("picked %s on Kubernetes 1.30, want %s", got.GroupVersion(), CSRv1)
	}
}

// TestV1beta1Conversion: every field survives v1beta1 -> v1 -> v1beta1,
// and a CSR without signerName (a cluster before 1.18) reads as the
// kube-apiserver-client signer.
func TestV1beta1Conversion(t *testing.T) {
	signer := certificatesv1.KubeAPIServerClientSignerName
	exp := int32(3600)
	in := &certificatesv1beta1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "csr-a", ResourceVersion: "7", UID: "u-1", Labels: map[string]string{"a": "b"}},
		Spec: certificatesv1beta1.CertificateSigningRequestSpec{
			Request: []byte("pem"), SignerName: &signer, ExpirationSeconds: &exp,
			Usages:   []certificatesv1beta1.KeyUsage{certificatesv1beta1.UsageDigitalSignature, certificatesv1beta1.UsageClientAuth},
			Username: "system:bootstrap:abcdef", UID: "uid-9", Groups: []string{"system:bootstrappers"},
			Extra: map[string]certificatesv1beta1.ExtraValue{"scopes": {"x", "y"}},
		},
		Status: certificatesv1beta1.CertificateSigningRequestStatus{
			Conditions: []certificatesv1beta1.CertificateSigningRequestCondition{{
				Type: certificatesv1beta1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "R", Message: "M",
				LastUpdateTime: metav1.NewTime(time.Unix(100, 0)), LastTransitionTime: metav1.NewTime(time.Unix(200, 0)),
			}},
			Certificate: []byte("cert"),
		},
	}
	v1 := csrFromV1beta1(in)
	if v1.Spec.SignerName != signer || v1.Spec.Username != in.Spec.Username || len(v1.Spec.Usages) != 2 ||
		v1.Status.Conditions[0].Type != certificatesv1.CertificateApproved || string(v1.Spec.Extra["scopes"][1]) != "y" {
		t.Errorf("v1 %+v", v1)
	}
	back := csrToV1beta1(v1)
	back.TypeMeta = in.TypeMeta
	if !reflect.DeepEqual(back, in) {
		t.Errorf("round trip changed the CSR:\n got %+v\nwant %+v", back, in)
	}

	in.Spec.SignerName = nil
	if got := csrFromV1beta1(in).Spec.SignerName; got != certificatesv1.KubeAPIServerClientSignerName {
		t.Errorf("no signerName (before 1.18) reads as %q, want %s", got, certificatesv1.KubeAPIServerClientSignerName)
	}
}

// v1beta1Store is a certificates.k8s.io/v1beta1 CSR API in memory: the
// approver's own v1beta1Client interface, standing in for a Kubernetes 1.16
// to 1.18 apiserver, which cannot run here (the pinned control plane is
// 1.30, and v1beta1 CSRs were removed in 1.22). It keeps what the approver
// relies on: resourceVersions, a 409 for a stale approval, the approval
// subresource taking only the conditions, and watch events after a list.
type v1beta1Store struct {
	mu       sync.Mutex
	rv       int
	objs     map[string]*certificatesv1beta1.CertificateSigningRequest
	watchers []*watch.RaceFreeFakeWatcher
	writes   int
	// touch names CSRs that another writer updates just before the
	// approver's first approval of them, which then meets a conflict.
	touch     map[string]bool
	conflicts int
}

func newV1beta1Store() *v1beta1Store {
	return &v1beta1Store{objs: map[string]*certificatesv1beta1.CertificateSigningRequest{}}
}

var csrResource = schema.GroupResource{Group: certificatesv1beta1.GroupName, Resource: "certificatesigningrequests"}

func (s *v1beta1Store) add(csr *certificatesv1beta1.CertificateSigningRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rv++
	csr = csr.DeepCopy()
	csr.ResourceVersion = strconv.Itoa(s.rv)
	s.objs[csr.Name] = csr
	for _, w := range s.watchers {
		w.Add(csr.DeepCopy())
	}
}

func (s *v1beta1Store) get(name string) *certificatesv1beta1.CertificateSigningRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.objs[name].DeepCopy()
}

func (s *v1beta1Store) List(_ context.Context, _ metav1.ListOptions) (*certificatesv1beta1.CertificateSigningRequestList, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := &certificatesv1beta1.CertificateSigningRequestList{ListMeta: metav1.ListMeta{ResourceVersion: strconv.Itoa(s.rv)}}
	for _, o := range s.objs {
		out.Items = append(out.Items, *o.DeepCopy())
	}
	return out, nil
}

func (s *v1beta1Store) Watch(_ context.Context, _ metav1.ListOptions) (watch.Interface, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := watch.NewRaceFreeFake()
	s.watchers = append(s.watchers, w)
	return w, nil
}

func (s *v1beta1Store) Get(_ context.Context, name string, _ metav1.GetOptions) (*certificatesv1beta1.CertificateSigningRequest, error) {
	if o := s.get(name); o != nil {
		return o, nil
	}
	return nil, apierrors.NewNotFound(csrResource, name)
}

func (s *v1beta1Store) UpdateApproval(_ context.Context, csr *certificatesv1beta1.CertificateSigningRequest, _ metav1.UpdateOptions) (*certificatesv1beta1.CertificateSigningRequest, error) {
	s.mu.Lock()
	cur, ok := s.objs[csr.Name]
	if !ok {
		s.mu.Unlock()
		return nil, apierrors.NewNotFound(csrResource, csr.Name)
	}
	if s.touch[csr.Name] {
		delete(s.touch, csr.Name)
		s.mu.Unlock()
		touched := cur.DeepCopy()
		metav1.SetMetaDataAnnotation(&touched.ObjectMeta, "test/touched", "true")
		s.add(touched)
		s.mu.Lock()
		cur = s.objs[csr.Name]
	}
	if csr.ResourceVersion != cur.ResourceVersion {
		s.conflicts++
		s.mu.Unlock()
		return nil, apierrors.NewConflict(csrResource, csr.Name, fmt.Errorf("resourceVersion %s is not %s", csr.ResourceVersion, cur.ResourceVersion))
	}
	s.writes++
	s.mu.Unlock()
	next := cur.DeepCopy()
	next.Status.Conditions = csr.Status.Conditions // the approval takes only these
	s.add(next)
	return s.get(csr.Name), nil
}

// TestControllerV1beta1 runs the controller on a cluster that serves CSRs
// only in v1beta1: the CSRs are kept by v1beta1Store (the approver's own
// interface to that version), the SubjectAccessReviews and Events go to the
// real apiserver. A CSR as 1.16/1.17 keep it (no signerName) and one as
// 1.18 keeps it (kube-apiserver-client) are approved once (the first after
// a conflict with another writer, re-read through v1beta1), with reason
// AutoApproved and status True; the legacy-unknown signer (what 1.18
// defaults when the client names none) and a kubelet's CSR are left alone.
func TestControllerV1beta1(t *testing.T) {
	cp := controlPlane(t)
	admin := cp.Clientset()
	ctx := context.Background()
	const bootstrapper = "system:bootstrap:beta01"
	renewer := "system:vnode:vn-beta2"
	for _, b := range []struct{ role, user string }{
		{"system:certificates.k8s.io:certificatesigningrequests:nodeclient", bootstrapper},
		{"system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", renewer},
	} {
		crb := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "test:approver-v1beta1:" + b.role[strings.LastIndex(b.role, ":")+1:]},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: b.role},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: b.user}},
		}
		if _, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = admin.RbacV1().ClusterRoleBindings().Delete(ctx, crb.Name, metav1.DeleteOptions{}) })
	}

	allUses := []certificatesv1beta1.KeyUsage{certificatesv1beta1.UsageDigitalSignature, certificatesv1beta1.UsageKeyEncipherment, certificatesv1beta1.UsageClientAuth}
	mk := func(name string, signer *string, user string, subject pkix.Name) *certificatesv1beta1.CertificateSigningRequest {
		return &certificatesv1beta1.CertificateSigningRequest{
			ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name)},
			Spec: certificatesv1beta1.CertificateSigningRequestSpec{
				Request: csrPEM(t, rsaKey, x509.CertificateRequest{Subject: subject}), SignerName: signer, Usages: allUses,
				Username: user, Groups: []string{"system:authenticated"},
			},
		}
	}
	ptr := func(s string) *string { return &s }
	store := newV1beta1Store()
	store.touch = map[string]bool{"beta-no-signer": true}
	store.add(mk("beta-no-signer", nil, bootstrapper, good))
	store.add(mk("beta-client-signer", ptr(certificatesv1beta1.KubeAPIServerClientSignerName), renewer,
		pkix.Name{CommonName: renewer, Organization: []string{"system:vnodes"}}))
	store.add(mk("beta-legacy-unknown", ptr(certificatesv1beta1.LegacyUnknownSignerName), bootstrapper, good))
	store.add(mk("beta-kubelet", ptr(certificatesv1beta1.KubeAPIServerClientKubeletSignerName), bootstrapper,
		pkix.Name{CommonName: "system:node:n1", Organization: []string{"system:nodes"}}))

	ctrl, err := New(Options{Client: admin, Policy: DefaultPolicy(), Workers: 2, csrs: v1beta1CSRs{store}})
	if err != nil {
		t.Fatal(err)
	}
	if ctrl.CSRGroupVersion() != CSRv1beta1 {
		t.Fatalf("controller speaks %s", ctrl.CSRGroupVersion())
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- ctrl.Run(runCtx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	decided := func(name string) bool {
		for _, c := range store.get(name).Status.Conditions {
			if c.Type == certificatesv1beta1.CertificateApproved {
				return true
			}
		}
		return false
	}
	err = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return decided("beta-no-signer") && decided("beta-client-signer"), nil
	})
	if err != nil {
		t.Fatalf("v1beta1 CSRs not approved: %v", err)
	}
	// The two others are evaluated (and counted) as wrong_signer.
	err = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return testutil.ToFloat64(ctrl.Metrics().Decisions.WithLabelValues(DecisionNotApproved, ReasonWrongSigner)) >= 2, nil
	})
	if err != nil {
		t.Errorf("wrong_signer decisions %v, want 2 (legacy-unknown and kubelet signers)", testutil.ToFloat64(ctrl.Metrics().Decisions.WithLabelValues(DecisionNotApproved, ReasonWrongSigner)))
	}
	for _, name := range []string{"beta-no-signer", "beta-client-signer"} {
		got := store.get(name)
		if n := len(got.Status.Conditions); n != 1 {
			t.Fatalf("%s: conditions %+v, want one", name, got.Status.Conditions)
		}
		c := got.Status.Conditions[0]
		if c.Reason != "AutoApproved" || c.Status != corev1.ConditionTrue || !strings.Contains(c.Message, "vn") {
			t.Errorf("%s: condition %+v", name, c)
		}
	}
	for _, name := range []string{"beta-legacy-unknown", "beta-kubelet"} {
		if got := store.get(name); len(got.Status.Conditions) != 0 {
			t.Errorf("%s approved: %+v", name, got.Status.Conditions)
		}
	}
	if n := testutil.ToFloat64(ctrl.Metrics().Decisions.WithLabelValues(DecisionApproved, ReasonNew)); n != 1 {
		t.Errorf("approved new_certificate %v, want 1", n)
	}
	if n := testutil.ToFloat64(ctrl.Metrics().Decisions.WithLabelValues(DecisionApproved, ReasonRenewal)); n != 1 {
		t.Errorf("approved renewal %v, want 1", n)
	}
	store.mu.Lock()
	writes, conflicts := store.writes, store.conflicts
	store.mu.Unlock()
	// The touch also queues the CSR again; that second look may meet one
	// more conflict before its cache has the approval, and then finds it
	// decided: still one write per CSR.
	if writes != 2 || conflicts < 1 {
		t.Errorf("%d approvals written and %d conflicts, want 2 and at least 1 (the touched CSR re-read and approved)", writes, conflicts)
	}
	if store.get("beta-no-signer").Annotations["test/touched"] != "true" {
		t.Error("the concurrent update of beta-no-signer was lost")
	}
	// The Event names the CSR in the version the cluster serves.
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		evs, err := admin.CoreV1().Events(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=beta-no-signer"})
		if err != nil {
			return false, err
		}
		for _, e := range evs.Items {
			if e.Reason == "AutoApproved" && e.InvolvedObject.APIVersion == CSRv1beta1 {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Errorf("no AutoApproved Event on certificates.k8s.io/v1beta1 beta-no-signer: %v", err)
	}
}
