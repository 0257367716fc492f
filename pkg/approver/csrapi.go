package approver

import (
	"context"
	"errors"
	"fmt"

	certificatesv1 "k8s.io/api/certificates/v1"
	certificatesv1beta1 "k8s.io/api/certificates/v1beta1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	typedcertv1 "k8s.io/client-go/kubernetes/typed/certificates/v1"
	"k8s.io/client-go/tools/cache"
)

// The group/versions of the CSR API the approver speaks.
const (
	CSRv1      = "certificates.k8s.io/v1"      // Kubernetes 1.19 and later
	CSRv1beta1 = "certificates.k8s.io/v1beta1" // Kubernetes up to 1.21
)

// csrAPI is one served version of the CSR API, seen as
// certificates.k8s.io/v1 objects: the informer, the policy and the approval
// logic work on v1 objects whichever version the cluster serves.
type csrAPI interface {
	// GroupVersion is CSRv1 or CSRv1beta1.
	GroupVersion() string
	// ListWatch lists and watches CSRs, as v1 objects.
	ListWatch() cache.ListerWatcher
	// Get reads one CSR.
	Get(ctx context.Context, name string) (*certificatesv1.CertificateSigningRequest, error)
	// UpdateApproval writes csr's conditions through the approval
	// subresource. It returns the CSR as the server answered (in v1) and
	// the object in the served version, for the Event.
	UpdateApproval(ctx context.Context, csr *certificatesv1.CertificateSigningRequest) (*certificatesv1.CertificateSigningRequest, runtime.Object, error)
}

// discoverCSRAPI asks the cluster which CSR API it serves: v1 where there
// is one (1.19+), v1beta1 where v1 is absent (1.16 to 1.18).
func discoverCSRAPI(client kubernetes.Interface) (csrAPI, error) {
	gv, err := pickCSRVersion(func(gv string) (bool, error) {
		list, err := client.Discovery().ServerResourcesForGroupVersion(gv)
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		for _, r := range list.APIResources {
			if r.Name == "certificatesigningrequests" {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	if gv == CSRv1beta1 {
		return v1beta1CSRs{client.CertificatesV1beta1().CertificateSigningRequests()}, nil
	}
	return v1CSRs{client.CertificatesV1().CertificateSigningRequests()}, nil
}

// pickCSRVersion chooses the CSR API version from what the server serves
// (served answers whether a group/version has certificatesigningrequests).
func pickCSRVersion(served func(gv string) (bool, error)) (string, error) {
	for _, gv := range []string{CSRv1, CSRv1beta1} {
		ok, err := served(gv)
		if err != nil {
			return "", fmt.Errorf("approver: discovery of %s: %w", gv, err)
		}
		if ok {
			return gv, nil
		}
	}
	return "", errors.New("approver: the cluster serves certificatesigningrequests in neither " + CSRv1 + " nor " + CSRv1beta1 + ": is it Kubernetes 1.16 to 1.30?")
}

// v1CSRs is certificates.k8s.io/v1, as is.
type v1CSRs struct {
	c typedcertv1.CertificateSigningRequestInterface
}

func (v1CSRs) GroupVersion() string { return CSRv1 }

func (a v1CSRs) ListWatch() cache.ListerWatcher {
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return a.c.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return a.c.Watch(ctx, o)
		},
	}
}

func (a v1CSRs) Get(ctx context.Context, name string) (*certificatesv1.CertificateSigningRequest, error) {
	return a.c.Get(ctx, name, metav1.GetOptions{})
}

func (a v1CSRs) UpdateApproval(ctx context.Context, csr *certificatesv1.CertificateSigningRequest) (*certificatesv1.CertificateSigningRequest, runtime.Object, error) {
	got, err := a.c.UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{})
	return got, got, err
}

// v1beta1Client is the part of client-go's certificates.k8s.io/v1beta1
// CSR client the approver uses (client-go's typed client implements it).
type v1beta1Client interface {
	List(ctx context.Context, opts metav1.ListOptions) (*certificatesv1beta1.CertificateSigningRequestList, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*certificatesv1beta1.CertificateSigningRequest, error)
	UpdateApproval(ctx context.Context, csr *certificatesv1beta1.CertificateSigningRequest, opts metav1.UpdateOptions) (*certificatesv1beta1.CertificateSigningRequest, error)
}

// v1beta1CSRs is certificates.k8s.io/v1beta1, converted to and from v1.
type v1beta1CSRs struct {
	c v1beta1Client
}

func (v1beta1CSRs) GroupVersion() string { return CSRv1beta1 }

// noWatchList tells client-go's reflector not to stream the initial list
// through a watch (sendInitialEvents, Kubernetes 1.27+): every cluster that
// serves v1beta1 CSRs (1.21 or older) predates it, and one older than 1.19
// ignores the parameters it does not know instead of refusing them, so the
// reflector would wait for a bookmark that never comes. It lists, then
// watches.
type noWatchList struct{}

func (noWatchList) IsWatchListSemanticsUnSupported() bool { return true }

func (a v1beta1CSRs) ListWatch() cache.ListerWatcher {
	return cache.ToListWatcherWithWatchListSemantics(a.listWatch(), noWatchList{})
}

func (a v1beta1CSRs) listWatch() *cache.ListWatch {
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			list, err := a.c.List(ctx, o)
			if err != nil {
				return nil, err
			}
			out := &certificatesv1.CertificateSigningRequestList{ListMeta: list.ListMeta, Items: make([]certificatesv1.CertificateSigningRequest, 0, len(list.Items))}
			for i := range list.Items {
				out.Items = append(out.Items, *csrFromV1beta1(&list.Items[i]))
			}
			return out, nil
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			w, err := a.c.Watch(ctx, o)
			if err != nil {
				return nil, err
			}
			// Error events carry a *metav1.Status and pass as they are.
			return watch.Filter(w, func(e watch.Event) (watch.Event, bool) {
				if csr, ok := e.Object.(*certificatesv1beta1.CertificateSigningRequest); ok {
					e.Object = csrFromV1beta1(csr)
				}
				return e, true
			}), nil
		},
	}
}

