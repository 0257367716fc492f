package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// StartForTest starts a control plane for t and stops it in t.Cleanup.
// Missing binaries skip the test, except under CI=true where they fail it:
// a developer without bin/kube still gets a green unit-test run, but CI
// cannot silently lose its integration coverage. An empty opts.Dir becomes
// t.TempDir(), so the logs outlive an early cp.Stop() in the test; when the
// test fails, the end of every component log is written to its output.
func StartForTest(t testing.TB, opts Options) *ControlPlane {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the control plane: skipped with -short")
	}
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	cp, err := Start(context.Background(), opts)
	if errors.Is(err, ErrBinariesMissing) {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err.Error())
	}
	if err != nil {
		t.Fatalf("start control plane: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, c := range []string{Etcd, KubeAPIServer, KubeControllerManager, KubeScheduler} {
				t.Logf("--- %s log tail (%s):\n%s", c, cp.LogFile(c), cp.LogTail(c, 40))
			}
		}
		cp.Stop()
	})
	return cp
}

// Shared is one control plane for all the tests of a package: a start costs
// seconds, so packages whose tests each need only an apiserver share one and
// isolate themselves with namespaces and object names of their own. The
// zero value is ready; the package's TestMain calls Stop after m.Run.
type Shared struct {
	// Options are passed to Start by the first Get.
	Options Options

	once sync.Once
	cp   *ControlPlane
	err  error
}

// Get returns the shared control plane, starting it on first use. Like
// StartForTest it skips under -short, and skips when the binaries are
// missing unless CI=true, where that fails the test.
func (s *Shared) Get(t testing.TB) *ControlPlane {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the control plane: skipped with -short")
	}
	s.once.Do(func() { s.cp, s.err = Start(context.Background(), s.Options) })
	if errors.Is(s.err, ErrBinariesMissing) {
		if os.Getenv("CI") == "true" {
			t.Fatal(s.err)
		}
		t.Skip(s.err.Error())
	}
	if s.err != nil {
		t.Fatalf("start control plane: %v", s.err)
	}
	return s.cp
}

// Run runs a package's tests and then stops the control plane, returning
// the exit code, so a package's TestMain is os.Exit(shared.Run(m)).
func (s *Shared) Run(m *testing.M) int {
	code := m.Run()
	s.Stop(code != 0)
	return code
}

// Stop stops the control plane if a test started it. With failed (m.Run
// returned non-zero) it first writes the end of every component log to
// stderr, since no single test owns them.
func (s *Shared) Stop(failed bool) {
	if s.cp == nil {
		return
	}
	if failed {
		for _, c := range []string{Etcd, KubeAPIServer, KubeControllerManager, KubeScheduler} {
			fmt.Fprintf(os.Stderr, "--- %s log tail (%s):\n%s\n", c, s.cp.LogFile(c), s.cp.LogTail(c, 40))
		}
	}
	s.cp.Stop()
}

// TestNamespace creates a namespace named after prefix for t, deleted when
// t ends.
func TestNamespace(t testing.TB, kube kubernetes.Interface, prefix string) string {
	t.Helper()
	ns, err := kube.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = kube.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
	})
	return ns.Name
}

// NoAPIServer returns client-go's real clientset for code that must not
// call the apiserver at all: any request fails t. Nothing answers, so it is
// not a stand-in for an apiserver, and tests of code paths that need none
// keep running under -short.
func NoAPIServer(t testing.TB) kubernetes.Interface {
	t.Helper()
	kube, err := kubernetes.NewForConfig(&rest.Config{
		Host: "https://apiserver.invalid",
		Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
			t.Errorf("unexpected apiserver call: %s %s", r.Method, r.URL.Path)
			return nil, fmt.Errorf("no apiserver here: %s %s", r.Method, r.URL.Path)
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	return kube
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// ClientWith returns an admin client of cp whose requests pass through
// hook, which sees each request before it goes to the real apiserver and
// may act first (count it, change the cluster in between).
func ClientWith(t testing.TB, cp *ControlPlane, hook func(*http.Request)) kubernetes.Interface {
	t.Helper()
	cfg := cp.RESTConfig()
	cfg.WrapTransport = func(next http.RoundTripper) http.RoundTripper {
		return roundTripper(func(r *http.Request) (*http.Response, error) {
			hook(r)
			return next.RoundTrip(r)
		})
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return kube
}
