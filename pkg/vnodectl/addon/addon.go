// Package addon installs, upgrades, uninstalls and reports the
// ack-virtual-node add-on the way the console's Add-ons page does, through
// the Helm Go SDK with the chart embedded in the binary (package charts):
// no helm binary and no chart repository are needed.
//
// Install checks its prerequisites first and lists everything missing at
// once; Upgrade reuses the values of the installed release and keeps what
// users changed with `kubectl edit deployment ack-virtual-node-controller`
// unless the caller sets the same value; Uninstall runs the chart's
// pre-delete drain hook and reports what it kept.
package addon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/charts"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/release"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
)

const (
	// DefaultReleaseName is the release name the console uses.
	DefaultReleaseName = "ack-virtual-node"
	// DefaultNamespace is where the add-on runs (and where
	// alibaba-addon-secret is expected).
	DefaultNamespace = "kube-system"
	// ControllerDeployment is the Deployment users edit to reconfigure the
	// controller.
	ControllerDeployment = "ack-virtual-node-controller"
	// ControllerContainer is the controller's container in that Deployment.
	ControllerContainer = "virtual-node"
	// ControllerServiceAccount runs the controller and the drain hook.
	ControllerServiceAccount = "ack-virtual-node-controller"
)

// Chart loads the embedded ack-virtual-node chart. Every call returns a
// new copy: Helm's actions modify the chart they are given (an upgrade
// with ReuseValues replaces its Values with the old release's), so a
// shared copy would carry one release's values into the next operation.
func Chart() (*chart.Chart, error) {
	return loadEmbedded(charts.FS, charts.AckVirtualNode)
}

