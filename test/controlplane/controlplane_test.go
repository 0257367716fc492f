package controlplane_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/ack-virtual-node/ack-virtual-node/test/controlplane"
	"github.com/ack-virtual-node/ack-virtual-node/test/testutil"
)

const wantVersion = "v1.30.14"

// TestControlPlane is the end-to-end check: one start-up is shared by the
// subtests because it costs seconds.
func TestControlPlane(t *testing.T) {
	begin := time.Now()
	cp := controlplane.StartForTest(t, controlplane.Options{})
	t.Logf("control plane started in %v (apiserver %s, dir %s)", time.Since(begin).Round(time.Millisecond), cp.APIServerURL(), cp.Dir())

	if got := cp.Version(); got != wantVersion {
		t.Errorf("Version() = %q, want %q", got, wantVersion)
	}
	if _, err := os.Stat(cp.Kubeconfig()); err != nil {
		t.Fatalf("admin kubeconfig: %v", err)
	}

	t.Run("kubectl version", func(t *testing.T) {
		kubectl, err := exec.LookPath("kubectl")
		if err != nil {
			kubectl = "/usr/bin/kubectl"
		}
		out, err := exec.Command(kubectl, "--kubeconfig", cp.Kubeconfig(), "version", "-o", "json").Output()
		if err != nil {
			t.Fatalf("kubectl version: %v\n%s", err, out)
		}
		var v struct {
			ServerVersion struct {
				GitVersion string `json:"gitVersion"`
			} `json:"serverVersion"`
		}
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatalf("parse %s: %v", out, err)
		}
		if v.ServerVersion.GitVersion != wantVersion {
			t.Errorf("serverVersion.gitVersion = %q, want %q", v.ServerVersion.GitVersion, wantVersion)
		}
	})

	t.Run("scheduler binds pod, logs reach kubelet", func(t *testing.T) {
		testScheduling(t, cp)
	})

	t.Run("CSR signed by cluster CA", func(t *testing.T) {
		testCSR(t, cp)
	})

	pids := cp.PIDs()
	if len(pids) != 4 {
		t.Errorf("PIDs() = %v, want 4 components", pids)
	}
	begin = time.Now()
	cp.Stop()
	t.Logf("control plane stopped in %v", time.Since(begin).Round(time.Millisecond))
	cp.Stop() // idempotent
	for name, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s (pid %d) still exists after Stop: kill 0 = %v", name, pid, err)
		}
	}
	// StartForTest passed t.TempDir(), which Stop must leave to its owner.
	for _, f := range []string{cp.Kubeconfig(), cp.LogFile(controlplane.KubeAPIServer)} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("%s should survive Stop in a caller's Dir: %v", f, err)
		}
	}
}

func testScheduling(t *testing.T, cp *controlplane.ControlPlane) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cs := cp.Clientset()

	ns, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "sched-test"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const nodeName = "test-node"
	resources := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("4"),
		corev1.ResourceMemory: resource.MustParse("8Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	if _, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeName}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A Lease keeps the node lifecycle controller from declaring the node
	// unreachable while the test runs.
	now := metav1.NewMicroTime(time.Now())
	holder, duration := nodeName, int32(40)
	if _, err := cs.CoordinationV1().Leases(corev1.NamespaceNodeLease).Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: nodeName},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &duration, RenewTime: &now},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kubelet := startFakeKubelet(t, cp)
	if err := setNodeReady(ctx, cs, nodeName, resources, kubelet.port); err != nil {
		t.Fatal(err)
	}
	if err := cp.WaitForNamespace(ctx, ns.Name); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name:  "c",
			Image: "busybox",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("100m"),
				corev1.ResourceMemory: resource.MustParse("64Mi"),
			}},
		}}},
	}
	begin := time.Now()
	if _, err := cs.CoreV1().Pods(ns.Name).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for {
		p, err := cs.CoreV1().Pods(ns.Name).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Spec.NodeName == nodeName {
			t.Logf("pod bound to %s %v after creation", nodeName, time.Since(begin).Round(time.Millisecond))
			break
		}
		select {
		case <-ctx.Done():
			n, _ := cs.CoreV1().Nodes().Get(context.Background(), nodeName, metav1.GetOptions{})
			t.Fatalf("pod not bound: nodeName=%q conditions=%v; node taints=%v", p.Spec.NodeName, p.Status.Conditions, n.Spec.Taints)
		case <-time.After(100 * time.Millisecond):
		}
	}

	// The apiserver must reach the node's kubelet port at 127.0.0.1 with its
	// kubelet client certificate, which is what kubectl logs/exec need.
	logs, err := cs.CoreV1().Pods(ns.Name).GetLogs(pod.Name, &corev1.PodLogOptions{Container: "c"}).DoRaw(ctx)
	if err != nil {
		t.Fatalf("pod logs through the apiserver: %v", err)
	}
	if string(logs) != fakeLog {
		t.Errorf("logs = %q, want %q", logs, fakeLog)
	}
	if got := kubelet.clientCN(); got != "kube-apiserver-kubelet-client" {
		t.Errorf("apiserver authenticated to the kubelet as %q", got)
	}
}

const fakeLog = "hello from the fake kubelet\n"

// fakeKubelet serves containerLogs over TLS and records which client
// certificate the apiserver presented.
type fakeKubelet struct {
	port int32
	mu   sync.Mutex
	cn   string
}

