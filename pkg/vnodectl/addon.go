package vnodectl

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/nodeaccess"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/vnodectl/addon"
	"github.com/spf13/cobra"
	"golang.org/x/term"
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

// client builds the SDK client; its waits print progress to out, each
// line prefixed with the time since the command started. The CLI waits
// itself (after printing what was installed), so the client's Wait is off.
func (f *addonFlags) client(out io.Writer) (*addon.Client, error) {
	admin, err := nodeaccess.LoadAdmin(f.kubeconfig, f.kctx, "")
	if err != nil && (admin == nil || !errors.Is(err, nodeaccess.ErrNoCA)) {
		return nil, err
	}
	start := time.Now()
	return addon.New(addon.Options{
		RESTConfig: admin.Config, Namespace: f.namespace, ReleaseName: f.release, Timeout: f.timeout,
		Progress: func(line string) {
			fmt.Fprintf(out, "[%4s] %s\n", time.Since(start).Round(time.Second), line)
		},
	})
}

// stopped adds to the error of a stopped or failed operation the state it
// left and what to run next, so the last thing printed is never just an
// error. Helm's steps and ours may have seen a cancelled context: the
// state is read with a fresh one.
func (f *addonFlags) stopped(c *addon.Client, err error, state string, next ...string) error {
	msg := "State: " + c.ReleaseState(context.Background())
	if state != "" {
		msg += ". " + state
	}
	if len(next) > 0 {
		msg += "\nNext: " + strings.Join(next, "\n      ")
	}
	return fmt.Errorf("%w\n%s", err, msg)
}