func (a v1beta1CSRs) Get(ctx context.Context, name string) (*certificatesv1.CertificateSigningRequest, error) {
	got, err := a.c.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return csrFromV1beta1(got), nil
}

func (a v1beta1CSRs) UpdateApproval(ctx context.Context, csr *certificatesv1.CertificateSigningRequest) (*certificatesv1.CertificateSigningRequest, runtime.Object, error) {
	got, err := a.c.UpdateApproval(ctx, csrToV1beta1(csr), metav1.UpdateOptions{})
	if err != nil {
		return nil, nil, err
	}
	return csrFromV1beta1(got), got, nil
}

// csrFromV1beta1 converts a v1beta1 CSR to v1, field by field (the types
// have the same fields; v1beta1 makes signerName optional).
//
// A CSR without a signerName comes from a cluster older than 1.18, where
// the field does not exist (1.18 to 1.21 default it on create): such a
// cluster has one signer, kube-controller-manager's, which signs every
// approved CSR with the cluster CA, as kubernetes.io/kube-apiserver-client
// does from 1.18 on. It is read as that signer, so the policy's signer
// check means the same on every version.
func csrFromV1beta1(in *certificatesv1beta1.CertificateSigningRequest) *certificatesv1.CertificateSigningRequest {
	out := &certificatesv1.CertificateSigningRequest{
		TypeMeta:   metav1.TypeMeta{APIVersion: CSRv1, Kind: "CertificateSigningRequest"},
		ObjectMeta: *in.ObjectMeta.DeepCopy(),
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:           append([]byte(nil), in.Spec.Request...),
			SignerName:        certificatesv1.KubeAPIServerClientSignerName,
			ExpirationSeconds: in.Spec.ExpirationSeconds,
			Username:          in.Spec.Username,
			UID:               in.Spec.UID,
			Groups:            append([]string(nil), in.Spec.Groups...),
		},
		Status: certificatesv1.CertificateSigningRequestStatus{Certificate: append([]byte(nil), in.Status.Certificate...)},
	}
	if in.Spec.SignerName != nil {
		out.Spec.SignerName = *in.Spec.SignerName
	}
	for _, u := range in.Spec.Usages {
		out.Spec.Usages = append(out.Spec.Usages, certificatesv1.KeyUsage(u))
	}
	if in.Spec.Extra != nil {
		out.Spec.Extra = make(map[string]certificatesv1.ExtraValue, len(in.Spec.Extra))
		for k, v := range in.Spec.Extra {
			out.Spec.Extra[k] = certificatesv1.ExtraValue(append([]string(nil), v...))
		}
	}
	for _, c := range in.Status.Conditions {
		out.Status.Conditions = append(out.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
			Type: certificatesv1.RequestConditionType(c.Type), Status: c.Status, Reason: c.Reason, Message: c.Message,
			LastUpdateTime: c.LastUpdateTime, LastTransitionTime: c.LastTransitionTime,
		})
	}
	return out
}

// csrToV1beta1 converts a v1 CSR back for the approval subresource, which
// takes only the conditions from it (the server keeps the spec it has).
// The signerName goes back as it is: a cluster older than 1.18 drops the
// field it does not know.
func csrToV1beta1(in *certificatesv1.CertificateSigningRequest) *certificatesv1beta1.CertificateSigningRequest {
	signer := in.Spec.SignerName
	out := &certificatesv1beta1.CertificateSigningRequest{
		TypeMeta:   metav1.TypeMeta{APIVersion: CSRv1beta1, Kind: "CertificateSigningRequest"},
		ObjectMeta: *in.ObjectMeta.DeepCopy(),
		Spec: certificatesv1beta1.CertificateSigningRequestSpec{
			Request:           append([]byte(nil), in.Spec.Request...),
			SignerName:        &signer,
			ExpirationSeconds: in.Spec.ExpirationSeconds,
			Username:          in.Spec.Username,
			UID:               in.Spec.UID,
			Groups:            append([]string(nil), in.Spec.Groups...),
		},
		Status: certificatesv1beta1.CertificateSigningRequestStatus{Certificate: append([]byte(nil), in.Status.Certificate...)},
	}
	for _, u := range in.Spec.Usages {
		out.Spec.Usages = append(out.Spec.Usages, certificatesv1beta1.KeyUsage(u))
	}
	if in.Spec.Extra != nil {
		out.Spec.Extra = make(map[string]certificatesv1beta1.ExtraValue, len(in.Spec.Extra))
		for k, v := range in.Spec.Extra {
			out.Spec.Extra[k] = certificatesv1beta1.ExtraValue(append([]string(nil), v...))
		}
	}
	for _, c := range in.Status.Conditions {
		out.Status.Conditions = append(out.Status.Conditions, certificatesv1beta1.CertificateSigningRequestCondition{
			Type: certificatesv1beta1.RequestConditionType(c.Type), Status: c.Status, Reason: c.Reason, Message: c.Message,
			LastUpdateTime: c.LastUpdateTime, LastTransitionTime: c.LastTransitionTime,
		})
	}
	return out
}
