package vnodectl

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/nodeaccess"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/vnodectl/addon"
	"github.com/spf13/cobra"
	"helm.sh/helm/v3/pkg/strvals"
	"sigs.k8s.io/yaml"
)

// addonFlags are the flags every `vnodectl addon` subcommand shares.
type addonFlags struct {
	kubeconfig, kctx, namespace, release string
	timeout                              time.Duration
	wait                                 bool
}

func (f *addonFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "admin kubeconfig (default $KUBECONFIG, else ~/.kube/config)")
	fl.StringVar(&f.kctx, "context", "", "kubeconfig context to use (default the current context)")
	fl.StringVarP(&f.namespace, "namespace", "n", addon.DefaultNamespace, "namespace of the add-on (and of alibaba-addon-secret)")
	fl.StringVar(&f.release, "release", addon.DefaultReleaseName, "Helm release name")
	fl.DurationVar(&f.timeout, "timeout", 10*time.Minute, "bound of waits and of the uninstall drain hook")
}

func (f *addonFlags) client() (*addon.Client, error) {
	admin, err := nodeaccess.LoadAdmin(f.kubeconfig, f.kctx, "")
	if err != nil && (admin == nil || !errors.Is(err, nodeaccess.ErrNoCA)) {
		return nil, err
	}
	return addon.New(addon.Options{
		RESTConfig: admin.Config, Namespace: f.namespace, ReleaseName: f.release, Timeout: f.timeout, Wait: f.wait,
	})
}

// valueFlags map the documented settings to chart values; --set and -f
// reach every other value.
type valueFlags struct {
	region, securityGroup, clusterID, endpoint, credentials string
	vSwitches, sets, files                                  []string
	kubeProxy                                               bool
}

func (v *valueFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&v.region, "region", "", "region of the vSwitches, e.g. cn-hangzhou (ECI_REGION)")
	fl.StringSliceVar(&v.vSwitches, "vswitch", nil, "vSwitch ids of new ECI pods, comma-separated or repeated (ECI_VSWITCH)")
	fl.StringVar(&v.securityGroup, "security-group", "", "security group of new ECI pods (ECI_SECURITY_GROUP)")
	fl.BoolVar(&v.kubeProxy, "kube-proxy", true, "let ECI pods reach ClusterIP Services (ECI_KUBE_PROXY)")
	fl.StringVar(&v.clusterID, "cluster-id", "", "cluster id tagging the container groups (CLUSTER_ID; default the kube-system UID)")
	fl.StringVar(&v.endpoint, "eci-endpoint", "", "ECI endpoint override (ECI_ENDPOINT)")
	fl.StringVar(&v.credentials, "credentials", "", "secret (alibaba-addon-secret), rrsa or ramRole (credentials.mode)")
	fl.StringArrayVar(&v.sets, "set", nil, "chart value, e.g. --set controller.nodeCount=2 (repeatable)")
	fl.StringArrayVarP(&v.files, "values", "f", nil, "YAML file of chart values (repeatable; later files win)")
}

// values builds the values map; only flags the user set are included, so an
// upgrade keeps everything else.
func (v *valueFlags) values(cmd *cobra.Command) (map[string]any, error) {
	vals := map[string]any{}
	for _, f := range v.files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, &ExitError{Code: 2, Err: fmt.Errorf("-f %s: %w", f, err)}
		}
		var m map[string]any
		if err := yaml.Unmarshal(b, &m); err != nil {
			return nil, &ExitError{Code: 2, Err: fmt.Errorf("-f %s: %w", f, err)}
		}
		mergeValues(vals, m)
	}
	changed := cmd.Flags().Changed
	if changed("region") {
		vals["region"] = v.region
	}
	if changed("vswitch") {
		list := []any{}
		for _, s := range v.vSwitches {
			if s = strings.TrimSpace(s); s != "" {
				list = append(list, s)
			}
		}
		vals["vSwitches"] = list
	}
	if changed("security-group") {
		vals["securityGroup"] = v.securityGroup
	}
	if changed("kube-proxy") {
		vals["kubeProxy"] = v.kubeProxy
	}
	if changed("cluster-id") {
		vals["clusterId"] = v.clusterID
	}
	if changed("eci-endpoint") {
		vals["eciEndpoint"] = v.endpoint
	}
	if changed("credentials") {
		mergeValues(vals, map[string]any{"credentials": map[string]any{"mode": v.credentials}})
	}
	for _, s := range v.sets {
		if err := strvals.ParseInto(s, vals); err != nil {
			return nil, &ExitError{Code: 2, Err: fmt.Errorf("--set %s: %w", s, err)}
		}
	}
	return vals, nil
}

