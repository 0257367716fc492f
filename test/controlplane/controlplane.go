// Package controlplane runs a real Kubernetes control plane — etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler — as local
// processes on loopback ports, for integration tests and the demo.
//
// Real binaries rather than fakes are used because the virtual node must
// meet production behaviour: node authorization, the node lifecycle
// controller tainting nodes whose Lease stops, CSR signing and scheduling.
package controlplane

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

const defaultStartTimeout = 2 * time.Minute

// Start-up order doubles as the dependency order: Stop goes in reverse so
// no component spends its shutdown retrying a dependency that is gone.
const (
	tierEtcd = iota
	tierAPIServer
	tierControllers
)

// ControlPlane is a running control plane. All methods are safe for
// concurrent use.
type ControlPlane struct {
	opts    Options
	bins    binaries
	dir     string
	ownsDir bool
	shmDir  string // etcd's data in /dev/shm, removed by Stop

	ca                   *CA
	caFile, caKeyFile    string
	saKeyFile, saPubFile string

	etcdURL      string
	apiserverURL string
	kubeconfig   string
	restConfig   *rest.Config
	clientset    kubernetes.Interface
	version      string

	mu       sync.Mutex
	procs    []*process
	tiers    map[*process]int
	stopOnce sync.Once
	stopped  chan struct{}
}

// Start brings up etcd, kube-apiserver, kube-controller-manager and
// kube-scheduler, and returns once the apiserver is ready, both controllers
// are healthy and the default namespace has its ServiceAccount (so pods can
// be created at once). Cancelling ctx, during or after Start, stops
// everything. A missing binary yields an error matching ErrBinariesMissing.
func Start(ctx context.Context, opts Options) (_ *ControlPlane, err error) {
	bins, err := resolveBinaries(opts)
	if err != nil {
		return nil, err
	}
	timeout := opts.StartTimeout
	if timeout <= 0 {
		timeout = defaultStartTimeout
	}
	startCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	cp := &ControlPlane{opts: opts, bins: bins, tiers: map[*process]int{}, stopped: make(chan struct{})}
	defer func() {
		if err != nil {
			cp.Stop()
		}
	}()
	if err := cp.prepareDir(); err != nil {
		return nil, err
	}
	if err := cp.writePKI(); err != nil {
		return nil, err
	}
	if err := retryPortRace(func() error { return cp.startEtcd(startCtx) }); err != nil {
		return nil, err
	}
	if err := retryPortRace(func() error { return cp.startAPIServer(startCtx) }); err != nil {
		return nil, err
	}
	if err := cp.connect(startCtx); err != nil {
		return nil, err
	}
	// The two controllers are independent; starting them together saves
	// several seconds of a start-up that every integration test pays.
	errs := make(chan error, 2)
	go func() { errs <- retryPortRace(func() error { return cp.startControllerManager(startCtx) }) }()
	go func() { errs <- retryPortRace(func() error { return cp.startScheduler(startCtx) }) }()
	if err := errors.Join(<-errs, <-errs); err != nil {
		return nil, err
	}
	if err := cp.WaitForNamespace(startCtx, metav1.NamespaceDefault); err != nil {
		return nil, cp.withComponentLog(KubeControllerManager, fmt.Errorf("default namespace not usable: %w", err))
	}
	go func() {
		select {
		case <-ctx.Done():
			cp.Stop()
		case <-cp.stopped:
		}
	}()
	return cp, nil
}

// retryPortRace runs start again once if it lost a race for a port with
// another process; start picks fresh ports on each call.
func retryPortRace(start func() error) error {
	err := start()
	if addrInUse(err) {
		err = start()
	}
	return err
}

