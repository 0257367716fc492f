// Package doctor checks that a virtual node's kubeconfig (vnode-config)
// and ECI credentials will work, before the node is created, and says how
// to fix each problem: it turns the vendor's "Common errors" table and its
// hand-check of vnode-config into one command, `vnodectl doctor`.
package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/kubeconfig"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/kubeversion"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/nodeaccess"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/vnodectl/daemonsets"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Status of one check.
type Status string

// Check outcomes; only Fail makes the run fail.
const (
	Pass Status = "pass"
	Fail Status = "fail"
	Skip Status = "skip"
)

// Check names, stable for scripts reading -o json.
const (
	CheckKubeconfig  = "kubeconfig"
	CheckServer      = "server"
	CheckCA          = "ca"
	CheckVersion     = "version"
	CheckIdentity    = "identity"
	CheckPermissions = "permissions"
	CheckKubeProxy   = "kube-proxy"
	CheckECI         = "eci"
	// CheckECIPermissions probes every ECI action the controller uses.
	CheckECIPermissions = "eci-permissions"
)

// Supported Kubernetes versions (vendor documentation: 1.16 to 1.30), as
// pkg/kubeversion states them for the chart and the README too.
const (
	MinMinor = kubeversion.MinMinor
	MaxMinor = kubeversion.MaxMinor
)

// Result is one check's outcome; Fix is set for failures (and for skips
// that the user can act on).
type Result struct {
	Name    string `json:"name"`
	Status  Status `json:"status"`
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"`
}

// Report is every check, in order.
type Report struct {
	OK     bool     `json:"ok"`
	Checks []Result `json:"checks"`
}

// Failed lists the names of failed checks.
func (r *Report) Failed() []string {
	var out []string
	for _, c := range r.Checks {
		if c.Status == Fail {
			out = append(out, c.Name)
		}
	}
	return out
}

// Options configure Run.
type Options struct {
	// Kubeconfig is the virtual node's kubeconfig (vnode-config).
	Kubeconfig string
	// Admin, when set, is an admin client used for cluster-wide reads the
	// node may not do (the kube-proxy DaemonSet).
	Admin kubernetes.Interface
	// ExtraPrivilege also expects endpoints create/update (1.13 clusters).
	ExtraPrivilege bool
	// Timeout bounds each network step (default 10s).
	Timeout time.Duration
	// Resolver resolves the server's host name; nil means net.DefaultResolver.
	Resolver *net.Resolver
	// ECI credentials; an empty AccessKeyID skips the ECI check.
	Region, Endpoint, AccessKeyID, AccessKeySecret string
}

// Advice quoted from the vendor's "Common errors" table, so users recognise
// what the console would have shown them.
const (
	fixTimeout = "The VPC cannot reach the Kubernetes API server. Verify that the VNode and the API server are in the same VPC, " +
		"or that the VPC-to-API-server connection (Express Connect, SAG or VPN Gateway) is established and the security group allows it."
	fixNoSuchHost = "The Kubernetes API server domain name cannot be resolved within the Alibaba Cloud VPC. " +
		"Use Alibaba Cloud DNS PrivateZone to resolve the domain name, or put an IP address in the kubeconfig's server field."
	fixNoCA = "If certificate-authority-data is empty, check whether the certificate-authority PATH field is used in ~/.kube/config; " +
		"regenerate vnode-config with `vnodectl kubeconfig`, which inlines the CA file."
	fixRegenerate = "Run `vnodectl kubeconfig` again with the mode you use: it recreates the ClusterRoles, ClusterRoleBindings and token."
)

var bootstrapTokenRE = regexp.MustCompile(`^[a-z0-9]{6}\.[a-z0-9]{16}$`)