// waitVerdict words what a stopped wait means: the pod that cannot start,
// the timeout, or the signal.
func waitVerdict(err error) string {
	var blocked *addon.PodBlockedError
	var timeout *addon.WaitTimeoutError
	var sig *SignalError
	switch {
	case errors.As(err, &blocked):
		return "stopped waiting: pod " + blocked.Pod + " cannot start (" + blocked.Reason + ")"
	case errors.As(err, &timeout):
		return "stopped waiting after --timeout " + timeout.Timeout.String()
	case errors.As(err, &sig):
		return sig.Error()
	}
	return "failed"
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
  vnodectl addon status                         # explains what is not ready
  vnodectl addon uninstall                      # drains the virtual node first
  vnodectl addon uninstall --skip-drain         # way out of a stuck uninstall (see its --help)

install checks its prerequisites first (the Secret alibaba-addon-secret or a RAM role, the vSwitch and
security group, the cluster version) and lists everything missing.

install and upgrade wait (--wait, default on, up to --timeout) until the add-on's Deployments are
ready and the virtual node is Ready; uninstall waits for its drain Job. Each prints progress and
stops within seconds, naming the pod and the reason, when a pod it waits for cannot start
(Unschedulable, ErrImagePull, ImagePullBackOff, CreateContainerConfigError). Ctrl-C (SIGINT) and
SIGTERM stop a wait (a second one ends vnodectl at once); every stop says the release's state and
what to run next.

Exit codes: 0 done, 1 failed, 2 bad usage, 3 a pod of the add-on cannot start, 4 --timeout ran out,
130/143 interrupted by SIGINT/SIGTERM.`,
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
			c, err := af.client(o.Stdout)
			if err != nil {
				return err
			}
			rel, err := c.Install(cmd.Context(), vals)
			if err != nil {
				var pe *addon.PreflightError
				if errors.As(err, &pe) {
					return err // nothing was installed
				}
				return af.stopped(c, err, "", "vnodectl addon status   (what was created and why it is not ready)",
					"vnodectl addon uninstall (remove what was created)")
			}
			fmt.Fprintf(o.Stdout, "installed %s (chart %s, revision %d) in %s\n", rel.Name, rel.Chart.Metadata.Version, rel.Version, rel.Namespace)
			if af.wait {
				fmt.Fprintf(o.Stdout, "waiting up to %s for the add-on's Deployments and the virtual node to be Ready (--wait=false to skip)\n", af.timeout)
				if err := c.WaitReady(cmd.Context(), rel); err != nil {
					return af.stopped(c, err, "The add-on is installed but not ready ("+waitVerdict(err)+"); nothing was rolled back and its pods keep trying to start.",
						"vnodectl addon status   (why it is not ready, from its pods' conditions and events)",
						"vnodectl addon upgrade --set ... (fix the cause, e.g. controller.nodeSelector or image.registry)",
						"vnodectl addon uninstall (remove it; --skip-drain if its drain cannot run either)")
				}
				fmt.Fprintln(o.Stdout, "the add-on is ready")
			}
			fmt.Fprintf(o.Stdout, "\n%s\n", rel.Info.Notes)
			return nil
		},
	}
	af.register(cmd)
	vf.register(cmd)
	cmd.Flags().BoolVar(&af.wait, "wait", true, "wait (up to --timeout) until the Deployments are ready and the virtual node is Ready, printing progress; stops early when a pod cannot start")
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
			c, err := af.client(o.Stdout)
			if err != nil {
				return err
			}
			res, err := c.Upgrade(cmd.Context(), vals)
			if err != nil {
				if errors.Is(err, addon.ErrNotInstalled) {
					return err
				}
				return af.stopped(c, err, "", "vnodectl addon status", "vnodectl addon upgrade (again, once the cause is fixed)")
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
			if af.wait {
				fmt.Fprintf(o.Stdout, "waiting up to %s for the rollout (--wait=false to skip)\n", af.timeout)
				if err := c.WaitReady(cmd.Context(), res.Release); err != nil {
					return af.stopped(c, err, "The upgrade is applied but not rolled out ("+waitVerdict(err)+"); nothing was rolled back.",
						"vnodectl addon status   (why it is not ready)",
						"vnodectl addon upgrade --set ... (fix the cause)")
				}
				fmt.Fprintln(o.Stdout, "the add-on is ready")
			}
			return nil
		},
	}
	af.register(cmd)
	vf.register(cmd)
	cmd.Flags().BoolVar(&af.wait, "wait", true, "wait (up to --timeout) until the rollout is done, printing progress; stops early when a pod cannot start")
	return cmd
}

func addonUninstallCommand(o Options) *cobra.Command {
	var af addonFlags
	var skipDrain, yes bool
	cmd := &cobra.Command{
		Use:   "uninstall [--skip-drain [--yes]]",
		Short: "Drain the virtual node (pre-delete hook) and uninstall the add-on",
		Long: `Runs the chart's drain Job first: it cordons the virtual nodes, deletes their pods, waits for
their ECI container groups to go and deletes what is left. Progress shows the Job's state and the
pods and container groups still on the virtual nodes. The uninstall stops within seconds, naming
the pod and the reason, when the drain Job's pod cannot start (unschedulable, image pull), and
stops on --timeout, SIGINT or SIGTERM: in each case nothing of the release is deleted, the release
keeps its status (never "uninstalling") and the drain Job is removed so it cannot start later.

A stuck uninstall (the drain can never run, e.g. no node can pull the image or fits the pod):

  vnodectl addon uninstall --skip-drain         lists the pods on the virtual nodes and the ECI
                                                container groups (eci-instance-id) that would be
                                                LEFT RUNNING AND BILLED, and asks for confirmation
  vnodectl addon uninstall --skip-drain --yes   uninstalls without the drain, leaving them

Delete the container groups it names in the ECI console (or reinstall the add-on, which adopts
them, and uninstall normally once the drain can run).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if yes && !skipDrain {
				return &ExitError{Code: 2, Err: errors.New("--yes confirms --skip-drain: give both, or neither")}
			}
			c, err := af.client(o.Stdout)
			if err != nil {
				return err
			}
			if skipDrain {
				return uninstallSkipDrain(cmd, o, &af, c, yes)
			}
			res, err := c.Uninstall(cmd.Context())
			if err != nil {
				var blocked *addon.PodBlockedError
				var failed *addon.HookFailedError
				switch {
				case errors.As(err, &blocked):
					return af.stopped(c, err, "Nothing was deleted: the drain never ran, and its Job was removed so it cannot start later.",
						"vnodectl addon status (the add-on's own pods may be blocked the same way)",
						"fix the cause (e.g. vnodectl addon upgrade --set controller.nodeSelector=... or image.registry=...) and run vnodectl addon uninstall again",
						"or uninstall without the drain: vnodectl addon uninstall --skip-drain (names the container groups it would leave)")
				case errors.As(err, &failed):
					if failed.Log != "" {
						fmt.Fprintf(o.Stdout, "the drain Job's log:\n%s\n", failed.Log)
					}
					return af.stopped(c, err, fmt.Sprintf("Nothing of the release was deleted; the drain Job is kept for its log (kubectl -n %s logs %s).", af.namespace, failed.Hook),
						"delete the container groups its log names as LEFT, then run vnodectl addon uninstall again",
						"or uninstall without the drain: vnodectl addon uninstall --skip-drain")
				case errors.Is(err, addon.ErrNotInstalled):
					return err
				}
				return af.stopped(c, err, "Nothing of the release was deleted ("+waitVerdict(err)+"); the drain Job was removed. If it had started, the virtual nodes may be cordoned and some of their pods deleted: run vnodectl addon uninstall again to finish, or kubectl uncordon them to keep the add-on.",
					"vnodectl addon uninstall (again)", "vnodectl addon uninstall --skip-drain (if the drain cannot run)")
			}
			fmt.Fprintf(o.Stdout, "uninstalled %s\n", af.release)
			if res.Info != "" {
				fmt.Fprintln(o.Stdout, res.Info)
			}
			return nil
		},
	}
	af.register(cmd)
	cmd.Flags().BoolVar(&skipDrain, "skip-drain", false, "uninstall without the drain Job (a stuck uninstall): lists the container groups left running and asks for confirmation")
	cmd.Flags().BoolVar(&yes, "yes", false, "with --skip-drain: confirm leaving the listed container groups running")
	return cmd
}

