// Package bootstrap is TLS bootstrapping for a virtual node: from the
// bootstrap kubeconfig `vnodectl kubeconfig --mode bootstrap` writes, it
// asks for a client certificate (CSR with subject O=system:vnodes,
// CN=system:vnode:<node-name>, which vnode-approver approves and
// kube-controller-manager signs), keeps the certificate and key in a
// directory so a restart does not bootstrap again, and renews it before
// expiry with client-go's certificate manager (a renewal is requested with
// the current certificate, i.e. selfnodeclient). The rest.Config it returns
// always presents the current certificate and drops connections made with
// an older one, so rotation never leaves the node without a valid identity.
package bootstrap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/nodeaccess"
	certificatesv1 "k8s.io/api/certificates/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/certificate"
	"k8s.io/client-go/util/connrotation"
	"k8s.io/klog/v2"
)

// PairName prefixes the files in CertDir: vnode-client-current.pem is a
// symlink to the current certificate and key (one PEM file).
const PairName = "vnode-client"

// Options configure ClientConfig.
type Options struct {
	// BootstrapKubeconfig is the bootstrap kubeconfig (vnode-config with a
	// bootstrap token); its server and CA are used for every connection.
	BootstrapKubeconfig string
	// CertDir keeps the certificate and key across restarts (a volume).
	CertDir string
	// NodeName is the virtual node's name; the certificate's CN is
	// CNPrefix+NodeName.
	NodeName string
	// Organization and CNPrefix default to vnode-approver's defaults
	// (system:vnodes, system:vnode:).
	Organization, CNPrefix string
	// WaitTimeout bounds the wait for the first certificate (default 5m).
	WaitTimeout time.Duration
	// CheckInterval is how often the transport looks for a rotated
	// certificate to drop old connections (default 1s).
	CheckInterval time.Duration
}

// Client is a bootstrapped identity.
type Client struct {
	// Config presents the current certificate; use it for every client of
	// the node.
	Config *rest.Config
	// Manager is the certificate manager (Current for the certificate).
	Manager certificate.Manager
}

// ClientConfig bootstraps (or reuses the certificate in CertDir), starts
// rotation and returns the node's client configuration. Rotation stops when
// ctx ends. It fails, naming the likely cause, when no certificate is
// issued within WaitTimeout.
func ClientConfig(ctx context.Context, o Options) (*Client, error) {
	if o.NodeName == "" {
		return nil, errors.New("bootstrap: the node name is empty (VIRTUAL_NODE_NAME)")
	}
	if o.CertDir == "" {
		return nil, errors.New("bootstrap: the certificate directory is empty")
	}
	if o.Organization == "" {
		o.Organization = nodeaccess.NodeGroup
	}
	if o.CNPrefix == "" {
		o.CNPrefix = nodeaccess.NodeCNPrefix
	}
	if o.WaitTimeout <= 0 {
		o.WaitTimeout = 5 * time.Minute
	}
	if o.CheckInterval <= 0 {
		o.CheckInterval = time.Second
	}
	boot, err := clientcmd.BuildConfigFromFlags("", o.BootstrapKubeconfig)
	if err != nil {
		return nil, fmt.Errorf("bootstrap kubeconfig %s: %w", o.BootstrapKubeconfig, err)
	}
	roots, err := rootCAs(boot)
	if err != nil {
		return nil, fmt.Errorf("bootstrap kubeconfig %s: %w", o.BootstrapKubeconfig, err)
	}
	if err := os.MkdirAll(o.CertDir, 0o700); err != nil {
		return nil, fmt.Errorf("certificate directory: %w", err)
	}
	store, err := certificate.NewFileStore(PairName, o.CertDir, o.CertDir, "", "")
	if err != nil {
		return nil, fmt.Errorf("certificate store %s: %w", o.CertDir, err)
	}
	cn := o.CNPrefix + o.NodeName
	mgr, err := certificate.NewManager(&certificate.Config{
		ClientsetFn: func(current *tls.Certificate) (kubernetes.Interface, error) {
			// Renew with the current certificate while it is valid
			// (vnode-approver then checks selfnodeclient); bootstrap with
			// the token otherwise.
			if current != nil && current.Leaf != nil && time.Now().Before(current.Leaf.NotAfter) {
				return kubernetes.NewForConfig(withTransport(boot, roots, func() *tls.Certificate { return current }, nil))
			}
			return kubernetes.NewForConfig(rest.CopyConfig(boot))
		},
		Template: &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn, Organization: []string{o.Organization}}},
		// The manager generates an ECDSA P-256 key: key encipherment is
		// meaningless for it, and vnode-approver accepts exactly these.
		Usages:           []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth},
		SignerName:       certificatesv1.KubeAPIServerClientSignerName,
		CertificateStore: store,
		Name:             "vnode-client " + cn,
		Ctx:              &ctx,
	})
	if err != nil {
		return nil, fmt.Errorf("certificate manager: %w", err)
	}
	mgr.Start()
	wctx, cancel := context.WithTimeout(ctx, o.WaitTimeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for mgr.Current() == nil {
		select {
		case <-wctx.Done():
			mgr.Stop()
			return nil, fmt.Errorf("no client certificate for %s within %s: is vnode-approver running, and does the bootstrap token still exist "+
				"(kubectl get csr; vnodectl doctor --kubeconfig %s)? %w", cn, o.WaitTimeout, o.BootstrapKubeconfig, wctx.Err())
		case <-tick.C:
		}
	}

	// Every connection presents the current certificate; when it changes,
	// connections made with the old one are closed so requests move to
	// the new identity before the old certificate expires.
	dialer := connrotation.NewDialer((&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext)
	cfg := withTransport(boot, roots, mgr.Current, dialer)
	go func() {
		last := mgr.Current()
		t := time.NewTicker(o.CheckInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if cur := mgr.Current(); cur != nil && cur != last {
				last = cur
				klog.InfoS("Client certificate rotated; closing connections made with the previous one", "commonName", cn, "notAfter", cur.Leaf.NotAfter)
				dialer.CloseAll()
			}
		}
	}()
	return &Client{Config: cfg, Manager: mgr}, nil
}

// rootCAs is the CA pool of the bootstrap kubeconfig.
func rootCAs(c *rest.Config) (*x509.CertPool, error) {
	data := c.CAData
	if len(data) == 0 && c.CAFile != "" {
		var err error
		if data, err = os.ReadFile(c.CAFile); err != nil {
			return nil, err
		}
	}
	if len(data) == 0 {
		return nil, errors.New("no certificate-authority-data: regenerate it with `vnodectl kubeconfig --mode bootstrap`")
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, errors.New("certificate-authority-data holds no PEM certificate")
	}
	return pool, nil
}

// withTransport returns boot's server with a transport presenting cert()
// as the client certificate and no other credential.
func withTransport(boot *rest.Config, roots *x509.CertPool, cert func() *tls.Certificate, dialer *connrotation.Dialer) *rest.Config {
	tlsCfg := &tls.Config{
		RootCAs:    roots,
		ServerName: boot.ServerName,
		MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if c := cert(); c != nil {
				return c, nil
			}
			return &tls.Certificate{}, nil
		},
	}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		TLSClientConfig:     tlsCfg,
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 25,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   true,
	}
	if dialer != nil {
		tr.DialContext = dialer.DialContext
	}
	return &rest.Config{
		Host:      boot.Host,
		APIPath:   boot.APIPath,
		Transport: tr,
		Timeout:   boot.Timeout,
		QPS:       boot.QPS,
		Burst:     boot.Burst,
		UserAgent: boot.UserAgent,
	}
}