// Run performs every check. A check that depends on a failed one is
// skipped, so the first failure is the one to fix.
func Run(ctx context.Context, o Options) *Report {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	r := &Report{}
	add := func(res Result) { r.Checks = append(r.Checks, res) }
	kubeChecks := []string{CheckServer, CheckCA, CheckVersion, CheckIdentity, CheckPermissions}
	skipRest := func(from int, why string) {
		for _, n := range kubeChecks[from:] {
			add(Result{Name: n, Status: Skip, Message: "skipped: " + why})
		}
	}

	kc, res := loadKubeconfig(o.Kubeconfig)
	add(res)
	if res.Status == Fail {
		skipRest(0, "the kubeconfig check failed")
	} else {
		res, conn := checkServer(ctx, o, kc)
		add(res)
		if res.Status == Fail {
			skipRest(1, "the API server cannot be reached")
		} else {
			res := checkCA(ctx, o, kc, conn)
			add(res)
			if res.Status == Fail {
				skipRest(2, "the CA does not verify the API server")
			} else {
				kc.rest.Timeout = o.Timeout
				// One SelfSubjectAccessReview per permission: client-go's
				// default 5 QPS would make doctor take seconds.
				kc.rest.QPS, kc.rest.Burst = 50, 100
				kube, err := kubernetes.NewForConfig(kc.rest)
				if err != nil {
					add(Result{Name: CheckVersion, Status: Fail, Message: err.Error(), Fix: fixRegenerate})
					skipRest(3, "no client")
				} else {
					res := checkVersion(kube, kc)
					add(res)
					if res.Status == Fail && strings.Contains(res.Message, "rejected") {
						skipRest(3, "the credentials are rejected")
					} else {
						add(checkIdentity(ctx, kube))
						add(checkPermissions(ctx, kube, kc, o.ExtraPrivilege))
						if o.Admin == nil {
							o.Admin = kube
						}
					}
				}
			}
		}
	}
	add(checkKubeProxy(ctx, o.Admin))
	res = checkECI(ctx, o)
	add(res)
	if res.Status == Pass {
		add(checkECIPermissions(ctx, o))
	} else {
		add(Result{Name: CheckECIPermissions, Status: Skip, Message: "skipped: the ECI check did not pass"})
	}
	r.OK = len(r.Failed()) == 0
	return r
}

// kubeconfigInfo is what the checks need from vnode-config.
type kubeconfigInfo struct {
	rest       *rest.Config
	host, port string
	serverName string
	bootstrap  bool
}

func loadKubeconfig(path string) (*kubeconfigInfo, Result) {
	fail := func(msg, fix string) (*kubeconfigInfo, Result) {
		return nil, Result{Name: CheckKubeconfig, Status: Fail, Message: msg, Fix: fix}
	}
	raw, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return fail(fmt.Sprintf("cannot read %s: %v", path, err), "Create it with `vnodectl kubeconfig -o "+path+"`, or pass --kubeconfig.")
	}
	ctxName := raw.CurrentContext
	c := raw.Contexts[ctxName]
	if c == nil {
		return fail(fmt.Sprintf("%s: current-context %q does not exist", path, ctxName), fixRegenerate)
	}
	cluster, user := raw.Clusters[c.Cluster], raw.AuthInfos[c.AuthInfo]
	if cluster == nil || cluster.Server == "" {
		return fail(fmt.Sprintf("%s: cluster %q has no server", path, c.Cluster), fixRegenerate)
	}
	if len(cluster.CertificateAuthorityData) == 0 {
		msg := fmt.Sprintf("%s: cluster %q has no certificate-authority-data", path, c.Cluster)
		if cluster.CertificateAuthority != "" {
			msg += fmt.Sprintf(" (certificate-authority is the path %s, which does not exist where the virtual node runs)", cluster.CertificateAuthority)
		}
		if cluster.InsecureSkipTLSVerify {
			msg += "; insecure-skip-tls-verify would accept any server"
		}
		return fail(msg, fixNoCA)
	}
	if user == nil || (user.Token == "" && len(user.ClientCertificateData) == 0) {
		return fail(fmt.Sprintf("%s: user %q has neither a token nor client-certificate-data", path, c.AuthInfo), fixRegenerate)
	}
	cfg, err := clientcmd.NewNonInteractiveClientConfig(*raw, ctxName, &clientcmd.ConfigOverrides{}, nil).ClientConfig()
	if err != nil {
		return fail(fmt.Sprintf("%s: %v", path, err), fixRegenerate)
	}
	u, err := url.Parse(cluster.Server)
	if err != nil || u.Scheme != "https" || u.Hostname() == "" {
		return fail(fmt.Sprintf("%s: server %q is not an https:// URL", path, cluster.Server), "Set server to https://<address>:<port> of the API server (usually port 6443).")
	}
	info := &kubeconfigInfo{rest: cfg, host: u.Hostname(), port: u.Port(), serverName: cluster.TLSServerName, bootstrap: bootstrapTokenRE.MatchString(user.Token)}
	if info.port == "" {
		info.port = "443"
	}
	if info.serverName == "" {
		info.serverName = info.host
	}
	kind := "client certificate"
	switch {
	case info.bootstrap:
		kind = "bootstrap token (TLS bootstrapping)"
	case user.Token != "":
		kind = "token"
	}
	return info, Result{Name: CheckKubeconfig, Status: Pass,
		Message: fmt.Sprintf("%s: server %s, CA inlined, user %q with a %s", path, cluster.Server, c.AuthInfo, kind)}
}