func (cp *ControlPlane) prepareDir() error {
	if cp.opts.Dir == "" {
		d, err := os.MkdirTemp("", "controlplane-")
		if err != nil {
			return err
		}
		cp.dir, cp.ownsDir = d, true
	} else {
		d, err := filepath.Abs(cp.opts.Dir)
		if err != nil {
			return err
		}
		cp.dir = d
		// Stale etcd data would hold objects and tokens from a previous
		// CA and service-account key; only our own subdirectories go.
		for _, sub := range []string{"etcd", "pki"} {
			if err := os.RemoveAll(filepath.Join(d, sub)); err != nil {
				return err
			}
		}
	}
	for _, sub := range []string{"pki", "logs", "etcd", KubeAPIServer, KubeControllerManager, KubeScheduler} {
		if err := os.MkdirAll(filepath.Join(cp.dir, sub), 0o700); err != nil {
			return err
		}
	}
	return nil
}

func (cp *ControlPlane) pki(name string) string { return filepath.Join(cp.dir, "pki", name) }

func (cp *ControlPlane) writePKI() error {
	ca, err := NewCA("controlplane-ca")
	if err != nil {
		return err
	}
	cp.ca = ca
	pkiDir := filepath.Join(cp.dir, "pki")
	if cp.caFile, cp.caKeyFile, err = writePair(pkiDir, "ca", ca.CertPEM, ca.KeyPEM); err != nil {
		return err
	}
	saKey, saPub, err := newServiceAccountKey()
	if err != nil {
		return err
	}
	cp.saKeyFile, cp.saPubFile = cp.pki("sa.key"), cp.pki("sa.pub")
	if err := os.WriteFile(cp.saKeyFile, saKey, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(cp.saPubFile, saPub, 0o644); err != nil {
		return err
	}
	// 10.96.0.1 is the first service IP, which clients inside pods use.
	cert, key, err := ca.IssueServingCert([]string{"127.0.0.1", "localhost", "10.96.0.1",
		"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"})
	if err != nil {
		return err
	}
	if _, _, err := writePair(pkiDir, "apiserver", cert, key); err != nil {
		return err
	}
	// system:masters lets the apiserver reach any kubelet API for
	// logs/exec without RBAC set-up, as in kubeadm clusters.
	if cert, key, err = ca.IssueClientCert("kube-apiserver-kubelet-client", []string{"system:masters"}); err != nil {
		return err
	}
	if _, _, err = writePair(pkiDir, "apiserver-kubelet-client", cert, key); err != nil {
		return err
	}
	// The front proxy (requestheader) CA is separate, as in kubeadm: any
	// certificate it signs can assert arbitrary users via headers. Without
	// it the controllers log errors about the missing requestheader CA and
	// aggregated APIs (metrics-server) cannot authenticate requests.
	fp, err := NewCA("front-proxy-ca")
	if err != nil {
		return err
	}
	if _, _, err := writePair(pkiDir, "front-proxy-ca", fp.CertPEM, fp.KeyPEM); err != nil {
		return err
	}
	if cert, key, err = fp.IssueClientCert(frontProxyClient, nil); err != nil {
		return err
	}
	_, _, err = writePair(pkiDir, "front-proxy-client", cert, key)
	return err
}

// frontProxyClient is the identity the apiserver's aggregator uses towards
// aggregated API servers.
const frontProxyClient = "front-proxy-client"

func (cp *ControlPlane) logPath(name string) string {
	return filepath.Join(cp.dir, "logs", name+".log")
}

func (cp *ControlPlane) track(p *process, tier int) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	cp.procs = append(cp.procs, p)
	cp.tiers[p] = tier
}

// untrack stops a process whose start failed, so a retry or the final
// Stop does not see it.
func (cp *ControlPlane) untrack(p *process) {
	p.stop(stopGrace)
	cp.mu.Lock()
	defer cp.mu.Unlock()
	for i, q := range cp.procs {
		if q == p {
			cp.procs = append(cp.procs[:i], cp.procs[i+1:]...)
			break
		}
	}
	delete(cp.tiers, p)
}

