package controlplane

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// ModulePath is the module whose go.mod marks the repository root; the
// default BinDir is <root>/bin/kube, where ci/build-kube.sh puts the binaries.
const ModulePath = "github.com/ack-virtual-node/ack-virtual-node"

// Environment variables that override binary locations, so CI images and
// developers with binaries elsewhere need not change code.
const (
	EnvKubeBinDir = "KUBE_BIN_DIR"
	EnvEtcdBin    = "ETCD_BIN"
)

// DefaultEtcdPath is where Debian's etcd-server package installs etcd.
const DefaultEtcdPath = "/usr/bin/etcd"

// ServiceClusterIPRange is the service CIDR given to the apiserver. Nothing
// routes it on this machine; it only has to be valid so Services get IPs.
const ServiceClusterIPRange = "10.96.0.0/16"

// ServiceAccountIssuer is the issuer of service-account tokens, the same
// value real clusters commonly use, so token validation code sees realistic
// claims.
const ServiceAccountIssuer = "https://kubernetes.default.svc.cluster.local"

// Binary names inside BinDir.
const (
	KubeAPIServer         = "kube-apiserver"
	KubeControllerManager = "kube-controller-manager"
	KubeScheduler         = "kube-scheduler"
	Etcd                  = "etcd"
)

// Options configures Start. The zero value is usable: a temporary directory,
// binaries from the repository's bin/kube and etcd from the system.
type Options struct {
	// Dir holds all state (pki, etcd data, kubeconfigs, logs). When empty a
	// temporary directory is created and removed by Stop. A given Dir is
	// kept, but its etcd data and pki are recreated on every Start so a
	// cluster never inherits objects signed by a previous CA.
	Dir string
	// KeepDir keeps a temporary Dir after Stop, to read the logs.
	KeepDir bool
	// BinDir holds kube-apiserver, kube-controller-manager and
	// kube-scheduler. Default: $KUBE_BIN_DIR, else <repo root>/bin/kube.
	BinDir string
	// EtcdPath is the etcd binary. Default: $ETCD_BIN, else /usr/bin/etcd,
	// else etcd from PATH.
	EtcdPath string
	// ClusterSigningDuration, when set, is passed to the controller manager
	// so CSR-issued certificates are short-lived (rotation tests).
	ClusterSigningDuration time.Duration
	// ExtraAPIServerArgs are appended to the apiserver command line; later
	// flags win, so these can override defaults.
	ExtraAPIServerArgs []string
	// Log, when set, also receives every process's output, each line
	// prefixed with the component name. Output always goes to
	// Dir/logs/<component>.log as well, which error messages quote.
	Log io.Writer
	// StartTimeout bounds Start (default 2 minutes).
	StartTimeout time.Duration
	// EtcdOnDisk keeps etcd's data under Dir/etcd. By default it lives in
	// a fresh directory in /dev/shm (memory), removed by Stop: the data is
	// recreated on every Start anyway, and on a loaded machine etcd's
	// fdatasync on disk stalled for 25 s, timing requests out ("etcdserver:
	// request timed out") and failing tests. Without /dev/shm it is on
	// disk.
	EtcdOnDisk bool
}

// ErrBinariesMissing is matched (errors.Is) by the error Start returns when
// a binary cannot be found, so tests can skip instead of failing.
var ErrBinariesMissing = errors.New("control plane binaries missing")

// MissingBinary names one binary that was not found and how to get it.
type MissingBinary struct {
	Path string
	Fix  string
}

// MissingBinariesError lists every missing binary at once, so one run tells
// the developer everything to install.
type MissingBinariesError struct {
	Missing []MissingBinary
}

// Error names each missing path with the command that provides it.
func (e *MissingBinariesError) Error() string {
	parts := make([]string, 0, len(e.Missing))
	for _, m := range e.Missing {
		parts = append(parts, fmt.Sprintf("%s not found (fix: %s)", m.Path, m.Fix))
	}
	return ErrBinariesMissing.Error() + ": " + strings.Join(parts, "; ")
}

// Is makes errors.Is(err, ErrBinariesMissing) true.
func (e *MissingBinariesError) Is(target error) bool { return target == ErrBinariesMissing }

const (
	fixKube = "run `make kube-binaries` (runs ci/build-kube.sh) or set " + EnvKubeBinDir
	fixEtcd = "run `apt-get install -y etcd-server` or set " + EnvEtcdBin
)

// binaries are the resolved executable paths.
type binaries struct {
	apiserver, controllerManager, scheduler, etcd string
}

// resolveBinaries applies the defaults and checks every binary is an
// executable file, reporting all that are missing together.
func resolveBinaries(o Options) (binaries, error) {
	var missing []MissingBinary
	binDir := o.BinDir
	if binDir == "" {
		binDir = os.Getenv(EnvKubeBinDir)
	}
	if binDir == "" {
		root, err := FindRepoRoot()
		if err != nil {
			missing = append(missing, MissingBinary{
				Path: "bin/kube (repository root not found from the working directory: " + err.Error() + ")",
				Fix:  fixKube,
			})
		} else {
			binDir = filepath.Join(root, "bin", "kube")
		}
	}
	var b binaries
	if binDir != "" {
		for _, x := range []struct {
			dst  *string
			name string
		}{
			{&b.apiserver, KubeAPIServer},
			{&b.controllerManager, KubeControllerManager},
			{&b.scheduler, KubeScheduler},
		} {
			p := filepath.Join(binDir, x.name)
			if !isExecutable(p) {
				missing = append(missing, MissingBinary{Path: p, Fix: fixKube})
			}
			*x.dst = p
		}
	}
	b.etcd = o.EtcdPath
	if b.etcd == "" {
		b.etcd = os.Getenv(EnvEtcdBin)
	}
	if b.etcd == "" {
		b.etcd = DefaultEtcdPath
		if !isExecutable(b.etcd) {
			if p, err := exec.LookPath(Etcd); err == nil {
				b.etcd = p
			}
		}
	}
	if !isExecutable(b.etcd) {
		missing = append(missing, MissingBinary{Path: b.etcd, Fix: fixEtcd})
	}
	if len(missing) > 0 {
		return b, &MissingBinariesError{Missing: missing}
	}
	return b, nil
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
}

// FindRepoRoot walks up from the working directory, then from the running
// executable's directory, to the directory whose go.mod declares
// ModulePath. Tests run in their package directory, so this finds the same
// bin/kube from any package; the executable fallback serves a devcluster
// binary built into the repository but started elsewhere.
func FindRepoRoot() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, dir := range starts {
		for {
			if declaresModule(filepath.Join(dir, "go.mod")) {
				return dir, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", fmt.Errorf("no go.mod declaring module %s above the working directory or the executable", ModulePath)
}

func declaresModule(goMod string) bool {
	f, err := os.Open(goMod)
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) >= 2 && fields[0] == "module" {
			return strings.Trim(fields[1], `"`) == ModulePath
		}
	}
	return false
}