func loadEmbedded(fsys fs.FS, dir string) (*chart.Chart, error) {
	var files []*loader.BufferedFile
	err := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		files = append(files, &loader.BufferedFile{Name: strings.TrimPrefix(p, dir+"/"), Data: data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read embedded chart %s: %w", dir, err)
	}
	c, err := loader.LoadFiles(files)
	if err != nil {
		return nil, fmt.Errorf("load embedded chart %s: %w", dir, err)
	}
	return c, nil
}

// Options say where and how the add-on is managed.
type Options struct {
	// RESTConfig is the identity the SDK acts as (needs to create the
	// chart's RBAC, so typically a cluster admin).
	RESTConfig *rest.Config
	// Namespace is the release namespace; empty means kube-system.
	Namespace string
	// ReleaseName is the Helm release; empty means ack-virtual-node.
	ReleaseName string
	// Timeout bounds waits and hooks (the drain hook above all); 0 means
	// 10 minutes.
	Timeout time.Duration
	// Wait makes Install/Upgrade wait (WaitReady) until the Deployments
	// are ready and the virtual nodes Ready, stopping early when one of
	// their pods cannot start. Leave it false where no kubelet runs the
	// pods and the test does not play one.
	Wait bool
	// Poll is the interval of the waits (default 1s).
	Poll time.Duration
	// Progress receives one line per change of state during the waits
	// (and a reminder every 15 s of an unchanged one); nil logs them
	// through klog.
	Progress func(line string)
	// Log receives Helm's debug lines; nil logs them at klog V(4).
	Log func(format string, v ...any)
}

func (o Options) withDefaults() Options {
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.ReleaseName == "" {
		o.ReleaseName = DefaultReleaseName
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Minute
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.Log == nil {
		o.Log = func(format string, v ...any) { klog.V(4).Infof(format, v...) }
	}
	return o
}

// Client manages one release of the add-on.
type Client struct {
	opts Options
	cfg  *action.Configuration
	kube kubernetes.Interface
}

// New returns a Client for opts.
func New(opts Options) (*Client, error) {
	opts = opts.withDefaults()
	if opts.RESTConfig == nil {
		return nil, errors.New("addon: RESTConfig is required")
	}
	getter, err := newRESTGetter(opts.RESTConfig, opts.Namespace)
	if err != nil {
		return nil, fmt.Errorf("addon: kubernetes client: %w", err)
	}
	cfg := new(action.Configuration)
	if err := cfg.Init(getter, opts.Namespace, "secret", opts.Log); err != nil {
		return nil, fmt.Errorf("addon: helm configuration: %w", err)
	}
	rc, _ := getter.ToRESTConfig()
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("addon: kubernetes client: %w", err)
	}
	return &Client{opts: opts, cfg: cfg, kube: kube}, nil
}

// Install checks the prerequisites and installs the add-on with values
// (merged over the chart's values.yaml). With the Wait option it then
// waits (WaitReady); when that wait fails the installed release is
// returned with the error.
func (c *Client) Install(ctx context.Context, values map[string]any) (*release.Release, error) {
	ch, err := Chart()
	if err != nil {
		return nil, err
	}
	if err := c.Preflight(ctx, values); err != nil {
		return nil, err
	}
	in := action.NewInstall(c.cfg)
	in.ReleaseName = c.opts.ReleaseName
	in.Namespace = c.opts.Namespace
	in.Timeout = c.opts.Timeout
	rel, err := in.RunWithContext(ctx, ch, values)
	if err != nil {
		return nil, fmt.Errorf("install %s in %s: %w", c.opts.ReleaseName, c.opts.Namespace, err)
	}
	if c.opts.Wait {
		// Waited here rather than by Helm: with progress, an early stop
		// on a pod that cannot start, and cancellation.
		if err := c.WaitReady(ctx, rel); err != nil {
			return rel, err
		}
	}
	return rel, nil
}

// UpgradeResult is an upgraded release and the live edits it kept.
type UpgradeResult struct {
	Release *release.Release
	// KeptEdits are the values taken over from edits of the controller
	// Deployment (value name → edited value), e.g. vSwitches after
	// `kubectl edit deployment` changed ECI_VSWITCH.
	KeptEdits map[string]any
}

// Upgrade upgrades the release to the embedded chart. The values of the
// installed release are reused and values is merged over them; settings
// that users changed directly in the controller Deployment are carried
// into the new release unless values sets them too, so an upgrade never
// silently reverts a `kubectl edit`. With the Wait option it then waits
// (WaitReady); when that wait fails the result is returned with the error.
func (c *Client) Upgrade(ctx context.Context, values map[string]any) (*UpgradeResult, error) {
	ch, err := Chart()
	if err != nil {
		return nil, err
	}
	cur, err := c.current("upgrade")
	if errors.Is(err, ErrNotInstalled) {
		return nil, fmt.Errorf("%w (install it first)", err)
	}
	if err != nil {
		return nil, err
	}
	kept, err := c.liveEdits(ctx, cur)
	if err != nil {
		return nil, err
	}
	merged := map[string]any{}
	for k, v := range kept {
		if _, set := values[k]; !set {
			merged[k] = v
		} else {
			delete(kept, k)
		}
	}
	for k, v := range values {
		merged[k] = v
	}
	up := action.NewUpgrade(c.cfg)
	up.Namespace = c.opts.Namespace
	up.Timeout = c.opts.Timeout
	up.ReuseValues = true
	up.MaxHistory = 10
	rel, err := up.RunWithContext(ctx, c.opts.ReleaseName, ch, merged)
	if err != nil {
		return nil, fmt.Errorf("upgrade %s in %s: %w", c.opts.ReleaseName, c.opts.Namespace, err)
	}
	res := &UpgradeResult{Release: rel, KeptEdits: kept}
	if c.opts.Wait {
		if err := c.WaitReady(ctx, rel); err != nil {
			return res, err
		}
	}
	return res, nil
}

// RenderOptions adjust Render.
type RenderOptions struct {
	// Namespace is the release namespace; empty means kube-system.
	Namespace string
	// KubeVersion is the cluster version to render for; empty means
	// DefaultRenderKubeVersion.
	KubeVersion string
}

// DefaultRenderKubeVersion is the cluster version Render assumes: the SDK's
// own default (v1.20) is older than the chart supports.
const DefaultRenderKubeVersion = "v1.33.0"

// Rendered is the output of Render.
type Rendered struct {
	// Manifest is every object of the release as one YAML stream.
	Manifest string
	// Hooks are the hook objects (the pre-delete drain Job).
	Hooks []*release.Hook
	// Notes is the rendered NOTES.txt.
	Notes string
}

// Render renders the embedded chart with values without a cluster, with
// the schema validation and `required` checks an install applies. lookup
// returns nothing here, so the eci-profile is rendered from values.
func Render(values map[string]any, opts RenderOptions) (*Rendered, error) {
	ch, err := Chart()
	if err != nil {
		return nil, err
	}
	if opts.Namespace == "" {
		opts.Namespace = DefaultNamespace
	}
	cfg := &action.Configuration{Log: func(string, ...any) {}}
	in := action.NewInstall(cfg)
	in.DryRun = true
	in.ClientOnly = true
	in.ReleaseName = DefaultReleaseName
	in.Namespace = opts.Namespace
	if opts.KubeVersion == "" {
		opts.KubeVersion = DefaultRenderKubeVersion
	}
	kv, err := chartutil.ParseKubeVersion(opts.KubeVersion)
	if err != nil {
		return nil, err
	}
	in.KubeVersion = kv
	rel, err := in.Run(ch, values)
	if err != nil {
		return nil, err
	}
	return &Rendered{Manifest: rel.Manifest, Hooks: rel.Hooks, Notes: rel.Info.Notes}, nil
}

func nestedString(m map[string]any, keys ...string) (string, bool) {
	var cur any = m
	for _, k := range keys {
		mm, ok := cur.(map[string]any)
		if !ok {
			return "", false
		}
		cur = mm[k]
	}
	s, ok := cur.(string)
	return s, ok
}