func (cp *ControlPlane) startEtcd(ctx context.Context) error {
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	dataDir, err := cp.etcdDataDir()
	if err != nil {
		return err
	}
	// A failed attempt may have initialised the data dir with its ports.
	if err := os.RemoveAll(dataDir); err != nil {
		return err
	}
	client := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peer := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	args := []string{
		"--name=controlplane",
		"--data-dir=" + dataDir,
		"--listen-client-urls=" + client,
		"--advertise-client-urls=" + client,
		"--listen-peer-urls=" + peer,
		"--initial-advertise-peer-urls=" + peer,
		"--initial-cluster=controlplane=" + peer,
		"--initial-cluster-state=new",
		"--logger=zap",
		"--log-outputs=stderr",
	}
	p, err := startProcess(Etcd, cp.bins.etcd, args, etcdEnv(), cp.logPath(Etcd), cp.opts.Log)
	if err != nil {
		return err
	}
	cp.track(p, tierEtcd)
	hc := &http.Client{Timeout: 2 * time.Second}
	err = waitFor(ctx, p, "healthy", func(ctx context.Context) error {
		body, err := get(ctx, hc, client+"/health")
		if err == nil && !strings.Contains(body, `"health":"true"`) {
			err = fmt.Errorf("health: %s", body)
		}
		return err
	})
	if err != nil {
		cp.untrack(p)
		return err
	}
	cp.etcdURL = client
	return nil
}

// etcdEnv is our environment without ETCD_* variables: etcd reads those as
// flags, and ETCD_BIN (ours) or a developer's ETCDCTL settings would leak in.
func etcdEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCD_") {
			env = append(env, kv)
		}
	}
	return env
}

// waitFor polls check until it succeeds, failing fast with the log tail if
// the process exits and with the last check error if ctx ends.
func waitFor(ctx context.Context, p *process, what string, check func(context.Context) error) error {
	const interval = 100 * time.Millisecond
	for {
		if p.exited() {
			return p.failure(fmt.Errorf("exited (%v) before it was %s", p.waitErr, what))
		}
		last := check(ctx)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return p.failure(fmt.Errorf("not %s: %w (last check: %v)", what, ctx.Err(), last))
		case <-p.done:
		case <-time.After(interval):
		}
	}
}

// get returns the body of a 200 response, or an error with the status.
func get(ctx context.Context, c *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(b)))
	}
	return string(b), nil
}

func (cp *ControlPlane) startAPIServer(ctx context.Context) error {
	ports, err := freePorts(1)
	if err != nil {
		return err
	}
	url := "https://127.0.0.1:" + strconv.Itoa(ports[0])
	args := []string{
		"--etcd-servers=" + cp.etcdURL,
		"--secure-port=" + strconv.Itoa(ports[0]),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--cert-dir=" + filepath.Join(cp.dir, KubeAPIServer),
		"--tls-cert-file=" + cp.pki("apiserver.crt"),
		"--tls-private-key-file=" + cp.pki("apiserver.key"),
		"--client-ca-file=" + cp.caFile,
		"--service-account-key-file=" + cp.saPubFile,
		"--service-account-signing-key-file=" + cp.saKeyFile,
		"--service-account-issuer=" + ServiceAccountIssuer,
		"--authorization-mode=Node,RBAC",
		"--enable-bootstrap-token-auth=true",
		"--service-cluster-ip-range=" + ServiceClusterIPRange,
		"--kubelet-client-certificate=" + cp.pki("apiserver-kubelet-client.crt"),
		"--kubelet-client-key=" + cp.pki("apiserver-kubelet-client.key"),
		"--kubelet-preferred-address-types=InternalIP,Hostname",
		"--allow-privileged=true",
		"--requestheader-client-ca-file=" + cp.pki("front-proxy-ca.crt"),
		"--requestheader-allowed-names=" + frontProxyClient,
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file=" + cp.pki("front-proxy-client.crt"),
		"--proxy-client-key-file=" + cp.pki("front-proxy-client.key"),
		// No kube-proxy routes service IPs here, so the aggregator must
		// dial endpoint IPs directly.
		"--enable-aggregator-routing=true",
		// Endpoints validation rejects the loopback advertise address, so
		// the reconciler would log an error every 10s for an Endpoints
		// object nothing here could use (no kube-proxy). The kubernetes
		// Service itself is still created.
		"--endpoint-reconciler-type=none",
	}
	args = append(args, cp.opts.ExtraAPIServerArgs...)
	p, err := startProcess(KubeAPIServer, cp.bins.apiserver, args, nil, cp.logPath(KubeAPIServer), cp.opts.Log)
	if err != nil {
		return err
	}
	cp.track(p, tierAPIServer)
	// /readyz as admin: anonymous access to it depends on RBAC roles the
	// apiserver is still bootstrapping.
	cert, key, err := cp.ca.IssueClientCert("controlplane-readiness", []string{"system:masters"})
	if err != nil {
		cp.untrack(p)
		return err
	}
	pair, err := tls.X509KeyPair(cert, key)
	if err != nil {
		cp.untrack(p)
		return err
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: cp.caPool(), Certificates: []tls.Certificate{pair}},
	}}
	defer hc.CloseIdleConnections()
	if err := waitFor(ctx, p, "ready", func(ctx context.Context) error {
		_, err := get(ctx, hc, url+"/readyz")
		return err
	}); err != nil {
		cp.untrack(p)
		return err
	}
	cp.apiserverURL = url
	return nil
}

