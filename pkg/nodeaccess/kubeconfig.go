package nodeaccess

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/kubeconfig"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// ErrNoCA is matched (errors.Is) when the admin kubeconfig has no cluster
// CA to inline.
var ErrNoCA = errors.New("no cluster CA")

// Admin is the cluster the user administers, as the current kubeconfig
// describes it.
type Admin struct {
	// Config is the client configuration (admin credentials).
	Config *rest.Config
	// ClusterName and ContextName are the current entries' names, reused in
	// vnode-config so it reads like the user's own kubeconfig.
	ClusterName, ContextName string
	// CAData is the cluster CA, inlined even when the kubeconfig has a path.
	CAData []byte
}

// LoadAdmin reads the kubeconfig the way kubectl does: path if given,
// else $KUBECONFIG, else ~/.kube/config; context overrides the current
// context. caFile, if set, supplies the CA instead of the kubeconfig's.
// A CA given as a file path (certificate-authority) is read and inlined;
// none at all is ErrNoCA with the vendor's advice, returned together with
// the Admin for callers that need no CA to inline.
func LoadAdmin(path, context, caFile string) (*Admin, error) {
	cc := kubeconfig.Kubectl(path, context)
	raw, err := cc.RawConfig()
	if err != nil {
		return nil, fmt.Errorf("read kubeconfig %s: %w", describePath(path), err)
	}
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w (pass --kubeconfig or set KUBECONFIG to an admin kubeconfig)", describePath(path), err)
	}
	a := &Admin{Config: cfg, ContextName: raw.CurrentContext}
	if context != "" {
		a.ContextName = context
	}
	if c := raw.Contexts[a.ContextName]; c != nil {
		a.ClusterName = c.Cluster
	}
	if a.ClusterName == "" {
		a.ClusterName = "kubernetes"
	}
	if a.ContextName == "" {
		a.ContextName = "vnode@" + a.ClusterName
	}
	switch {
	case caFile != "":
		if a.CAData, err = os.ReadFile(caFile); err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}
	case len(cfg.CAData) > 0:
		a.CAData = cfg.CAData
	case cfg.CAFile != "":
		// The vendor's script left certificate-authority-data empty here;
		// a virtual node in the cloud cannot read a path on this machine.
		if a.CAData, err = os.ReadFile(cfg.CAFile); err != nil {
			return nil, fmt.Errorf("cluster %q: certificate-authority %s cannot be read to inline it: %w (fix the path or pass --ca-file)", a.ClusterName, cfg.CAFile, err)
		}
	default:
		return a, fmt.Errorf("%w: cluster %q in kubeconfig %s has neither certificate-authority-data nor certificate-authority; "+
			"the virtual node must verify the API server. If certificate-authority-data is empty, check whether ~/.kube/config "+
			"uses the certificate-authority PATH field instead, or pass --ca-file with the cluster CA (e.g. /etc/kubernetes/pki/ca.crt)",
			ErrNoCA, a.ClusterName, describePath(path))
	}
	return a, nil
}

func describePath(path string) string {
	if path != "" {
		return path
	}
	if env := os.Getenv(clientcmd.RecommendedConfigPathEnvVar); env != "" {
		return env + " ($KUBECONFIG)"
	}
	return clientcmd.RecommendedHomeFile
}

// Kubeconfig builds vnode-config: one cluster (server, CA inlined), user
// "vnode" with token, namespace kube-system, as the vendor's samples show.
func Kubeconfig(server string, caData []byte, clusterName, contextName, token string) *clientcmdapi.Config {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[clusterName] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caData}
	cfg.AuthInfos[UserName] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts[contextName] = &clientcmdapi.Context{Cluster: clusterName, AuthInfo: UserName, Namespace: Namespace}
	cfg.CurrentContext = contextName
	return cfg
}

// Options are the inputs of Generate.
type Options struct {
	// Mode selects bootstrap token or ServiceAccount token.
	Mode Mode
	// ExtraPrivilege adds endpoints create/update (1.13 leader election).
	ExtraPrivilege bool
	// Server overrides the API server address written to vnode-config, for
	// when the cloud VPC reaches it under another address than this machine.
	Server string
	// Output is the path of vnode-config.
	Output string
	// Token selects lifetime and rotation.
	Token TokenOptions
}

// Result describes what Generate did.
type Result struct {
	// Changes lists RBAC objects created or updated.
	Changes []string
	// Token is the credential written.
	Token Token
	// Server is the API server address in vnode-config.
	Server string
	// Warnings must be shown to the user (e.g. the token cannot rotate).
	Warnings []string
}

// Generate creates the RBAC and the token of o.Mode with admin's
// credentials and writes vnode-config (mode 0600) to o.Output.
func Generate(ctx context.Context, admin *Admin, o Options) (*Result, error) {
	if o.Output == "" {
		return nil, errors.New("-o: the output path must not be empty; use e.g. -o vnode-config")
	}
	if o.Token.TTL < 0 {
		return nil, fmt.Errorf("--token-ttl %s must not be negative; 0 means no expiry", o.Token.TTL)
	}
	kube, err := kubernetes.NewForConfig(admin.Config)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	res := &Result{Server: admin.Config.Host}
	if o.Server != "" {
		res.Server = o.Server
	}
	if res.Changes, err = EnsureRBAC(ctx, kube, o.Mode, o.ExtraPrivilege); err != nil {
		return res, err
	}
	switch o.Mode {
	case ModeBootstrap:
		res.Token, err = EnsureBootstrapToken(ctx, kube, o.Token)
	case ModeServiceAccount:
		res.Token, err = EnsureServiceAccountToken(ctx, kube, o.Token)
		if err == nil {
			exp := "it never expires; revoke it by deleting " + res.Token.Source
			if !res.Token.Expires.IsZero() {
				exp = "it expires at " + res.Token.Expires.UTC().Format(time.RFC3339) + " and the virtual node stops working then; run vnodectl kubeconfig again before that"
			}
			res.Warnings = append(res.Warnings, "ServiceAccount mode does not support certificate rotation: the token in "+o.Output+" cannot rotate; "+exp+
				". Use --mode bootstrap (TLS bootstrapping) in production.")
		}
	default:
		return res, fmt.Errorf("--mode %q: use bootstrap or serviceaccount", o.Mode)
	}
	if err != nil {
		return res, err
	}
	kc := Kubeconfig(res.Server, admin.CAData, admin.ClusterName, admin.ContextName, res.Token.Value)
	if dir := filepath.Dir(o.Output); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return res, fmt.Errorf("-o %s: %w", o.Output, err)
		}
	}
	b, err := clientcmd.Write(*kc)
	if err != nil {
		return res, fmt.Errorf("encode kubeconfig: %w", err)
	}
	if err := os.WriteFile(o.Output, b, 0o600); err != nil {
		return res, fmt.Errorf("-o %s: %w", o.Output, err)
	}
	return res, nil
}