// mergeValues merges src into dst, recursing into maps.
func mergeValues(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				mergeValues(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

func addonCommand(o Options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "addon install|upgrade|uninstall|status",
		Short: "Install, upgrade, uninstall or inspect the ack-virtual-node add-on (embedded Helm chart)",
		Long: `Manages the ack-virtual-node add-on like the console's Add-ons page, with the Helm chart built
into vnodectl (no helm binary needed):

  vnodectl addon install --region cn-hangzhou --vswitch vsw-aaa,vsw-bbb --security-group sg-xxx
  vnodectl addon upgrade --vswitch vsw-ccc      # other settings and kubectl edits are kept
  vnodectl addon status
  vnodectl addon uninstall                      # drains the virtual node first

install checks its prerequisites first (the Secret alibaba-addon-secret or a RAM role, the vSwitch and
security group, the cluster version) and lists everything missing.`,
	}
	cmd.AddCommand(addonInstallCommand(o), addonUpgradeCommand(o), addonUninstallCommand(o), addonStatusCommand(o))
	return cmd
}

func addonInstallCommand(o Options) *cobra.Command {
	var af addonFlags
	var vf valueFlags
	cmd := &cobra.Command{
		Use:   "install --region R --vswitch vsw-... --security-group sg-...",
		Short: "Check the prerequisites and install the add-on",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			vals, err := vf.values(cmd)
			if err != nil {
				return err
			}
			c, err := af.client()
			if err != nil {
				return err
			}
			rel, err := c.Install(cmd.Context(), vals)
			if err != nil {
				return err
			}
			fmt.Fprintf(o.Stdout, "installed %s (chart %s, revision %d) in %s\n\n%s\n", rel.Name, rel.Chart.Metadata.Version, rel.Version, rel.Namespace, rel.Info.Notes)
			return nil
		},
	}
	af.register(cmd)
	vf.register(cmd)
	cmd.Flags().BoolVar(&af.wait, "wait", false, "wait until the Deployments are ready")
	return cmd
}

func addonUpgradeCommand(o Options) *cobra.Command {
	var af addonFlags
	var vf valueFlags
	cmd := &cobra.Command{
		Use:   "upgrade [--vswitch ...] [--set k=v]",
		Short: "Upgrade the add-on to this vnodectl's chart, keeping values and kubectl edits",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			vals, err := vf.values(cmd)
			if err != nil {
				return err
			}
			c, err := af.client()
			if err != nil {
				return err
			}
			res, err := c.Upgrade(cmd.Context(), vals)
			if err != nil {
				return err
			}
			fmt.Fprintf(o.Stdout, "upgraded %s to chart %s (revision %d)\n", res.Release.Name, res.Release.Chart.Metadata.Version, res.Release.Version)
			keys := make([]string, 0, len(res.KeptEdits))
			for k := range res.KeptEdits {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(o.Stdout, "kept your edit of deployment/%s: %s=%v\n", addon.ControllerDeployment, k, res.KeptEdits[k])
			}
			return nil
		},
	}
	af.register(cmd)
	vf.register(cmd)
	cmd.Flags().BoolVar(&af.wait, "wait", false, "wait until the Deployments are ready")
	return cmd
}

func addonUninstallCommand(o Options) *cobra.Command {
	var af addonFlags
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Drain the virtual node (pre-delete hook) and uninstall the add-on",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := af.client()
			if err != nil {
				return err
			}
			res, err := c.Uninstall(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(o.Stdout, "uninstalled %s\n", af.release)
			if res.Info != "" {
				fmt.Fprintln(o.Stdout, res.Info)
			}
			return nil
		},
	}
	af.register(cmd)
	return cmd
}

func addonStatusCommand(o Options) *cobra.Command {
	var af addonFlags
	var output string
	cmd := &cobra.Command{
		Use:   "status [-o json]",
		Short: "Show the release, its Deployments and the virtual node",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "" && output != "json" && output != "text" {
				return &ExitError{Code: 2, Err: fmt.Errorf("-o %q: use json or text", output)}
			}
			c, err := af.client()
			if err != nil {
				return err
			}
			st, err := c.Status(cmd.Context())
			if err != nil {
				return err
			}
			summary := map[string]any{
				"release": st.Release.Name, "namespace": st.Release.Namespace, "revision": st.Release.Version,
				"status": st.Release.Info.Status.String(), "chart": st.Release.Chart.Metadata.Version,
				"appVersion": st.Release.Chart.Metadata.AppVersion, "deployments": st.Deployments, "nodeReady": st.NodeReady,
			}
			if output == "json" {
				enc := json.NewEncoder(o.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(summary)
			}
			fmt.Fprintf(o.Stdout, "release %s in %s: %s (revision %d, chart %s, app %s)\n", st.Release.Name, st.Release.Namespace,
				st.Release.Info.Status, st.Release.Version, st.Release.Chart.Metadata.Version, st.Release.Chart.Metadata.AppVersion)
			names := make([]string, 0, len(st.Deployments))
			for n := range st.Deployments {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				fmt.Fprintf(o.Stdout, "deployment/%s ready %s\n", n, st.Deployments[n])
			}
			node := st.NodeReady
			if node == "" {
				node = "not registered"
			}
			fmt.Fprintf(o.Stdout, "virtual node Ready: %s\n", node)
			return nil
		},
	}
	af.register(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}