func (cp *ControlPlane) caPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(cp.ca.Cert)
	return pool
}

// connect writes the admin kubeconfig and builds the shared clients once
// the apiserver URL is known.
func (cp *ControlPlane) connect(ctx context.Context) error {
	cp.kubeconfig = filepath.Join(cp.dir, "admin.kubeconfig")
	if err := cp.WriteKubeconfig(cp.kubeconfig, "admin", []string{"system:masters"}); err != nil {
		return err
	}
	cfg, err := cp.RESTConfigFor("admin", []string{"system:masters"})
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	v, err := cs.Discovery().ServerVersion()
	if err != nil {
		return cp.withComponentLog(KubeAPIServer, fmt.Errorf("server version: %w", err))
	}
	cp.restConfig, cp.clientset, cp.version = cfg, cs, v.GitVersion
	return ctx.Err()
}

// componentKubeconfig writes a kubeconfig for a control-plane component
// identity; the built-in RBAC roles bind exactly these user names.
func (cp *ControlPlane) componentKubeconfig(name, user string) (string, error) {
	path := filepath.Join(cp.dir, name, "kubeconfig")
	return path, cp.WriteKubeconfig(path, user, nil)
}

// commonControllerArgs are the flags kube-controller-manager and
// kube-scheduler share: their identity, a loopback health port and no
// leader election (one instance each).
func (cp *ControlPlane) commonControllerArgs(name, user string) (args []string, port int, err error) {
	kc, err := cp.componentKubeconfig(name, user)
	if err != nil {
		return nil, 0, err
	}
	ports, err := freePorts(1)
	if err != nil {
		return nil, 0, err
	}
	return []string{
		"--kubeconfig=" + kc,
		"--authentication-kubeconfig=" + kc,
		"--authorization-kubeconfig=" + kc,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(ports[0]),
		"--cert-dir=" + filepath.Join(cp.dir, name),
		"--leader-elect=false",
	}, ports[0], nil
}

func (cp *ControlPlane) startControllerManager(ctx context.Context) error {
	args, port, err := cp.commonControllerArgs(KubeControllerManager, "system:kube-controller-manager")
	if err != nil {
		return err
	}
	args = append(args,
		"--cluster-signing-cert-file="+cp.caFile,
		"--cluster-signing-key-file="+cp.caKeyFile,
		"--root-ca-file="+cp.caFile,
		"--service-account-private-key-file="+cp.saKeyFile,
		"--use-service-account-credentials=true",
		// No pod CIDRs are allocated here (the controller is "nodeipam" in
		// older releases) and there is no cloud provider, so those
		// controllers would only log errors. node-lifecycle-controller
		// stays on: tainting and evicting nodes whose Lease stops is
		// production behaviour tests must see.
		"--controllers=*,-node-ipam-controller,-service-lb-controller,-cloud-node-lifecycle-controller,-node-route-controller",
		// Controllers start one after another, each fetching its own
		// service-account token; at the default 20 QPS that alone takes
		// seconds of every test's start-up.
		"--kube-api-qps=100",
		"--kube-api-burst=200",
	)
	if d := cp.opts.ClusterSigningDuration; d > 0 {
		args = append(args, "--cluster-signing-duration="+d.String())
	}
	return cp.startController(ctx, KubeControllerManager, cp.bins.controllerManager, args, port)
}