func (k *fakeKubelet) clientCN() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.cn
}

func startFakeKubelet(t *testing.T, cp *controlplane.ControlPlane) *fakeKubelet {
	t.Helper()
	certPEM, keyPEM, err := cp.IssueServingCert([]string{"127.0.0.1", "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(cp.CACert())
	k := &fakeKubelet{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k.mu.Lock()
		k.cn = r.TLS.PeerCertificates[0].Subject.CommonName
		k.mu.Unlock()
		if !strings.HasPrefix(r.URL.Path, "/containerLogs/") {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, fakeLog)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: clientCAs, ClientAuth: tls.RequireAndVerifyClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	k.port = int32(srv.Listener.Addr().(*net.TCPAddr).Port)
	return k
}

// setNodeReady reports the node Ready with capacity and its kubelet
// endpoint on 127.0.0.1, as a kubelet would;
// the node lifecycle controller then removes the not-ready taint that
// admission put on the new node.
func setNodeReady(ctx context.Context, cs kubernetes.Interface, name string, res corev1.ResourceList, kubeletPort int32) error {
	// Admission and the node lifecycle controller edit a new node too.
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		now := metav1.Now()
		n.Status.Capacity = res
		n.Status.Allocatable = res
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}, {Type: corev1.NodeHostName, Address: name}}
		n.Status.DaemonEndpoints.KubeletEndpoint.Port = kubeletPort
		n.Status.Conditions = []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			LastHeartbeatTime: now, LastTransitionTime: now,
		}}
		_, err = cs.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
		return err
	})
}

func testCSR(t *testing.T, cp *controlplane.ControlPlane) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cs := cp.Clientset()

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	const user = "csr-user"
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: user, Organization: []string{"csr-group"}},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr := &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "csr-test"},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
			SignerName: certificatesv1.KubeAPIServerClientSignerName,
			Usages:     []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth},
		},
	}
	if csr, err = cs.CertificatesV1().CertificateSigningRequests().Create(ctx, csr, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
		Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "Test", Message: "approved by test",
	})
	if _, err := cs.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	var certPEM []byte
	for len(certPEM) == 0 {
		got, err := cs.CertificatesV1().CertificateSigningRequests().Get(ctx, csr.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		certPEM = got.Status.Certificate
		if len(certPEM) > 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("CSR not signed: %+v", got.Status)
		case <-time.After(100 * time.Millisecond):
		}
	}
	block, _ := pem.Decode(certPEM)
	if block == nil {
		t.Fatalf("certificate is not PEM: %q", certPEM)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cp.CACert())
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("issued certificate does not chain to the cluster CA: %v", err)
	}

	// Using the certificate proves the apiserver accepts what the
	// controller manager signs.
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cfg := cp.RESTConfig()
	cfg.CertData = certPEM
	cfg.KeyData = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	userClient, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	review, err := userClient.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := review.Status.UserInfo.Username; got != user {
		t.Errorf("authenticated as %q, want %q", got, user)
	}
}

// TestContextCancelStops covers the other lifecycle: a temporary Dir owned
// by the control plane, process output teed to Options.Log, and shutdown
// driven by the context given to Start rather than by Stop.
func TestContextCancelStops(t *testing.T) {
	var out testutil.SyncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cp, err := controlplane.Start(ctx, controlplane.Options{Log: &out})
	if errors.Is(err, controlplane.ErrBinariesMissing) && os.Getenv("CI") != "true" {
		t.Skip(err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Stop()
	pids := cp.PIDs()
	cancel()
	select {
	case <-cp.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed after the context was cancelled")
	}
	// Done closes when shutdown begins; Stop waits for it to finish.
	cp.Stop()
	for name, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s (pid %d) still exists: kill 0 = %v", name, pid, err)
		}
	}
	if _, err := os.Stat(cp.Dir()); !os.IsNotExist(err) {
		t.Errorf("temporary dir %s not removed: %v", cp.Dir(), err)
	}
	for _, prefix := range []string{"[etcd] ", "[kube-apiserver] ", "[kube-controller-manager] ", "[kube-scheduler] "} {
		if !strings.Contains(out.String(), prefix) {
			t.Errorf("Options.Log got no lines prefixed %q", prefix)
		}
	}
}

// TestMissingBinaries needs no binaries: it checks the error developers see.
func TestMissingBinaries(t *testing.T) {
	_, err := controlplane.Start(context.Background(), controlplane.Options{
		BinDir:   t.TempDir(),
		EtcdPath: "/nonexistent/etcd",
	})
	if !errors.Is(err, controlplane.ErrBinariesMissing) {
		t.Fatalf("err = %v, want ErrBinariesMissing", err)
	}
	var me *controlplane.MissingBinariesError
	if !errors.As(err, &me) || len(me.Missing) != 4 {
		t.Fatalf("err = %#v, want 4 missing binaries", err)
	}
	for _, want := range []string{"kube-apiserver", "kube-scheduler", "kube-controller-manager", "/nonexistent/etcd", "make kube-binaries", "apt-get install -y etcd-server"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestFindRepoRoot(t *testing.T) {
	root, err := controlplane.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(root + "/go.mod"); err != nil {
		t.Fatalf("root %s has no go.mod: %v", root, err)
	}
}
