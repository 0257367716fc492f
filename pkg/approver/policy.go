package approver

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"

	certificatesv1 "k8s.io/api/certificates/v1"
)

// Reasons a CSR is or is not approved. They are the "reason" label of the
// decision counter and the "reason" key of the log lines, so they are
// stable, low-cardinality identifiers.
const (
	ReasonNew             = "new_certificate"
	ReasonRenewal         = "renewal"
	ReasonAlreadyDecided  = "already_decided"
	ReasonWrongSigner     = "wrong_signer"
	ReasonBadRequest      = "bad_request"
	ReasonWrongOrg        = "wrong_organization"
	ReasonWrongCommonName = "wrong_common_name"
	ReasonSANs            = "has_sans"
	ReasonWrongUsages     = "wrong_usages"
	ReasonNotAuthorized   = "not_authorized"
	ReasonAuthzError      = "authorization_error"
	ReasonApproveError    = "approve_error"
)

// Policy describes the only client certificate a virtual node asks for:
// subject O=<Organization>, CN=<CNPrefix><node-name>, signed by
// kubernetes.io/kube-apiserver-client. The CN format mirrors the kubelet's
// system:node:<name>, under a prefix of its own so that the Node authorizer
// and the kubelet approver in kube-controller-manager never treat a
// virtual node as a kubelet and vice versa.
type Policy struct {
	// Organization is the required, sole subject organisation.
	Organization string
	// CNPrefix is the required common-name prefix; a non-empty node name
	// must follow it.
	CNPrefix string
}

// DefaultPolicy is the policy of the default configuration.
func DefaultPolicy() Policy {
	return Policy{Organization: "system:vnodes", CNPrefix: "system:vnode:"}
}

// Request is a CSR that passed the static checks and now only needs the
// requester's permission.
type Request struct {
	// CommonName is the certificate's CN, e.g. system:vnode:vn1.
	CommonName string
	// NodeName is the CN without the prefix.
	NodeName string
	// Renewal is true when the requester already is the identity asked
	// for (requesting username == CN): a node renewing its own certificate.
	Renewal bool
}

// Subresource is the certificatesigningrequests subresource the requester
// must be allowed to create: selfnodeclient for a renewal, nodeclient for a
// new certificate, matching the built-in ClusterRoles
// system:certificates.k8s.io:certificatesigningrequests:(self)nodeclient.
func (r Request) Subresource() string {
	if r.Renewal {
		return "selfnodeclient"
	}
	return "nodeclient"
}

// Rejection explains why a CSR is left alone. The approver never denies:
// a CSR that is not a virtual node's may belong to another approver.
type Rejection struct {
	// Reason is one of the Reason* constants.
	Reason string
	// Detail is a human-readable explanation for the log.
	Detail string
}

// Error implements error so Check can return a Rejection.
func (r *Rejection) Error() string { return r.Reason + ": " + r.Detail }

func reject(reason, format string, a ...any) *Rejection {
	return &Rejection{Reason: reason, Detail: fmt.Sprintf(format, a...)}
}

// Decided reports whether a CSR already carries a decision (Approved,
// Denied, Failed) or a certificate, in which case it is not ours to touch.
func Decided(csr *certificatesv1.CertificateSigningRequest) bool {
	if len(csr.Status.Certificate) > 0 {
		return true
	}
	for _, c := range csr.Status.Conditions {
		switch c.Type {
		case certificatesv1.CertificateApproved, certificatesv1.CertificateDenied, certificatesv1.CertificateFailed:
			return true
		}
	}
	return false
}

var (
	// usagesRSA is what client-go's certificate manager requests for an
	// RSA key: key encipherment only means something for RSA.
	usagesRSA = []certificatesv1.KeyUsage{
		certificatesv1.UsageClientAuth, certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment,
	}
	// usagesNoKeyEncipherment is what newer client-go requests for ECDSA
	// and Ed25519 keys, which cannot encipher keys.
	usagesNoKeyEncipherment = []certificatesv1.KeyUsage{
		certificatesv1.UsageClientAuth, certificatesv1.UsageDigitalSignature,
	}
)

// Check applies the static part of the policy: signer, decision state, PEM
// and signature, subject, SANs and usages. It returns a *Rejection when the
// CSR is not a virtual node's client certificate request.
//
// Usages must be exactly {digital signature, key encipherment, client auth}
// for any key type, or {digital signature, client auth} for ECDSA and
// Ed25519 keys (for which key encipherment is meaningless and newer
// client-go omits it); order and duplicates do not matter.
func (p Policy) Check(csr *certificatesv1.CertificateSigningRequest) (Request, error) {
	if csr.Spec.SignerName != certificatesv1.KubeAPIServerClientSignerName {
		return Request{}, reject(ReasonWrongSigner, "signer %q is not %s", csr.Spec.SignerName, certificatesv1.KubeAPIServerClientSignerName)
	}
	if Decided(csr) {
		return Request{}, reject(ReasonAlreadyDecided, "already approved, denied, failed or issued")
	}
	block, rest := pem.Decode(csr.Spec.Request)
	if block == nil || block.Type != "CERTIFICATE REQUEST" || len(strings.TrimSpace(string(rest))) > 0 {
		return Request{}, reject(ReasonBadRequest, "spec.request is not exactly one PEM CERTIFICATE REQUEST block")
	}
	cr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return Request{}, reject(ReasonBadRequest, "parse certificate request: %v", err)
	}
	if err := cr.CheckSignature(); err != nil {
		return Request{}, reject(ReasonBadRequest, "signature: %v", err)
	}
	if len(cr.Subject.Organization) != 1 || cr.Subject.Organization[0] != p.Organization {
		return Request{}, reject(ReasonWrongOrg, "organization %q is not exactly [%s]", cr.Subject.Organization, p.Organization)
	}
	cn := cr.Subject.CommonName
	node, ok := strings.CutPrefix(cn, p.CNPrefix)
	if !ok || node == "" {
		return Request{}, reject(ReasonWrongCommonName, "common name %q is not %s<node-name>", cn, p.CNPrefix)
	}
	if n := len(cr.DNSNames) + len(cr.IPAddresses) + len(cr.EmailAddresses) + len(cr.URIs); n > 0 {
		return Request{}, reject(ReasonSANs, "%d subject alternative names (DNS %q, IP %v, email %q, URI %v); a client certificate has none",
			n, cr.DNSNames, cr.IPAddresses, cr.EmailAddresses, cr.URIs)
	}
	if !usagesAllowed(csr.Spec.Usages, cr.PublicKey) {
		return Request{}, reject(ReasonWrongUsages, "usages %q are not {digital signature, key encipherment, client auth} (key encipherment optional for ECDSA/Ed25519 keys)", csr.Spec.Usages)
	}
	return Request{CommonName: cn, NodeName: node, Renewal: csr.Spec.Username == cn}, nil
}

func usagesAllowed(got []certificatesv1.KeyUsage, pub any) bool {
	set := slices.Clone(got)
	slices.Sort(set)
	set = slices.Compact(set)
	if slices.Equal(set, usagesRSA) {
		return true
	}
	switch pub.(type) {
	case *ecdsa.PublicKey, ed25519.PublicKey:
		return slices.Equal(set, usagesNoKeyEncipherment)
	}
	return false
}