// uninstallSkipDrain is `uninstall --skip-drain`: name what would be left,
// get a confirmation, uninstall without the drain.
func uninstallSkipDrain(cmd *cobra.Command, o Options, af *addonFlags, c *addon.Client, yes bool) error {
	ctx := cmd.Context()
	left, err := c.PlanSkipDrain(ctx)
	if err != nil {
		return err
	}
	groups := 0
	if len(left) == 0 {
		fmt.Fprintln(o.Stdout, "no pod is on the virtual nodes: uninstalling without the drain leaves no container group behind")
	} else {
		fmt.Fprintln(o.Stdout, "uninstalling without the drain LEAVES these pods and their ECI container groups RUNNING (and billed):")
		for _, l := range left {
			g := l.Group
			if g == "" {
				g = "no container group recorded (check the ECI console for a group tagged with this pod)"
			} else {
				groups++
			}
			fmt.Fprintf(o.Stdout, "  node %s  pod %s  container group %s\n", l.Node, l.Pod, g)
		}
	}
	if len(left) > 0 && !yes {
		if !confirm(o, fmt.Sprintf("Leave %d container groups running and uninstall? Type yes: ", groups)) {
			return &ExitError{Code: 1, Err: fmt.Errorf("not uninstalled: %d pods (%d container groups) would be left on the virtual nodes; nothing was changed. "+
				"Re-run with --skip-drain --yes to leave them, or make the drain runnable and run vnodectl addon uninstall", len(left), groups)}
		}
	}
	res, err := c.UninstallWith(ctx, addon.UninstallOptions{SkipDrain: true})
	if err != nil {
		return af.stopped(c, err, "", "vnodectl addon uninstall --skip-drain --yes (again)")
	}
	for _, h := range res.StaleHooks {
		fmt.Fprintf(o.Stdout, "deleted %s left by an earlier uninstall (it would have started later)\n", h)
	}
	fmt.Fprintf(o.Stdout, "uninstalled %s without the drain\n", af.release)
	if res.Info != "" {
		fmt.Fprintln(o.Stdout, res.Info)
	}
	var ids []string
	for _, l := range res.Left {
		if l.Group != "" {
			ids = append(ids, l.Group)
		}
	}
	if len(ids) > 0 {
		fmt.Fprintf(o.Stdout, "LEFT RUNNING: %d container groups: %s\ndelete them in the ECI console (or reinstall the add-on, which adopts them, and uninstall with the drain)\n",
			len(ids), strings.Join(ids, ", "))
	}
	return nil
}