func (cp *ControlPlane) startScheduler(ctx context.Context) error {
	args, port, err := cp.commonControllerArgs(KubeScheduler, "system:kube-scheduler")
	if err != nil {
		return err
	}
	return cp.startController(ctx, KubeScheduler, cp.bins.scheduler, args, port)
}

// startController starts a component and waits for its /healthz. Its
// serving certificate is self-signed, hence no verification.
func (cp *ControlPlane) startController(ctx context.Context, name, bin string, args []string, port int) error {
	p, err := startProcess(name, bin, args, nil, cp.logPath(name), cp.opts.Log)
	if err != nil {
		return err
	}
	cp.track(p, tierControllers)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // self-signed, loopback only
	}}
	defer hc.CloseIdleConnections()
	url := "https://127.0.0.1:" + strconv.Itoa(port) + "/healthz"
	if err := waitFor(ctx, p, "healthy", func(ctx context.Context) error {
		_, err := get(ctx, hc, url)
		return err
	}); err != nil {
		cp.untrack(p)
		return err
	}
	return nil
}

// withComponentLog attaches a component's log tail to err, for failures
// noticed through the API rather than by the process exiting.
func (cp *ControlPlane) withComponentLog(name string, err error) error {
	path := cp.logPath(name)
	return &ProcessError{Component: name, LogFile: path, Err: err, LogTail: tailFile(path, 30, 4096)}
}

