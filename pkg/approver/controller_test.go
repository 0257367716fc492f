package approver

import (
	"context"
	"crypto/x509"
	"sync/atomic"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
)

// TestControllerRetriesConflict checks the workqueue path with a fake API:
// the SubjectAccessReview carries the requester from spec, a conflicting
// approval is retried on a fresh copy, and the CSR ends approved once.
func TestControllerRetriesConflict(t *testing.T) {
	client := fake.NewClientset()
	var sarUser, sarSub atomic.Value
	client.PrependReactor("create", "subjectaccessreviews", func(a clienttesting.Action) (bool, runtime.Object, error) {
		sar := a.(clienttesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview)
		sarUser.Store(sar.Spec.User)
		sarSub.Store(sar.Spec.ResourceAttributes.Subresource)
		sar.Status.Allowed = true
		return true, sar, nil
	})
	var approvals atomic.Int32
	client.PrependReactor("update", "certificatesigningrequests", func(a clienttesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "approval" {
			return false, nil, nil
		}
		if approvals.Add(1) == 1 {
			return true, nil, apierrors.NewConflict(schema.GroupResource{Group: "certificates.k8s.io", Resource: "certificatesigningrequests"}, "x", nil)
		}
		return false, nil, nil
	})
	ctrl, err := New(Options{Client: client, Policy: DefaultPolicy(), Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ctrl.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	csr := &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "x"},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:    csrPEM(t, ecKey, x509.CertificateRequest{Subject: good}),
			SignerName: certificatesv1.KubeAPIServerClientSignerName, Usages: noKE,
			Username: "system:bootstrap:abcdef", Groups: []string{"system:bootstrappers"},
		},
	}
	if _, err := client.CertificatesV1().CertificateSigningRequests().Create(ctx, csr, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err := client.CertificatesV1().CertificateSigningRequests().Get(ctx, "x", metav1.GetOptions{})
		return err == nil && Decided(got), nil
	})
	if err != nil {
		t.Fatalf("CSR not approved: %v", err)
	}
	got, _ := client.CertificatesV1().CertificateSigningRequests().Get(ctx, "x", metav1.GetOptions{})
	if n := len(got.Status.Conditions); n != 1 || got.Status.Conditions[0].Reason != "AutoApproved" {
		t.Fatalf("conditions %+v, want one AutoApproved", got.Status.Conditions)
	}
	if approvals.Load() != 2 {
		t.Errorf("%d approval calls, want 2 (conflict, then success)", approvals.Load())
	}
	if sarUser.Load() != "system:bootstrap:abcdef" || sarSub.Load() != "nodeclient" {
		t.Errorf("SAR for %v / %v, want the requester and nodeclient", sarUser.Load(), sarSub.Load())
	}
}
