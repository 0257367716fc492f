package integration

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/nodeaccess"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/vnodectl"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/vnodectl/daemonsets"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/vnodectl/doctor"
	"github.com/ack-virtual-node/ack-virtual-node/test/controlplane"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator"
	"github.com/ack-virtual-node/ack-virtual-node/test/testenv"
	"github.com/ack-virtual-node/ack-virtual-node/test/testutil"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/certificate/csr"
)

// vnodectlRun runs the binary with a clean environment plus env.
func vnodectlRun(t *testing.T, bin string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}, env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return o.String(), e.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("run vnodectl %v: %v", args, err)
	}
	return o.String(), e.String(), 0
}

// editKubeconfig writes a modified copy of the kubeconfig at src.
func editKubeconfig(t *testing.T, src, dst string, edit func(*clientcmdapi.Config)) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(src)
	if err != nil {
		t.Fatal(err)
	}
	edit(cfg)
	if err := clientcmd.WriteToFile(*cfg, dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

func currentCluster(cfg *clientcmdapi.Config) *clientcmdapi.Cluster {
	return cfg.Clusters[cfg.Contexts[cfg.CurrentContext].Cluster]
}

func currentUser(cfg *clientcmdapi.Config) *clientcmdapi.AuthInfo {
	return cfg.AuthInfos[cfg.Contexts[cfg.CurrentContext].AuthInfo]
}

func managedTokenSecrets(t *testing.T, kube kubernetes.Interface, mode nodeaccess.Mode) []corev1.Secret {
	t.Helper()
	l, err := kube.CoreV1().Secrets(nodeaccess.Namespace).List(context.Background(), metav1.ListOptions{
		LabelSelector: nodeaccess.LabelManagedBy + "=" + nodeaccess.ManagedByValue + "," + nodeaccess.LabelTokenMode + "=" + string(mode),
	})
	if err != nil {
		t.Fatal(err)
	}
	return l.Items
}

var bootstrapTokenRE = regexp.MustCompile(`^[a-z0-9]{6}\.[a-z0-9]{16}$`)

// TestVnodectlBootstrap runs the vnodectl binary against a real control
// plane: `kubeconfig --mode bootstrap` inlines a CA given as a file path,
// writes a bootstrap-token kubeconfig with which a client's CSR for a
// virtual node is approved by vnode-approver and signed by
// kube-controller-manager; the issued identity has every permission the
// node needs (doctor passes with it); a second run reuses the one token,
// --rotate replaces it; no CA at all stops with the vendor's advice.
func TestVnodectlBootstrap(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("integration test: skipped with -short")
	}
	bin := testutil.BuildCommand(t, "vnodectl")
	// A control plane of its own: vnodectl creates cluster-wide RBAC and
	// bootstrap tokens under fixed names and counts every managed token.
	cp := controlplane.StartForTest(t, controlplane.Options{})
	kube := cp.Clientset()
	ctx := context.Background()
	dir := t.TempDir()

	// The admin kubeconfig refers to the CA by path, as kubeadm's
	// admin.conf copies often do.
	adminCAPath := editKubeconfig(t, cp.Kubeconfig(), filepath.Join(dir, "admin-ca-path"), func(c *clientcmdapi.Config) {
		cl := currentCluster(c)
		cl.CertificateAuthorityData, cl.CertificateAuthority = nil, cp.CAFile()
	})
	kubeconfigOut := func(path string) *clientcmdapi.Config {
		t.Helper()
		c, err := clientcmd.LoadFromFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	first := filepath.Join(dir, "vnode-config")
	stdout, stderr, code := vnodectlRun(t, bin, []string{"KUBECONFIG=" + adminCAPath}, "kubeconfig", "--mode", "bootstrap", "-o", first, "--node-name", "vn-boot")
	if code != 0 {
		t.Fatalf("kubeconfig --mode bootstrap: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	kc := kubeconfigOut(first)
	if cl := currentCluster(kc); !bytes.Equal(cl.CertificateAuthorityData, cp.CACertPEM()) || cl.CertificateAuthority != "" || cl.Server != cp.APIServerURL() {
		t.Fatalf("cluster entry: server %q, CA path %q, CA data inlined = %v", cl.Server, cl.CertificateAuthority, bytes.Equal(cl.CertificateAuthorityData, cp.CACertPEM()))
	}
	token := currentUser(kc).Token
	if !bootstrapTokenRE.MatchString(token) || kc.Contexts[kc.CurrentContext].Namespace != "kube-system" || kc.Contexts[kc.CurrentContext].AuthInfo != "vnode" {
		t.Fatalf("vnode-config user/context: token %q, context %+v", token, kc.Contexts[kc.CurrentContext])
	}
	for _, want := range []string{"created ClusterRoleBinding ack-virtual-node:vnode:node (system:node to Group system:vnodes)", "created token: Secret kube-system/bootstrap-token-", "system:vnode:vn-boot"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if st, err := os.Stat(first); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("vnode-config mode: %v %v, want 0600", st.Mode(), err)
	}

	t.Run("second run reuses the one token", func(t *testing.T) {
		second := filepath.Join(dir, "vnode-config-2")
		stdout, stderr, code := vnodectlRun(t, bin, []string{"KUBECONFIG=" + adminCAPath}, "kubeconfig", "--mode", "bootstrap", "-o", second)
		if code != 0 {
			t.Fatalf("exit %d: %s %s", code, stdout, stderr)
		}
		if got := currentUser(kubeconfigOut(second)).Token; got != token {
			t.Errorf("second run token %q, want the first's %q", got, token)
		}
		if strings.Contains(stdout, "created ClusterRole") || !strings.Contains(stdout, "reused token") {
			t.Errorf("second run should change no RBAC and reuse the token:\n%s", stdout)
		}
		if s := managedTokenSecrets(t, kube, nodeaccess.ModeBootstrap); len(s) != 1 {
			t.Errorf("%d bootstrap token Secrets, want 1", len(s))
		}
	})

	t.Run("doctor passes on the bootstrap kubeconfig", func(t *testing.T) {
		stdout, stderr, code := vnodectlRun(t, bin, nil, "doctor", "--kubeconfig", first, "--admin-kubeconfig", cp.Kubeconfig())
		if code != 0 {
			t.Fatalf("doctor exit %d\n%s%s", code, stdout, stderr)
		}
		for _, want := range []string{"PASS  permissions  all 4 of TLS bootstrapping's permissions are granted", "authenticated as system:bootstrap:" + token[:6], "SKIP  eci"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("doctor output lacks %q:\n%s", want, stdout)
			}
		}
	})

	t.Run("CSR from the bootstrap kubeconfig is approved and signed", func(t *testing.T) {
		startApprover(t, cp) // as its own least-privilege identity

		bootCfg, err := clientcmd.BuildConfigFromFlags("", first)
		if err != nil {
			t.Fatal(err)
		}
		boot := kubernetes.NewForConfigOrDie(bootCfg)
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		const cn = nodeaccess.NodeCNPrefix + "vn-boot"
		der, err := certutil.MakeCSR(key, &pkix.Name{CommonName: cn, Organization: []string{nodeaccess.NodeGroup}}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		name, uid, err := csr.RequestCertificate(boot, der, "", certificatesv1.KubeAPIServerClientSignerName, nil,
			[]certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}, key)
		if err != nil {
			t.Fatalf("create CSR with the bootstrap token: %v", err)
		}
		wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
		defer wcancel()
		certPEM, err := csr.WaitForCertificate(wctx, boot, name, uid)
		if err != nil {
			t.Fatalf("CSR %s not approved and signed: %v", name, err)
		}
		block, _ := pem.Decode(certPEM)
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		roots.AddCert(cp.CACert())
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Fatalf("issued certificate does not chain to the cluster CA: %v", err)
		}
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
		// The node's own kubeconfig: the issued certificate instead of the token.
		nodeKC := editKubeconfig(t, first, filepath.Join(dir, "node-cert-config"), func(c *clientcmdapi.Config) {
			u := currentUser(c)
			u.Token, u.ClientCertificateData, u.ClientKeyData = "", certPEM, keyPEM
		})
		nodeCfg, err := clientcmd.BuildConfigFromFlags("", nodeKC)
		if err != nil {
			t.Fatal(err)
		}
		review, err := kubernetes.NewForConfigOrDie(nodeCfg).AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if u := review.Status.UserInfo; u.Username != cn || !slices.Contains(u.Groups, nodeaccess.NodeGroup) {
			t.Fatalf("issued certificate authenticates as %s %v", u.Username, u.Groups)
		}
		// Every permission the running node needs is granted to it.
		stdout, stderr, code := vnodectlRun(t, bin, nil, "doctor", "--kubeconfig", nodeKC, "--admin-kubeconfig", cp.Kubeconfig())
		if code != 0 || !strings.Contains(stdout, fmt.Sprintf("PASS  permissions  all %d of the virtual node's permissions are granted", len(nodeaccess.NodePermissions(false)))) {
			t.Fatalf("doctor with the issued certificate: exit %d\n%s%s", code, stdout, stderr)
		}
	})

	t.Run("rotate replaces the token and never piles up", func(t *testing.T) {
		rotated := filepath.Join(dir, "vnode-config-rotated")
		stdout, stderr, code := vnodectlRun(t, bin, []string{"KUBECONFIG=" + adminCAPath}, "kubeconfig", "--mode", "bootstrap", "--rotate", "--token-ttl", "24h", "-o", rotated)
		if code != 0 {
			t.Fatalf("exit %d: %s %s", code, stdout, stderr)
		}
		newToken := currentUser(kubeconfigOut(rotated)).Token
		if newToken == token || !bootstrapTokenRE.MatchString(newToken) {
			t.Fatalf("rotated token %q (old %q)", newToken, token)
		}
		secrets := managedTokenSecrets(t, kube, nodeaccess.ModeBootstrap)
		if len(secrets) != 1 || secrets[0].Name != "bootstrap-token-"+newToken[:6] || string(secrets[0].Data["expiration"]) == "" {
			t.Fatalf("after --rotate: %d Secrets %v", len(secrets), secrets)
		}
		for k, want := range map[string]string{"usage-bootstrap-authentication": "true", "usage-bootstrap-signing": "true", "auth-extra-groups": nodeaccess.BootstrapGroup} {
			if got := string(secrets[0].Data[k]); got != want {
				t.Errorf("token Secret %s = %q, want %q", k, got, want)
			}
		}
		if !strings.Contains(stdout, "token expiry: 20") {
			t.Errorf("expiry not printed:\n%s", stdout)
		}
		// The old token stops authenticating once the apiserver's informer
		// sees its Secret deleted.
		oldCfg, err := clientcmd.BuildConfigFromFlags("", first)
		if err != nil {
			t.Fatal(err)
		}
		old := kubernetes.NewForConfigOrDie(oldCfg)
		poll(t, "old bootstrap token rejected", 30*time.Second, func(ctx context.Context) (bool, error) {
			_, err := old.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
			return apierrors.IsUnauthorized(err), nil
		})
	})

	t.Run("no CA at all stops with the advice", func(t *testing.T) {
		noCA := editKubeconfig(t, cp.Kubeconfig(), filepath.Join(dir, "admin-no-ca"), func(c *clientcmdapi.Config) {
			cl := currentCluster(c)
			cl.CertificateAuthorityData, cl.CertificateAuthority, cl.InsecureSkipTLSVerify = nil, "", true
		})
		out := filepath.Join(dir, "never-written")
		stdout, stderr, code := vnodectlRun(t, bin, nil, "kubeconfig", "--kubeconfig", noCA, "--mode", "bootstrap", "-o", out)
		if code != 1 || !strings.Contains(stderr, "certificate-authority-data is empty") || !strings.Contains(stderr, "PATH field") {
			t.Fatalf("exit %d, want 1 with the advice\nstdout: %s\nstderr: %s", code, stdout, stderr)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("%s was written: %v", out, err)
		}
	})

	t.Run("--extra-privilege grants endpoints, a later run keeps it", func(t *testing.T) {
		for _, args := range [][]string{{"--extra-privilege"}, nil} {
			out := filepath.Join(dir, "vnode-config-extra")
			stdout, stderr, code := vnodectlRun(t, bin, []string{"KUBECONFIG=" + adminCAPath}, append([]string{"kubeconfig", "--mode", "bootstrap", "-o", out}, args...)...)
			if code != 0 {
				t.Fatalf("%v: exit %d: %s %s", args, code, stdout, stderr)
			}
			role, err := kube.RbacV1().ClusterRoles().Get(ctx, nodeaccess.ExtraRoleName, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var endpoints []string
			for _, r := range role.Rules {
				if slices.Contains(r.Resources, "endpoints") {
					endpoints = r.Verbs
				}
			}
			if !slices.Equal(endpoints, []string{"create", "update"}) {
				t.Errorf("after kubeconfig %v: endpoints verbs %v, want [create update]", args, endpoints)
			}
		}
		if s := managedTokenSecrets(t, kube, nodeaccess.ModeBootstrap); len(s) != 1 {
			t.Errorf("%d bootstrap token Secrets, want 1", len(s))
		}
	})

	t.Run("--help on each command", func(t *testing.T) {
		for _, c := range []struct{ cmd, want string }{
			{"", "[command]"},
			{"kubeconfig", "kubeconfig --mode bootstrap|serviceaccount [-o vnode-config]"},
			{"doctor", "doctor [--kubeconfig vnode-config] [-o json]"},
			{"exclude-daemonsets", "exclude-daemonsets [--all] [--dry-run]"},
		} {
			args := []string{"--help"}
			if c.cmd != "" {
				args = []string{c.cmd, "--help"}
			}
			stdout, _, code := vnodectlRun(t, bin, nil, args...)
			if code != 0 || !strings.Contains(stdout, "Usage:\n  vnodectl "+c.want) {
				t.Errorf("vnodectl %v: exit %d\n%s", args, code, stdout)
			}
		}
	})

	t.Run("bad usage exits 2", func(t *testing.T) {
		for _, args := range [][]string{{"kubeconfig"}, {"kubeconfig", "--mode", "admin"}, {"doctor", "-o", "yaml"}, {"exclude-daemonsets", "--bogus"}} {
			if _, stderr, code := vnodectlRun(t, bin, nil, args...); code != 2 || stderr == "" {
				t.Errorf("vnodectl %v: exit %d, stderr %q; want 2 with a message", args, code, stderr)
			}
		}
	})
}

// doctorReport runs doctor with -o json and decodes the report.
func doctorReport(t *testing.T, bin string, env []string, args ...string) (*doctor.Report, int, string) {
	t.Helper()
	stdout, stderr, code := vnodectlRun(t, bin, env, append([]string{"doctor", "-o", "json"}, args...)...)
	var rep doctor.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("doctor -o json: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
	}
	return &rep, code, stdout + stderr
}

func checkOf(rep *doctor.Report, name string) doctor.Result {
	for _, c := range rep.Checks {
		if c.Name == name {
			return c
		}
	}
	return doctor.Result{}
}

// TestVnodectlServiceAccountAndDoctor: serviceaccount mode warns that the
// token cannot rotate and when it expires, never piles up tokens, and its
// kubeconfig runs a real virtual node to Ready; doctor passes on that setup
// (ECI credentials checked against the simulator) and names the failure,
// with its fix and exit code 1, on each broken one.
func TestVnodectlServiceAccountAndDoctor(t *testing.T) {
	t.Parallel()
	// A control plane of its own: vnodectl creates cluster-wide RBAC under
	// fixed names, and doctor checks the whole cluster.
	// vnodectl kubeconfig installs the kube-proxy identity itself.
	env := testenv.Start(t, testenv.Options{NoKubeProxyIdentity: true})
	bin := testutil.BuildCommand(t, "vnodectl")
	kube := env.Kube
	ctx := context.Background()
	dir := t.TempDir()
	admin := []string{"KUBECONFIG=" + env.ControlPlane.Kubeconfig()}
	akID := testenv.SimAccessKeyID(env.SimulatorConfig)
	eciEnv := []string{
		"ECI_REGION=" + env.SimulatorConfig.RegionId, "ECI_ENDPOINT=" + env.SimulatorURL,
		"ALIBABA_CLOUD_ACCESS_KEY_ID=" + akID, "ALIBABA_CLOUD_ACCESS_KEY_SECRET=" + env.SimulatorConfig.AccessKeys[akID],
	}
	saConfig := filepath.Join(dir, "vnode-config")

	// A TokenRequest token first: it warns with its expiry.
	stdout, stderr, code := vnodectlRun(t, bin, admin, "kubeconfig", "--mode", "serviceaccount", "--token-ttl", "2h", "-o", saConfig)
	if code != 0 || !strings.Contains(stderr, "WARNING: ServiceAccount mode does not support certificate rotation") || !strings.Contains(stderr, "expires at 20") {
		t.Fatalf("serviceaccount --token-ttl 2h: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	// A kube-proxy binding to the wrong role (left by hand, or by an old
	// version) is replaced: roleRef cannot be changed in place.
	if err := kube.RbacV1().ClusterRoleBindings().Delete(ctx, nodeaccess.KubeProxyBindingName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	if _, err := kube.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: nodeaccess.KubeProxyBindingName},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
		Subjects:   []rbacv1.Subject{nodeaccess.KubeProxySubject("kube-system")},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Then the long-lived token Secret, twice: one Secret, same token.
	var tokens []string
	for i := range 2 {
		stdout, stderr, code := vnodectlRun(t, bin, admin, "kubeconfig", "--mode", "common", "-o", saConfig)
		if code != 0 || !strings.Contains(stderr, "cannot rotate") || !strings.Contains(stderr, "never expires") {
			t.Fatalf("serviceaccount run %d: exit %d\nstdout: %s\nstderr: %s", i, code, stdout, stderr)
		}
		c, err := clientcmd.LoadFromFile(saConfig)
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, currentUser(c).Token)
	}
	if tokens[0] == "" || tokens[0] != tokens[1] {
		t.Errorf("second serviceaccount run did not reuse the token")
	}
	if s := managedTokenSecrets(t, kube, nodeaccess.ModeServiceAccount); len(s) != 1 {
		t.Errorf("%d ServiceAccount token Secrets, want 1", len(s))
	}
	// The kube-proxy of ECI pods has its own identity: system:node-proxier only.
	if _, err := kube.CoreV1().ServiceAccounts("kube-system").Get(ctx, nodeaccess.KubeProxyServiceAccountName, metav1.GetOptions{}); err != nil {
		t.Errorf("vnodectl kubeconfig did not create the kube-proxy ServiceAccount: %v", err)
	}
	if crb, err := kube.RbacV1().ClusterRoleBindings().Get(ctx, nodeaccess.KubeProxyBindingName, metav1.GetOptions{}); err != nil ||
		crb.RoleRef.Name != nodeaccess.RoleNodeProxier || len(crb.Subjects) != 1 || crb.Subjects[0] != nodeaccess.KubeProxySubject("kube-system") {
		t.Errorf("kube-proxy binding %+v (%v), want %s to kube-system/%s only", crb, err, nodeaccess.RoleNodeProxier, nodeaccess.KubeProxyServiceAccountName)
	}

	// The kubeconfig is enough for a real virtual node (RBAC only, no
	// admin): it registers, derives CLUSTER_ID from kube-system and goes Ready.
	cfg := env.NodeConfig(t, "vn-sa")
	cfg.Kubeconfig, cfg.ClusterID = saConfig, ""
	env.StartNode(t, cfg)

	// kube-proxy without exclusion: doctor names it, exclude-daemonsets fixes it.
	createDaemonSet(t, kube, "kube-system", "kube-proxy", nil, []corev1.Toleration{{Operator: corev1.TolerationOpExists}})
	rep, code, out := doctorReport(t, bin, eciEnv, "--kubeconfig", saConfig, "--admin-kubeconfig", env.ControlPlane.Kubeconfig())
	if code != 1 || checkOf(rep, doctor.CheckKubeProxy).Status != doctor.Fail || !strings.Contains(checkOf(rep, doctor.CheckKubeProxy).Fix, "vnodectl exclude-daemonsets") {
		t.Fatalf("doctor before exclusion: exit %d\n%s", code, out)
	}
	if _, stderr, code := vnodectlRun(t, bin, admin, "exclude-daemonsets"); code != 0 {
		t.Fatalf("exclude-daemonsets: %d %s", code, stderr)
	}

	t.Run("doctor passes on the good setup", func(t *testing.T) {
		rep, code, out := doctorReport(t, bin, eciEnv, "--kubeconfig", saConfig, "--admin-kubeconfig", env.ControlPlane.Kubeconfig())
		if code != 0 || !rep.OK {
			t.Fatalf("doctor: exit %d\n%s", code, out)
		}
		for _, name := range []string{doctor.CheckKubeconfig, doctor.CheckServer, doctor.CheckCA, doctor.CheckVersion, doctor.CheckIdentity, doctor.CheckPermissions, doctor.CheckKubeProxy, doctor.CheckECI, doctor.CheckECIPermissions} {
			if c := checkOf(rep, name); c.Status != doctor.Pass {
				t.Errorf("check %s = %+v, want pass", name, c)
			}
		}
		if m := checkOf(rep, doctor.CheckIdentity).Message; !strings.Contains(m, "system:serviceaccount:kube-system:vnode") {
			t.Errorf("identity: %s", m)
		}
		if m := checkOf(rep, doctor.CheckVersion).Message; !strings.Contains(m, env.ControlPlane.Version()) {
			t.Errorf("version: %s", m)
		}
	})

	t.Run("doctor lists the ECI actions the RAM policy refuses", func(t *testing.T) {
		key := testenv.SimAccessKeyID(env.SimulatorConfig)
		defer func() {
			if err := env.Simulator.SetPolicy(key, simulator.PolicyFullAccess); err != nil {
				t.Fatal(err)
			}
		}()
		if err := env.Simulator.SetPolicy(key, simulator.PolicyDocumented); err != nil {
			t.Fatal(err)
		}
		rep, code, out := doctorReport(t, bin, eciEnv, "--kubeconfig", saConfig, "--admin-kubeconfig", env.ControlPlane.Kubeconfig())
		if c := checkOf(rep, doctor.CheckECIPermissions); code != 0 || c.Status != doctor.Pass || !strings.Contains(c.Message, "eci:DescribeContainerGroupStatus") {
			t.Errorf("documented policy: exit %d, %+v\n%s", code, c, out)
		}
		narrow := simulator.Policy{Name: "narrow", Actions: []string{"CreateContainerGroup", "DeleteContainerGroup", "DescribeContainerGroups", "UpdateContainerGroup", "DescribeContainerLog"}}
		if err := env.Simulator.SetPolicy(key, narrow); err != nil {
			t.Fatal(err)
		}
		rep, code, out = doctorReport(t, bin, eciEnv, "--kubeconfig", saConfig, "--admin-kubeconfig", env.ControlPlane.Kubeconfig())
		c := checkOf(rep, doctor.CheckECIPermissions)
		if code != 1 || c.Status != doctor.Fail || !strings.Contains(c.Fix, `"eci:ExecContainerCommand"`) {
			t.Fatalf("narrow policy: exit %d, %+v\n%s", code, c, out)
		}
		for _, a := range []string{"ExecContainerCommand", "DescribeMultiContainerGroupMetric", "DescribeContainerGroupStatus"} {
			if !strings.Contains(c.Message, "eci:"+a) {
				t.Errorf("refused %s not listed: %s", a, c.Message)
			}
		}
		for _, a := range narrow.Actions {
			if strings.Contains(c.Message, "eci:"+a) {
				t.Errorf("allowed %s listed as refused: %s", a, c.Message)
			}
		}
		if failed := rep.Failed(); len(failed) != 1 {
			t.Errorf("failed checks %v, want only %s", failed, doctor.CheckECIPermissions)
		}
	})

	// A server that accepts connections and never answers, like a
	// firewall black-holing the VPC's packets after the handshake.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	otherCA, err := controlplane.NewCA("some-other-cluster")
	if err != nil {
		t.Fatal(err)
	}
	broken := []struct {
		name      string
		edit      func(*clientcmdapi.Config)
		env       []string
		args      []string
		check     string
		message   string
		fix       string
		beforeRun func(t *testing.T)
	}{
		{name: "wrong server address", check: doctor.CheckServer, message: "connection refused", fix: "Nothing listens at that address",
			edit: func(c *clientcmdapi.Config) {
				currentCluster(c).Server = "https://127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
			}},
		{name: "server times out", check: doctor.CheckCA, message: "Client.Timeout", fix: "The VPC cannot reach the Kubernetes API server", args: []string{"--timeout", "1s"},
			edit: func(c *clientcmdapi.Config) { currentCluster(c).Server = "https://" + silent.Addr().String() }},
		{name: "missing CA", check: doctor.CheckKubeconfig, message: "no certificate-authority-data", fix: "certificate-authority PATH field",
			edit: func(c *clientcmdapi.Config) {
				cl := currentCluster(c)
				cl.CertificateAuthorityData, cl.CertificateAuthority = nil, "/etc/kubernetes/pki/ca.crt"
			}},
		{name: "wrong CA", check: doctor.CheckCA, message: "not signed by certificate-authority-data", fix: "wrong CA",
			edit: func(c *clientcmdapi.Config) { currentCluster(c).CertificateAuthorityData = otherCA.CertPEM }},
		{name: "deleted token", check: doctor.CheckVersion, message: "401 Unauthorized", fix: "vnodectl kubeconfig",
			edit: func(c *clientcmdapi.Config) { currentUser(c).Token = tokens[0][:len(tokens[0])-4] + "AAAA" }},
		{name: "wrong ECI AccessKey secret", check: doctor.CheckECI, message: "SignatureDoesNotMatch", fix: "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
			env: []string{"ALIBABA_CLOUD_ACCESS_KEY_SECRET=not-the-secret"}},
		{name: "removed permission", check: doctor.CheckPermissions, message: "update pods, patch pods", fix: "vnodectl kubeconfig",
			beforeRun: func(t *testing.T) {
				if err := kube.RbacV1().ClusterRoleBindings().Delete(ctx, "ack-virtual-node:vnode:extra", metav1.DeleteOptions{}); err != nil {
					t.Fatal(err)
				}
			}},
	}
	for _, b := range broken {
		t.Run("doctor names the failure: "+b.name, func(t *testing.T) {
			kc := saConfig
			if b.edit != nil {
				kc = editKubeconfig(t, saConfig, filepath.Join(t.TempDir(), "broken"), b.edit)
			}
			if b.beforeRun != nil {
				b.beforeRun(t)
			}
			rep, code, out := doctorReport(t, bin, append(slices.Clone(eciEnv), b.env...),
				append([]string{"--kubeconfig", kc, "--admin-kubeconfig", env.ControlPlane.Kubeconfig()}, b.args...)...)
			c := checkOf(rep, b.check)
			if code != 1 || rep.OK || c.Status != doctor.Fail || !strings.Contains(c.Message, b.message) || !strings.Contains(c.Fix, b.fix) {
				t.Fatalf("want exit 1 and check %s failing with %q / fix %q; exit %d:\n%s", b.check, b.message, b.fix, code, out)
			}
			if failed := rep.Failed(); len(failed) != 1 {
				t.Errorf("failed checks %v, want only %s", failed, b.check)
			}
		})
	}

	t.Run("running kubeconfig again restores the removed permission", func(t *testing.T) {
		stdout, stderr, code := vnodectlRun(t, bin, admin, "kubeconfig", "--mode", "serviceaccount", "-o", saConfig)
		if code != 0 || !strings.Contains(stdout, "created ClusterRoleBinding ack-virtual-node:vnode:extra") {
			t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
		}
		if rep, code, out := doctorReport(t, bin, eciEnv, "--kubeconfig", saConfig, "--admin-kubeconfig", env.ControlPlane.Kubeconfig()); code != 0 || !rep.OK {
			t.Fatalf("doctor after restore: exit %d\n%s", code, out)
		}
	})

	t.Run("doctor names an unresolvable host (in-process, local DNS)", func(t *testing.T) {
		kc := editKubeconfig(t, saConfig, filepath.Join(t.TempDir(), "unresolvable"), func(c *clientcmdapi.Config) {
			currentCluster(c).Server = "https://apiserver.vnode.invalid:6443"
		})
		var out, errOut bytes.Buffer
		code := vnodectl.Execute(ctx, vnodectl.Options{Stdout: &out, Stderr: &errOut, Resolver: nxdomainResolver(t), Getenv: func(string) string { return "" }},
			[]string{"doctor", "--kubeconfig", kc, "--admin-kubeconfig", env.ControlPlane.Kubeconfig()})
		text := out.String()
		if code != 1 || !regexp.MustCompile(`FAIL  server +failed to get kubernetes server version: dial tcp apiserver\.vnode\.invalid:6443: lookup apiserver\.vnode\.invalid.*no such host`).MatchString(text) ||
			!strings.Contains(text, "fix: The Kubernetes API server domain name cannot be resolved within the Alibaba Cloud VPC. Use Alibaba Cloud DNS PrivateZone") {
			t.Fatalf("exit %d\n%s%s", code, text, errOut.String())
		}
		if !strings.Contains(errOut.String(), "check(s) failed: server") {
			t.Errorf("stderr: %s", errOut.String())
		}
	})
}

// nxdomainResolver is a Go resolver whose DNS server, on 127.0.0.1,
// answers every query with NXDOMAIN, so "no such host" is tested without
// asking any real DNS server.
func nxdomainResolver(t *testing.T) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := buf[:n]
			if n < 12 {
				continue
			}
			// Header + the question (name labels, then type and class);
			// EDNS records in the additional section are dropped.
			end := 12
			for end < n && q[end] != 0 {
				end += int(q[end]) + 1
			}
			end += 5
			if end > n {
				continue
			}
			resp := append([]byte(nil), q[:end]...)
			resp[2] = 0x80 | (q[2] & 0x79) // QR, opcode, RD
			resp[3] = 0x80 | 3             // RA, NXDOMAIN
			resp[4], resp[5] = 0, 1        // one question
			for i := 6; i < 12; i++ {
				resp[i] = 0
			}
			_, _ = pc.WriteTo(resp, addr)
		}
	}()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", pc.LocalAddr().String())
	}}
}

