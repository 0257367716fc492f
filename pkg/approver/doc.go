// Package approver is vnode-approver: a controller that approves the
// client-certificate CSRs virtual nodes of self-managed clusters send
// (TLS bootstrap, then renewal) and nothing else.
//
// A CSR is approved only when all of the following hold; otherwise it is
// left alone (never denied, it may be another approver's), logged with the
// reason and counted in vnode_approver_csr_decisions_total:
//
//   - signer kubernetes.io/kube-apiserver-client, no decision or certificate yet;
//   - subject O exactly [system:vnodes] and CN system:vnode:<node-name>
//     (APPROVER_ORGANIZATION, APPROVER_CN_PREFIX);
//   - no DNS, IP, email or URI SANs;
//   - usages exactly {digital signature, key encipherment, client auth}, or
//     {digital signature, client auth} for ECDSA/Ed25519 keys;
//   - a SubjectAccessReview, as the requester recorded by the apiserver in
//     spec.username/groups/extra/uid, allows create on
//     certificates.k8s.io certificatesigningrequests/nodeclient for a new
//     certificate, or /selfnodeclient for a renewal (requester == CN).
//
// Approval adds condition Approved with reason AutoApproved via the
// approval subresource and records a Normal Event; kube-controller-manager
// then signs with the cluster CA.
//
// It speaks certificates.k8s.io/v1 where the cluster serves it (1.19+) and
// v1beta1 where it does not (1.16 to 1.18), as discovery says at start;
// a v1beta1 CSR without signerName (before 1.18) counts as signer
// kubernetes.io/kube-apiserver-client (see csrFromV1beta1).
package approver
