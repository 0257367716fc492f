package approver

import (
	"bytes"
	"context"
	"crypto/x509"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/scheme"
)

// TestControllerRetriesConflict checks the workqueue path against the real
// apiserver: the SubjectAccessReview carries the requester from spec, a
// conflicting approval is retried on a fresh copy, and the CSR ends
// approved once.
//
// The conflict is real: just before the controller's first approval
// request goes out, the CSR is updated by someone else, so the approval
// carries a stale resourceVersion and the apiserver answers 409.
func TestControllerRetriesConflict(t *testing.T) {
	cp := controlPlane(t)
	admin := cp.Clientset()
	ctx := context.Background()
	const (
		requester = "system:bootstrap:abcdef"
		name      = "approver-retries-conflict"
	)
	csrs := admin.CertificatesV1().CertificateSigningRequests()

	// The requester may create CSRs, and the nodeclient subresource the
	// approver's SubjectAccessReview asks about (as kubeadm grants to
	// system:bootstrappers).
	for _, role := range []string{"system:node-bootstrapper", "system:certificates.k8s.io:certificatesigningrequests:nodeclient"} {
		crb := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "test:approver-conflict:" + role[strings.LastIndex(role, ":")+1:]},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: requester}},
		}
		if _, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = admin.RbacV1().ClusterRoleBindings().Delete(ctx, crb.Name, metav1.DeleteOptions{}) })
	}
	t.Cleanup(func() { _ = csrs.Delete(ctx, name, metav1.DeleteOptions{}) })

	var (
		ctrl            *Controller
		sarUser, sarSub atomic.Value
		approvals       atomic.Int32
		mu              sync.Mutex
		codes           []int // approval responses, in order
		// released is closed when the successful approval's response,
		// held back below, has been handed to the controller: from then
		// on the controller has nothing left to do with the CSR.
		released    = make(chan struct{})
		releaseOnce sync.Once
	)
	approvalPath := "/apis/certificates.k8s.io/v1/certificatesigningrequests/" + name + "/approval"
	client := clientWith(t, cp, func(r *http.Request, next http.RoundTripper) (*http.Response, error) {
		switch {
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/subjectaccessreviews"):
			body, err := io.ReadAll(r.Body)
			_ = r.Body.Close()
			if err != nil {
				return nil, err
			}
			// client-go sends protobuf or JSON; the scheme's decoder reads both.
			obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(body, nil, nil)
			if sar, ok := obj.(*authorizationv1.SubjectAccessReview); err != nil || !ok {
				t.Errorf("decode SubjectAccessReview: %T, %v", obj, err)
			} else if sar.Spec.ResourceAttributes != nil {
				sarUser.Store(sar.Spec.User)
				sarSub.Store(sar.Spec.ResourceAttributes.Subresource)
			}
			r = r.Clone(r.Context())
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
			return next.RoundTrip(r)

		case r.Method == http.MethodPut && r.URL.Path == approvalPath:
			if approvals.Add(1) == 1 {
				// Another writer updates the CSR between the controller's
				// read and its approval.
				cur, err := csrs.Get(r.Context(), name, metav1.GetOptions{})
				if err == nil {
					metav1.SetMetaDataAnnotation(&cur.ObjectMeta, "test/touched", "true")
					_, err = csrs.Update(r.Context(), cur, metav1.UpdateOptions{})
				}
				if err != nil {
					t.Errorf("concurrent update of the CSR: %v", err)
				}
			}
			resp, err := next.RoundTrip(r)
			if err != nil {
				return resp, err
			}
			mu.Lock()
			codes = append(codes, resp.StatusCode)
			mu.Unlock()
			if resp.StatusCode == http.StatusOK {
				// The concurrent update queued the CSR again. Hold the
				// response until the controller's cache has the approval,
				// so that second look finds it decided (as it would in the
				// usual case) rather than racing the watch. The test waits
				// for released before it ends and stops the controller
				// (which cancels r.Context()): the approval is visible to
				// the test's own client before it reaches the controller's
				// watch, and on a loaded machine the test used to finish
				// and cancel this wait ("context canceled").
				err := wait.PollUntilContextTimeout(r.Context(), 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
					c, err := ctrl.lister.Get(name)
					return err == nil && Decided(c), nil
				})
				if err != nil {
					t.Errorf("approval not in the controller's cache: %v", err)
				}
				releaseOnce.Do(func() { close(released) })
			}
			return resp, nil
		}
		return next.RoundTrip(r)
	})
	ctrl, err := New(Options{Client: client, Policy: DefaultPolicy(), Workers: 1})
	if err != nil {
		t.Fatal(err)
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

	// The requester submits it; the apiserver records who that is in spec.
	cfg, err := cp.RESTConfigFor(requester, []string{"system:bootstrappers"})
	if err != nil {
		t.Fatal(err)
	}
	bootstrap := clientsetFor(t, cfg)
	csr := &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:    csrPEM(t, ecKey, x509.CertificateRequest{Subject: good}),
			SignerName: certificatesv1.KubeAPIServerClientSignerName, Usages: noKE,
		},
	}
	if _, err := bootstrap.CertificatesV1().CertificateSigningRequests().Create(ctx, csr, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err := csrs.Get(ctx, name, metav1.GetOptions{})
		return err == nil && Decided(got), nil
	})
	if err != nil {
		t.Fatalf("CSR not approved: %v", err)
	}
	select {
	case <-released:
	case <-time.After(time.Minute):
		t.Fatal("the controller's approval call did not return within 1m of the CSR being approved")
	}
	got, err := csrs.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(got.Status.Conditions); n != 1 || got.Status.Conditions[0].Reason != "AutoApproved" {
		t.Fatalf("conditions %+v, want one AutoApproved", got.Status.Conditions)
	}
	if got.Annotations["test/touched"] != "true" {
		t.Error("the concurrent update was lost")
	}
	if approvals.Load() != 2 {
		t.Errorf("%d approval calls, want 2 (conflict, then success)", approvals.Load())
	}
	mu.Lock()
	if len(codes) != 2 || codes[0] != http.StatusConflict || codes[1] != http.StatusOK {
		t.Errorf("approval responses %v, want [409 200]", codes)
	}
	mu.Unlock()
	if sarUser.Load() != requester || sarSub.Load() != "nodeclient" {
		t.Errorf("SAR for %v / %v, want the requester and nodeclient", sarUser.Load(), sarSub.Load())
	}
}