// confirm asks on a terminal; anything else (a pipe, /dev/null, a test)
// is a no, so scripts must say --yes.
func confirm(o Options, question string) bool {
	f, ok := o.Stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return false
	}
	fmt.Fprint(o.Stdout, question)
	answer, _ := bufio.NewReader(f).ReadString('\n')
	return strings.TrimSpace(answer) == "yes"
}

func addonStatusCommand(o Options) *cobra.Command {
	var af addonFlags
	var output string
	cmd := &cobra.Command{
		Use:   "status [-o json]",
		Short: "Show the release, its Deployments and the virtual node, and why what is not ready is not",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "" && output != "json" && output != "text" {
				return &ExitError{Code: 2, Err: fmt.Errorf("-o %q: use json or text", output)}
			}
			c, err := af.client(o.Stdout)
			if err != nil {
				return err
			}
			st, err := c.Status(cmd.Context())
			if err != nil {
				return err
			}
			if output == "json" {
				summary := map[string]any{
					"release": st.Release.Name, "namespace": st.Release.Namespace, "revision": st.Release.Version,
					"status": st.Release.Info.Status.String(), "chart": st.Release.Chart.Metadata.Version,
					"appVersion": st.Release.Chart.Metadata.AppVersion, "deployments": st.Deployments, "nodeReady": st.NodeReady,
					"nodes": st.Nodes, "problems": st.Problems, "hooks": st.Hooks, "hint": st.Hint,
				}
				enc := json.NewEncoder(o.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(summary)
			}
			fmt.Fprintf(o.Stdout, "release %s in %s: %s (revision %d, chart %s, app %s)\n", st.Release.Name, st.Release.Namespace,
				st.Release.Info.Status, st.Release.Version, st.Release.Chart.Metadata.Version, st.Release.Chart.Metadata.AppVersion)
			if st.Hint != "" {
				fmt.Fprintf(o.Stdout, "  %s\n", st.Hint)
			}
			for _, h := range st.Hooks {
				fmt.Fprintln(o.Stdout, h)
			}
			names := make([]string, 0, len(st.Deployments))
			for n := range st.Deployments {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				kind := strings.ToLower(st.Kinds[n])
				if kind == "" {
					kind = "deployment"
				}
				fmt.Fprintf(o.Stdout, "%s/%s ready %s\n", kind, n, st.Deployments[n])
				for _, p := range st.Problems[n] {
					fmt.Fprintf(o.Stdout, "  %s\n", p)
				}
			}
			nodes := make([]string, 0, len(st.Nodes))
			for n := range st.Nodes {
				nodes = append(nodes, n)
			}
			sort.Strings(nodes)
			for _, n := range nodes {
				ready := st.Nodes[n]
				if ready == "" {
					ready = "not registered (the controller registers it once it runs)"
				}
				fmt.Fprintf(o.Stdout, "virtual node %s Ready: %s\n", n, ready)
			}
			return nil
		},
	}
	af.register(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}