// classify turns a connection error into the vendor's advice.
func classify(err error) string {
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.As(err, &dnsErr) && (dnsErr.IsNotFound || strings.Contains(dnsErr.Err, "no such host")),
		strings.Contains(err.Error(), "no such host"):
		return fixNoSuchHost
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout(),
		strings.Contains(err.Error(), "Client.Timeout"):
		return fixTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
		return "Nothing listens at that address: check the server address and port in the kubeconfig (kube-apiserver --secure-port, usually 6443); " +
			"from the cloud it must be an address the VPC reaches, e.g. the API server's load balancer."
	case errors.As(err, &dnsErr):
		return "The server's name could not be looked up (" + dnsErr.Err + "): check the DNS servers of the VPC; " + fixNoSuchHost
	}
	return fixTimeout
}

func checkServer(ctx context.Context, o Options, kc *kubeconfigInfo) (Result, net.Conn) {
	addr := net.JoinHostPort(kc.host, kc.port)
	d := net.Dialer{Timeout: o.Timeout, Resolver: o.Resolver}
	dctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	conn, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return Result{Name: CheckServer, Status: Fail,
			Message: fmt.Sprintf("failed to get kubernetes server version: dial tcp %s: %v", addr, unwrapOp(err)), Fix: classify(err)}, nil
	}
	return Result{Name: CheckServer, Status: Pass, Message: "connected to " + addr + " (" + conn.RemoteAddr().String() + ")"}, conn
}

func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

func checkCA(ctx context.Context, o Options, kc *kubeconfigInfo, conn net.Conn) Result {
	defer conn.Close()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(kc.rest.CAData) {
		return Result{Name: CheckCA, Status: Fail, Message: "certificate-authority-data holds no PEM certificate", Fix: fixNoCA}
	}
	tc := tls.Client(conn, &tls.Config{RootCAs: pool, ServerName: kc.serverName, MinVersion: tls.VersionTLS12})
	hctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	err := tc.HandshakeContext(hctx)
	if err == nil {
		cs := tc.ConnectionState()
		return Result{Name: CheckCA, Status: Pass, Message: fmt.Sprintf("the API server's certificate (%s) verifies with the inlined CA for %s",
			cs.PeerCertificates[0].Subject.CommonName, kc.serverName)}
	}
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var cert *tls.CertificateVerificationError
	switch {
	case errors.As(err, &unknown) || (errors.As(err, &cert) && errors.As(cert.Err, &unknown)):
		return Result{Name: CheckCA, Status: Fail, Message: "the API server's certificate is not signed by certificate-authority-data: " + err.Error(),
			Fix: "vnode-config carries the wrong CA: regenerate it with `vnodectl kubeconfig` against this cluster (or --ca-file with the cluster CA)."}
	case errors.As(err, &host):
		return Result{Name: CheckCA, Status: Fail, Message: err.Error(),
			Fix: fmt.Sprintf("The server address %s is not in the API server certificate's SANs: use one of them (vnodectl kubeconfig --server), or add it to kube-apiserver's certificate (kubeadm: apiServer.certSANs).", kc.host)}
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "timeout"):
		return Result{Name: CheckCA, Status: Fail,
			Message: fmt.Sprintf("failed to get kubernetes server version: TLS handshake with %s: request canceled (Client.Timeout exceeded while awaiting headers): %v", kc.host, err),
			Fix:     fixTimeout}
	}
	return Result{Name: CheckCA, Status: Fail, Message: "TLS handshake: " + err.Error(), Fix: "Check that the server address is the API server's HTTPS port."}
}

func checkVersion(kube kubernetes.Interface, kc *kubeconfigInfo) Result {
	v, err := kube.Discovery().ServerVersion()
	if err != nil {
		if apierrors.IsUnauthorized(err) {
			return Result{Name: CheckVersion, Status: Fail, Message: "the API server rejected the credentials (401 Unauthorized): the token was deleted, expired or never existed",
				Fix: fixRegenerate}
		}
		return Result{Name: CheckVersion, Status: Fail, Message: "failed to get kubernetes server version: " + err.Error(), Fix: classify(err)}
	}
	return versionResult(v)
}