// WaitForNamespace waits until namespace has its default ServiceAccount
// (without it pod creation is rejected) and the kube-root-ca.crt ConfigMap
// (which kubelets mount into pods with service-account tokens). Both are
// created asynchronously by the controller manager after a namespace is.
func (cp *ControlPlane) WaitForNamespace(ctx context.Context, namespace string) error {
	cs := cp.Clientset()
	for {
		_, err := cs.CoreV1().ServiceAccounts(namespace).Get(ctx, "default", metav1.GetOptions{})
		if err == nil {
			_, err = cs.CoreV1().ConfigMaps(namespace).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
		}
		if err == nil {
			return nil
		}
		// Any error is retried, not only NotFound: a test may call this
		// while the apiserver is briefly unavailable; only ctx ends it.
		select {
		case <-ctx.Done():
			return fmt.Errorf("namespace %s: %w (last error: %v)", namespace, ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop terminates all processes (SIGTERM, then SIGKILL to each process
// group after a grace period), newest tier first, and removes the working
// directory if Start created it and KeepDir is false. It is idempotent and
// blocks until every process has exited.
func (cp *ControlPlane) Stop() {
	cp.stopOnce.Do(func() {
		close(cp.stopped)
		cp.mu.Lock()
		procs := append([]*process(nil), cp.procs...)
		tiers := make(map[*process]int, len(cp.tiers))
		for p, t := range cp.tiers {
			tiers[p] = t
		}
		cp.mu.Unlock()
		for tier := tierControllers; tier >= tierEtcd; tier-- {
			var wg sync.WaitGroup
			for _, p := range procs {
				if tiers[p] == tier {
					wg.Add(1)
					go func() {
						defer wg.Done()
						p.stop(stopGrace)
					}()
				}
			}
			wg.Wait()
		}
		if cp.shmDir != "" {
			_ = os.RemoveAll(cp.shmDir)
		}
		if cp.ownsDir && !cp.opts.KeepDir {
			_ = os.RemoveAll(cp.dir)
		}
	})
}

// etcdDataDir is etcd's data directory: under /dev/shm unless
// Options.EtcdOnDisk is set or there is no /dev/shm (see EtcdOnDisk).
func (cp *ControlPlane) etcdDataDir() (string, error) {
	if cp.opts.EtcdOnDisk {
		return filepath.Join(cp.dir, "etcd"), nil
	}
	if cp.shmDir == "" {
		if fi, err := os.Stat("/dev/shm"); err != nil || !fi.IsDir() {
			return filepath.Join(cp.dir, "etcd"), nil
		}
		d, err := os.MkdirTemp("/dev/shm", "controlplane-etcd-")
		if err != nil {
			return filepath.Join(cp.dir, "etcd"), nil
		}
		cp.shmDir = d
	}
	return filepath.Join(cp.shmDir, "data"), nil
}

// Done is closed when Stop begins, whether called directly or because the
// context given to Start ended.
func (cp *ControlPlane) Done() <-chan struct{} { return cp.stopped }

// Dir is the working directory holding pki, kubeconfigs and logs.
func (cp *ControlPlane) Dir() string { return cp.dir }

// Kubeconfig is the path of the admin kubeconfig (user admin, group
// system:masters), usable with kubectl --kubeconfig.
func (cp *ControlPlane) Kubeconfig() string { return cp.kubeconfig }

// RESTConfig returns a copy of the admin client configuration; callers may
// change it (QPS, user agent) without affecting others.
func (cp *ControlPlane) RESTConfig() *rest.Config { return rest.CopyConfig(cp.restConfig) }

// PauseAPIServer freezes the kube-apiserver process (SIGSTOP), as a stall
// of the apiserver would: connections stay open and requests get no
// answer. resume (SIGCONT) lets it go on; Stop resumes it too. Use it on a
// control plane of the test's own, never on a shared one.
func (cp *ControlPlane) PauseAPIServer() (resume func() error, err error) {
	cp.mu.Lock()
	var apiserver *process
	for _, p := range cp.procs {
		if cp.tiers[p] == tierAPIServer {
			apiserver = p
		}
	}
	cp.mu.Unlock()
	if apiserver == nil || apiserver.exited() {
		return nil, errors.New("no running kube-apiserver to pause")
	}
	pid := apiserver.pid()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		return nil, fmt.Errorf("pause kube-apiserver (pid %d): %w", pid, err)
	}
	return func() error { return syscall.Kill(pid, syscall.SIGCONT) }, nil
}

// RoundTripFunc adapts a function to http.RoundTripper.
type RoundTripFunc func(*http.Request) (*http.Response, error)

// RoundTrip calls f.
func (f RoundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// ClientWith returns an admin client whose requests pass through around,
// which may act before and after handing a request to next, the transport
// to the real apiserver (count it, fail it, change the cluster in between,
// hold the response back).
func (cp *ControlPlane) ClientWith(around func(r *http.Request, next http.RoundTripper) (*http.Response, error)) (kubernetes.Interface, error) {
	cfg := cp.RESTConfig()
	cfg.WrapTransport = func(next http.RoundTripper) http.RoundTripper {
		return RoundTripFunc(func(r *http.Request) (*http.Response, error) { return around(r, next) })
	}
	return kubernetes.NewForConfig(cfg)
}

// Clientset is a shared admin clientset.
func (cp *ControlPlane) Clientset() kubernetes.Interface { return cp.clientset }

// APIServerURL is the apiserver's https URL on 127.0.0.1.
func (cp *ControlPlane) APIServerURL() string { return cp.apiserverURL }

// Version is the apiserver's gitVersion, e.g. v1.30.14.
func (cp *ControlPlane) Version() string { return cp.version }

// CAFile is the path of the cluster CA certificate (PEM), which signs every
// certificate here, including CSRs approved through the API.
func (cp *ControlPlane) CAFile() string { return cp.caFile }

// KubeletClientCertFiles are the paths of the certificate and key (PEM) the
// apiserver authenticates to kubelets with (--kubelet-client-certificate
// and --kubelet-client-key: user kube-apiserver-kubelet-client in
// system:masters), for tests that call a kubelet API as the apiserver does.
func (cp *ControlPlane) KubeletClientCertFiles() (certFile, keyFile string) {
	return cp.pki("apiserver-kubelet-client.crt"), cp.pki("apiserver-kubelet-client.key")
}

// CAKeyFile is the path of the cluster CA private key (PEM).
func (cp *ControlPlane) CAKeyFile() string { return cp.caKeyFile }

// CACertPEM is the cluster CA certificate in PEM form, as kubeconfigs and
// kubelet --client-ca-file want it.
func (cp *ControlPlane) CACertPEM() []byte { return append([]byte(nil), cp.ca.CertPEM...) }

// CACert is the parsed cluster CA certificate.
func (cp *ControlPlane) CACert() *x509.Certificate { return cp.ca.Cert }

// CAKey is the cluster CA private key, for callers that sign on their own.
func (cp *ControlPlane) CAKey() crypto.Signer { return cp.ca.Key }

// IssueClientCert returns a client certificate for user cn in groups orgs,
// signed by the cluster CA, so the apiserver authenticates it directly
// (e.g. cn "system:node:<name>", orgs ["system:nodes"] for a node).
func (cp *ControlPlane) IssueClientCert(cn string, orgs []string) (certPEM, keyPEM []byte, err error) {
	return cp.ca.IssueClientCert(cn, orgs)
}

// IssueServingCert returns a serving certificate for hosts (IPs or DNS
// names) signed by the cluster CA, e.g. for a kubelet endpoint.
func (cp *ControlPlane) IssueServingCert(hosts []string) (certPEM, keyPEM []byte, err error) {
	return cp.ca.IssueServingCert(hosts)
}

// RESTConfigFor returns a client configuration authenticating as user cn in
// groups orgs with a fresh certificate, for tests of authorization (Node
// authorizer, RBAC). It is not rate limited beyond generous local limits.
func (cp *ControlPlane) RESTConfigFor(cn string, orgs []string) (*rest.Config, error) {
	cert, key, err := cp.ca.IssueClientCert(cn, orgs)
	if err != nil {
		return nil, err
	}
	return &rest.Config{
		Host: cp.apiserverURL,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   cp.CACertPEM(),
			CertData: cert,
			KeyData:  key,
		},
		// client-go's default 5 QPS would make tests that create many
		// objects measure the client, not the system.
		QPS:   100,
		Burst: 200,
	}, nil
}

// WriteKubeconfig writes a self-contained kubeconfig (CA, certificate and
// key inlined) for user cn in groups orgs to path.
func (cp *ControlPlane) WriteKubeconfig(path, cn string, orgs []string) error {
	cert, key, err := cp.ca.IssueClientCert(cn, orgs)
	if err != nil {
		return err
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["local"] = &clientcmdapi.Cluster{Server: cp.apiserverURL, CertificateAuthorityData: cp.CACertPEM()}
	cfg.AuthInfos[cn] = &clientcmdapi.AuthInfo{ClientCertificateData: cert, ClientKeyData: key}
	cfg.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: cn}
	cfg.CurrentContext = "local"
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return clientcmd.WriteToFile(*cfg, path)
}

// PIDs maps component name (etcd, kube-apiserver, ...) to process id.
func (cp *ControlPlane) PIDs() map[string]int {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	m := make(map[string]int, len(cp.procs))
	for _, p := range cp.procs {
		m[p.name] = p.pid()
	}
	return m
}

// LogFile is the path of a component's log (stdout and stderr).
func (cp *ControlPlane) LogFile(component string) string { return cp.logPath(component) }

// LogTail returns the last lines of a component's log, for test failure
// reports.
func (cp *ControlPlane) LogTail(component string, lines int) string {
	return tailFile(cp.logPath(component), lines, int64(lines)*512)
}