func createDaemonSet(t *testing.T, kube kubernetes.Interface, ns, name string, aff *corev1.Affinity, tol []corev1.Toleration) *appsv1.DaemonSet {
	t.Helper()
	labels := map[string]string{"app": name}
	ds, err := kube.AppsV1().DaemonSets(ns).Create(context.Background(), &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers:  []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.9"}},
					Affinity:    aff,
					Tolerations: tol,
				},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create DaemonSet %s/%s: %v", ns, name, err)
	}
	return ds
}

// TestVnodectlExcludeDaemonSets runs exclude-daemonsets (binary) on a
// kube-proxy DaemonSet with affinity of its own: --dry-run changes
// nothing, a run adds the exclusion to every term and keeps the rest, a
// second run changes nothing; --all also covers DaemonSets tolerating the
// virtual node's taint and leaves the others alone.
func TestVnodectlExcludeDaemonSets(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("integration test: skipped with -short")
	}
	bin := testutil.BuildCommand(t, "vnodectl")
	// A control plane of its own: exclude-daemonsets patches every
	// DaemonSet of the cluster.
	cp := controlplane.StartForTest(t, controlplane.Options{})
	kube := cp.Clientset()
	ctx := context.Background()
	admin := []string{"KUBECONFIG=" + cp.Kubeconfig()}

	zone := corev1.NodeSelectorRequirement{Key: "topology.kubernetes.io/zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"zone-a"}}
	notN1 := corev1.NodeSelectorRequirement{Key: "metadata.name", Operator: corev1.NodeSelectorOpNotIn, Values: []string{"n1"}}
	preferred := []corev1.PreferredSchedulingTerm{{Weight: 5, Preference: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "ssd", Operator: corev1.NodeSelectorOpExists}}}}}
	createDaemonSet(t, kube, "kube-system", "kube-proxy", &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{
			{MatchExpressions: []corev1.NodeSelectorRequirement{zone}},
			{MatchFields: []corev1.NodeSelectorRequirement{notN1}},
		}},
		PreferredDuringSchedulingIgnoredDuringExecution: preferred,
	}}, []corev1.Toleration{{Operator: corev1.TolerationOpExists}})
	createDaemonSet(t, kube, "default", "log-agent", nil, []corev1.Toleration{{Key: daemonsets.TaintKey, Operator: corev1.TolerationOpExists}})
	createDaemonSet(t, kube, "default", "plain", nil, nil)
	get := func(ns, name string) *appsv1.DaemonSet {
		t.Helper()
		ds, err := kube.AppsV1().DaemonSets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return ds
	}
	// Generation moves with spec changes only; the DaemonSet controller
	// keeps updating status (and so resourceVersion) on its own.
	rv := func(ns, name string) int64 { return get(ns, name).Generation }
	kpBefore := rv("kube-system", "kube-proxy")

	t.Run("dry run prints the diff and changes nothing", func(t *testing.T) {
		stdout, stderr, code := vnodectlRun(t, bin, admin, "exclude-daemonsets", "--dry-run", "--all")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		for _, want := range []string{"DaemonSet kube-system/kube-proxy would change (dry run, nothing persisted)", "+        - key: type", "+          operator: NotIn", "+          - virtual-kubelet", "DaemonSet default/log-agent would change"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("dry-run output lacks %q:\n%s", want, stdout)
			}
		}
		if got := rv("kube-system", "kube-proxy"); got != kpBefore {
			t.Errorf("--dry-run changed kube-proxy (generation %d -> %d)", kpBefore, got)
		}
		if daemonsets.Excludes(&get("default", "log-agent").Spec.Template.Spec) {
			t.Error("--dry-run changed log-agent")
		}
	})

	t.Run("run merges with the existing affinity", func(t *testing.T) {
		stdout, stderr, code := vnodectlRun(t, bin, admin, "exclude-daemonsets")
		if code != 0 || !strings.Contains(stdout, "DaemonSet kube-system/kube-proxy updated:") || strings.Contains(stdout, "log-agent") {
			t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
		}
		na := get("kube-system", "kube-proxy").Spec.Template.Spec.Affinity.NodeAffinity
		terms := na.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
		want := daemonsets.Requirement()
		if len(terms) != 2 ||
			!slices.EqualFunc(terms[0].MatchExpressions, []corev1.NodeSelectorRequirement{zone, want}, reqEqual) ||
			!slices.EqualFunc(terms[1].MatchExpressions, []corev1.NodeSelectorRequirement{want}, reqEqual) ||
			!slices.EqualFunc(terms[1].MatchFields, []corev1.NodeSelectorRequirement{notN1}, reqEqual) {
			t.Fatalf("terms after exclusion: %+v", terms)
		}
		if len(na.PreferredDuringSchedulingIgnoredDuringExecution) != 1 || na.PreferredDuringSchedulingIgnoredDuringExecution[0].Weight != 5 {
			t.Errorf("preferred terms lost: %+v", na.PreferredDuringSchedulingIgnoredDuringExecution)
		}
		if daemonsets.Excludes(&get("default", "log-agent").Spec.Template.Spec) {
			t.Error("without --all log-agent must not change")
		}
	})

	t.Run("second run changes nothing", func(t *testing.T) {
		before := rv("kube-system", "kube-proxy")
		stdout, stderr, code := vnodectlRun(t, bin, admin, "exclude-daemonsets")
		if code != 0 || !strings.Contains(stdout, "DaemonSet kube-system/kube-proxy already excludes virtual nodes") {
			t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
		}
		if got := rv("kube-system", "kube-proxy"); got != before {
			t.Errorf("second run updated kube-proxy (generation %d -> %d)", before, got)
		}
	})

	t.Run("--all covers DaemonSets tolerating the taint only", func(t *testing.T) {
		plainBefore := rv("default", "plain")
		stdout, stderr, code := vnodectlRun(t, bin, admin, "exclude-daemonsets", "--all")
		if code != 0 || !strings.Contains(stdout, "DaemonSet default/log-agent updated:") || strings.Contains(stdout, "plain") {
			t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
		}
		if !daemonsets.Excludes(&get("default", "log-agent").Spec.Template.Spec) {
			t.Error("log-agent does not exclude virtual nodes after --all")
		}
		if got := rv("default", "plain"); got != plainBefore {
			t.Error("--all changed a DaemonSet that does not tolerate the taint")
		}
	})
}

func reqEqual(a, b corev1.NodeSelectorRequirement) bool {
	return a.Key == b.Key && a.Operator == b.Operator && slices.Equal(a.Values, b.Values)
}