// versionResult judges a /version answer against the supported range.
func versionResult(v *version.Info) Result {
	if err := kubeversion.Check(v.Major, v.Minor, v.GitVersion); err != nil {
		return Result{Name: CheckVersion, Status: Fail, Message: err.Error(),
			Fix: fmt.Sprintf("Use a cluster of version %s: ack-virtual-node (its chart, vnode-approver and the virtual node) supports no other.", kubeversion.Range)}
	}
	return Result{Name: CheckVersion, Status: Pass, Message: fmt.Sprintf("Kubernetes %s (supported: %s)", v.GitVersion, kubeversion.Range)}
}

func checkIdentity(ctx context.Context, kube kubernetes.Interface) Result {
	r, err := kube.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return Result{Name: CheckIdentity, Status: Skip, Message: "SelfSubjectReview is not served (Kubernetes before 1.28)"}
		}
		return Result{Name: CheckIdentity, Status: Fail, Message: "SelfSubjectReview: " + err.Error(), Fix: fixRegenerate}
	}
	u := r.Status.UserInfo
	return Result{Name: CheckIdentity, Status: Pass, Message: fmt.Sprintf("authenticated as %s, groups %v", u.Username, u.Groups)}
}

func checkPermissions(ctx context.Context, kube kubernetes.Interface, kc *kubeconfigInfo, extra bool) Result {
	perms, what := nodeaccess.NodePermissions(extra), "the virtual node's"
	if kc.bootstrap {
		perms, what = nodeaccess.BootstrapPermissions(), "TLS bootstrapping's"
	}
	var missing []string
	for _, p := range perms {
		r, err := kube.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
				Verb: p.Verb, Group: p.Group, Resource: p.Resource, Subresource: p.Subresource, Namespace: p.Namespace, Name: p.Name,
			}},
		}, metav1.CreateOptions{})
		if err != nil {
			return Result{Name: CheckPermissions, Status: Fail, Message: "SelfSubjectAccessReview: " + err.Error(), Fix: fixRegenerate}
		}
		if !r.Status.Allowed {
			missing = append(missing, p.String())
		}
	}
	if len(missing) > 0 {
		return Result{Name: CheckPermissions, Status: Fail,
			Message: fmt.Sprintf("%d of %s %d permissions are not granted: %s", len(missing), what, len(perms), strings.Join(missing, ", ")),
			Fix:     fixRegenerate + " (ClusterRoleBindings " + nodeaccess.ExtraRoleName + ":*)"}
	}
	msg := fmt.Sprintf("all %d of %s permissions are granted", len(perms), what)
	if kc.bootstrap {
		msg += "; the node's own permissions (group " + nodeaccess.NodeGroup + ") take effect once vnode-approver has approved its certificate"
	}
	return Result{Name: CheckPermissions, Status: Pass, Message: msg}
}

func checkKubeProxy(ctx context.Context, kube kubernetes.Interface) Result {
	if kube == nil {
		return Result{Name: CheckKubeProxy, Status: Skip, Message: "skipped: no working client",
			Fix: "Pass --admin-kubeconfig (or set KUBECONFIG) to an admin kubeconfig."}
	}
	ns, name := daemonsets.KubeProxy[0], daemonsets.KubeProxy[1]
	ds, err := kube.AppsV1().DaemonSets(ns).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return Result{Name: CheckKubeProxy, Status: Pass, Message: "no DaemonSet " + ns + "/" + name + " in this cluster"}
	case apierrors.IsForbidden(err):
		return Result{Name: CheckKubeProxy, Status: Skip, Message: "this identity may not read DaemonSets",
			Fix: "Pass --admin-kubeconfig (or set KUBECONFIG) to an admin kubeconfig to check kube-proxy."}
	case err != nil:
		return Result{Name: CheckKubeProxy, Status: Fail, Message: "get DaemonSet " + ns + "/" + name + ": " + err.Error(), Fix: "Check the admin kubeconfig."}
	}
	if !daemonsets.Excludes(&ds.Spec.Template.Spec) {
		return Result{Name: CheckKubeProxy, Status: Fail,
			Message: fmt.Sprintf("DaemonSet %s/%s may be scheduled to virtual nodes: its node affinity does not require %s NotIn [%s]", ns, name, daemonsets.NodeLabelKey, daemonsets.NodeLabelValue),
			Fix:     "Run `vnodectl exclude-daemonsets` (add --all for every DaemonSet that tolerates " + daemonsets.TaintKey + ")."}
	}
	return Result{Name: CheckKubeProxy, Status: Pass, Message: fmt.Sprintf("DaemonSet %s/%s excludes virtual nodes (%s NotIn [%s])", ns, name, daemonsets.NodeLabelKey, daemonsets.NodeLabelValue)}
}

// eciClient is the ECI client of the doctor's checks (one attempt per call);
// when it cannot be made, hint says what to check.
func eciClient(o Options) (c *eci.Client, hint string, err error) {
	cred, err := eci.StaticCredential(o.AccessKeyID, o.AccessKeySecret)
	if err != nil {
		return nil, "Check the AccessKey.", err
	}
	c, err = eci.NewClient(eci.Config{RegionId: o.Region, Endpoint: o.Endpoint, Credential: cred, Timeout: o.Timeout, MaxAttempts: 1, Concurrency: 1})
	if err != nil {
		return nil, "Check ECI_ENDPOINT (--endpoint) and ECI_REGION (--region).", err
	}
	return c, "", nil
}

func checkECI(ctx context.Context, o Options) Result {
	if o.AccessKeyID == "" && o.AccessKeySecret == "" {
		return Result{Name: CheckECI, Status: Skip, Message: "no ECI credentials given",
			Fix: "Pass --access-key-id/--access-key-secret/--region (or set ALIBABA_CLOUD_ACCESS_KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET, ECI_REGION) to check them."}
	}
	switch {
	case o.AccessKeyID == "" || o.AccessKeySecret == "":
		return Result{Name: CheckECI, Status: Fail, Message: "only one half of the AccessKey is given",
			Fix: "Set both ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET (--access-key-id, --access-key-secret)."}
	case o.Region == "":
		return Result{Name: CheckECI, Status: Fail, Message: "ECI_REGION is empty", Fix: "Set ECI_REGION (--region) to the region of the VPC, e.g. cn-hangzhou."}
	}
	c, hint, err := eciClient(o)
	if err != nil {
		return Result{Name: CheckECI, Status: Fail, Message: err.Error(), Fix: hint}
	}
	_, err = c.DescribeContainerGroups(ctx, &eci.DescribeContainerGroupsRequest{Limit: 1})
	if err == nil {
		return Result{Name: CheckECI, Status: Pass, Message: fmt.Sprintf("DescribeContainerGroups (Limit 1) succeeded in %s with AccessKey %s", o.Region, maskKey(o.AccessKeyID))}
	}
	var e *eci.Error
	fix := "Check ECI_ENDPOINT/ECI_REGION and that this machine reaches the ECI endpoint."
	if errors.As(err, &e) {
		switch {
		case strings.HasPrefix(e.Code, "InvalidAccessKeyId"), e.Code == "SignatureDoesNotMatch", strings.HasPrefix(e.Code, "InvalidSecurityToken"):
			fix = "The AccessKey is wrong or disabled: check ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET (the Secret kube-system/alibaba-addon-secret)."
		case strings.HasPrefix(e.Code, "Forbidden"), strings.HasPrefix(e.Code, "NoPermission"):
			fix = "The RAM user lacks ECI permissions: attach AliyunECIFullAccess (or a policy allowing eci:*ContainerGroup*) to it."
		case e.Code == "InvalidRegionId.NotFound":
			fix = "ECI_REGION is not a region ECI serves: call DescribeRegions or pick the VPC's region."
		case eci.ClassOf(err) == eci.ClassThrottled:
			fix = "The account is throttled right now; retry in a minute."
		}
	}
	return Result{Name: CheckECI, Status: Fail, Message: err.Error(), Fix: fix}
}

func maskKey(id string) string {
	if len(id) <= 6 {
		return "***"
	}
	return id[:3] + "***" + id[len(id)-3:]
}

// AdminClient builds an admin client from a kubeconfig path, $KUBECONFIG
// or ~/.kube/config; nil when none is usable (the kube-proxy check is then
// tried with the node's identity).
func AdminClient(path string) kubernetes.Interface {
	cfg, err := kubeconfig.Kubectl(path, "").ClientConfig()
	if err != nil {
		return nil
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil
	}
	return kube
}
