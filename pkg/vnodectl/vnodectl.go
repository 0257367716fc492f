// Package vnodectl is the command line of `vnodectl`: it prepares a
// self-managed cluster for virtual nodes (kubeconfig), checks the result
// (doctor) and keeps DaemonSets off virtual nodes (exclude-daemonsets).
// The logic lives in pkg/nodeaccess, pkg/vnodectl/doctor and pkg/vnodectl/daemonsets; this
// package only maps flags to them and renders their results.
package vnodectl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/nodeaccess"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/vnodectl/addon"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/vnodectl/daemonsets"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/vnodectl/doctor"
	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
)

// Exit codes of vnodectl besides 0 (success), 1 (failure) and 2 (bad
// usage).
const (
	// ExitPodBlocked: `vnodectl addon` stopped waiting early because a pod
	// of the add-on (the controller, the webhook, the drain hook) cannot
	// start by itself: unschedulable, or its image cannot be pulled.
	ExitPodBlocked = 3
	// ExitTimeout: a `vnodectl addon` wait ran out its --timeout.
	ExitTimeout = 4
)

// SignalError is the cancel cause main gives the command's context when
// SIGINT or SIGTERM arrives; vnodectl then exits 128+signal (130, 143).
type SignalError struct {
	// Signal is the signal received.
	Signal os.Signal
}

// Error names the signal.
func (e *SignalError) Error() string {
	name := e.Signal.String()
	switch e.Signal {
	case os.Interrupt:
		name = "SIGINT"
	case syscall.SIGTERM:
		name = "SIGTERM"
	}
	return "interrupted by " + name
}

// Code is the conventional exit code, 128 + the signal number.
func (e *SignalError) Code() int {
	if s, ok := e.Signal.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return 130
}

// ExitError carries the process exit code for main: 1 for a failed
// operation or failed doctor check, 2 for bad usage.
type ExitError struct {
	// Code is the process exit code.
	Code int
	// Err is what went wrong, printed by Execute.
	Err error
}

// Error returns the wrapped message.
func (e *ExitError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode maps an error returned by the root command to an exit code.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var sig *SignalError
	if errors.As(err, &sig) {
		return sig.Code()
	}
	var e *ExitError
	if errors.As(err, &e) {
		return e.Code
	}
	var blocked *addon.PodBlockedError
	if errors.As(err, &blocked) {
		return ExitPodBlocked
	}
	var timeout *addon.WaitTimeoutError
	if errors.As(err, &timeout) {
		return ExitTimeout
	}
	if strings.HasPrefix(err.Error(), "required flag") || strings.HasPrefix(err.Error(), "unknown command") {
		return 2
	}
	return 1
}

// Options are the process-level inputs of the commands, so tests can run
// the root command in-process.
type Options struct {
	Stdout, Stderr io.Writer
	// Stdin answers confirmations (default os.Stdin); they are asked only
	// when it is a terminal.
	Stdin io.Reader
	// Getenv reads the environment (default os.Getenv).
	Getenv func(string) string
	// Resolver resolves the API server name in doctor (default
	// net.DefaultResolver); tests point it at a local DNS server.
	Resolver *net.Resolver
	// Version is printed by --version.
	Version string
}

// NewRootCommand builds `vnodectl` with its subcommands.
func NewRootCommand(o Options) *cobra.Command {
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Stdin == nil {
		o.Stdin = os.Stdin
	}
	root := &cobra.Command{
		Use:   "vnodectl",
		Short: "Connect a self-managed Kubernetes cluster to ECI virtual nodes",
		Long: `vnodectl prepares a self-managed Kubernetes cluster for ack-virtual-node virtual nodes:

  vnodectl kubeconfig          create the RBAC and a token, and write vnode-config
  vnodectl doctor              check vnode-config, the cluster and the ECI credentials
  vnodectl exclude-daemonsets  keep kube-proxy (and other DaemonSets) off virtual nodes
  vnodectl addon ...           install, upgrade, uninstall or inspect the add-on (embedded chart)

It uses the current kubeconfig (--kubeconfig, else $KUBECONFIG, else ~/.kube/config) as admin.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       o.Version,
	}
	root.SetOut(o.Stdout)
	root.SetErr(o.Stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &ExitError{Code: 2, Err: err} })
	root.AddCommand(kubeconfigCommand(o), doctorCommand(o), excludeCommand(o), addonCommand(o))
	return root
}

// Execute runs the root command with args and returns the exit code,
// printing the error.
func Execute(ctx context.Context, o Options, args []string) int {
	root := NewRootCommand(o)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	var sig *SignalError
	if err != nil && errors.As(context.Cause(ctx), &sig) && !errors.As(err, &sig) {
		// Some steps (Helm's) report a cancellation as context.Canceled
		// only: say which signal it was, and exit accordingly.
		err = fmt.Errorf("%w: %w", sig, err)
	}
	if err != nil {
		w := o.Stderr
		if w == nil {
			w = os.Stderr
		}
		fmt.Fprintln(w, "Error:", err)
	}
	return ExitCode(err)
}

func kubeconfigCommand(o Options) *cobra.Command {
	var (
		kubeconfig, kctx, mode, output, server, caFile string
		extra, rotate                                  bool
		ttl                                            time.Duration
		nodeName                                       string
	)
	cmd := &cobra.Command{
		Use:   "kubeconfig --mode bootstrap|serviceaccount [-o vnode-config]",
		Short: "Create the virtual node's RBAC and token and write its kubeconfig (vnode-config)",
		Long: `Creates, with the current (admin) kubeconfig:

  - ClusterRoleBindings to system:node, system:node-proxier,
    certificatesigningrequests:selfnodeclient and the ClusterRole ` + nodeaccess.ExtraRoleName + `
    (pods and persistentvolumeclaims update/patch; endpoints create/update with --extra-privilege,
    which 1.13 clusters need for leader election), for group ` + nodeaccess.NodeGroup + ` (bootstrap)
    or the ServiceAccount kube-system/` + nodeaccess.ServiceAccountName + ` (serviceaccount);
  - bootstrap mode: a bootstrap token Secret in kube-system (group ` + nodeaccess.BootstrapGroup + `,
    bound to system:node-bootstrapper and certificatesigningrequests:nodeclient), so the
    virtual node asks for a certificate (O=` + nodeaccess.NodeGroup + `, CN=` + nodeaccess.NodeCNPrefix + `<node-name>) that
    vnode-approver approves; certificates then rotate automatically;
  - serviceaccount mode: the ServiceAccount and a token (a long-lived token Secret, or a
    TokenRequest with --token-ttl). It cannot rotate: when it expires the node stops.

and writes the kubeconfig with the cluster CA inlined (a certificate-authority file path is read
and inlined). Running it again reuses the token (--rotate replaces it); objects it owns are
labelled ` + nodeaccess.LabelManagedBy + `=` + nodeaccess.ManagedByValue + `.`,
		Example: `  vnodectl kubeconfig --mode bootstrap -o vnode-config
  vnodectl kubeconfig --mode serviceaccount --token-ttl 8760h --server https://10.16.0.10:6443`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := nodeaccess.ParseMode(mode)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			admin, err := nodeaccess.LoadAdmin(kubeconfig, kctx, caFile)
			if err != nil {
				return err
			}
			res, err := nodeaccess.Generate(cmd.Context(), admin, nodeaccess.Options{
				Mode: m, ExtraPrivilege: extra, Server: server, Output: output,
				Token: nodeaccess.TokenOptions{TTL: ttl, Rotate: rotate},
			})
			out := cmd.OutOrStdout()
			if res != nil {
				for _, c := range res.Changes {
					fmt.Fprintln(out, c)
				}
			}
			if err != nil {
				return err
			}
			verb := "created"
			if res.Token.Reused {
				verb = "reused"
			}
			fmt.Fprintf(out, "%s token: %s\n", verb, res.Token.Source)
			if res.Token.Expires.IsZero() {
				fmt.Fprintln(out, "token expiry: none")
			} else {
				fmt.Fprintf(out, "token expiry: %s\n", res.Token.Expires.UTC().Format(time.RFC3339))
			}
			for _, w := range res.Warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), "WARNING:", w)
			}
			fmt.Fprintf(out, "wrote %s (server %s, mode %s)\n", output, res.Server, m)
			if m == nodeaccess.ModeBootstrap {
				name := nodeName
				if name == "" {
					name = "<node-name>"
				}
				fmt.Fprintf(out, "The virtual node authenticates as %s%s in group %s once vnode-approver approves its CSR; create it with TlsBootstrapEnabled=true.\n",
					nodeaccess.NodeCNPrefix, name, nodeaccess.NodeGroup)
			}
			fmt.Fprintf(out, "Check it with: vnodectl doctor --kubeconfig %s\n", output)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&kubeconfig, "kubeconfig", "", "admin kubeconfig (default $KUBECONFIG, else ~/.kube/config)")
	f.StringVar(&kctx, "context", "", "kubeconfig context to use (default the current context)")
	f.StringVar(&mode, "mode", "", "bootstrap (TLS bootstrapping, recommended) or serviceaccount (token, no rotation)")
	f.StringVarP(&output, "output", "o", "vnode-config", "path of the kubeconfig to write")
	f.StringVar(&server, "server", "", "API server URL to write, when the VPC reaches it under another address (default: the admin kubeconfig's)")
	f.StringVar(&caFile, "ca-file", "", "cluster CA file to inline instead of the admin kubeconfig's")
	f.BoolVar(&extra, "extra-privilege", false, "also grant endpoints create/update (leader election on 1.13 clusters)")
	f.BoolVar(&rotate, "rotate", false, "issue a new token and delete the old one instead of reusing it")
	f.DurationVar(&ttl, "token-ttl", 0, "token lifetime (e.g. 8760h); 0 means it does not expire")
	f.StringVar(&nodeName, "node-name", "", "virtual node name, to print the identity it will have (bootstrap mode)")
	_ = cmd.MarkFlagRequired("mode")
	return cmd
}

func doctorCommand(o Options) *cobra.Command {
	var (
		kubeconfig, admin, output        string
		region, endpoint, akID, akSecret string
		extra                            bool
		timeout                          time.Duration
	)
	cmd := &cobra.Command{
		Use:   "doctor [--kubeconfig vnode-config] [-o json]",
		Short: "Check vnode-config, the cluster and the ECI credentials, with a fix for each failure",
		Long: `Checks, each with a pass/fail line and a fix:

  kubeconfig   vnode-config is complete: server, inlined CA, a credential
  server       the API server address resolves and accepts connections
               ("no such host" and timeouts explained as in the vendor's common errors)
  ca           the inlined CA verifies the API server's certificate
  version      /version answers and the cluster is 1.16 to 1.30
  identity     who the credential authenticates as
  permissions  every permission the node (or, for a bootstrap token, TLS bootstrapping)
               needs is granted (a SelfSubjectAccessReview per verb and resource)
  kube-proxy   the kube-proxy DaemonSet excludes virtual nodes (read with --admin-kubeconfig)
  eci          the ECI credentials work (DescribeContainerGroups, Limit 1); skipped without them

Exits 1 when any check fails.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "" && output != "json" && output != "text" {
				return &ExitError{Code: 2, Err: fmt.Errorf("-o %q: use json or text", output)}
			}
			var adminClient kubernetes.Interface
			if admin != "" || o.Getenv("KUBECONFIG") != "" || fileExists(os.ExpandEnv("$HOME/.kube/config")) {
				adminClient = doctor.AdminClient(admin)
			}
			rep := doctor.Run(cmd.Context(), doctor.Options{
				Kubeconfig: kubeconfig, Admin: adminClient, ExtraPrivilege: extra, Timeout: timeout, Resolver: o.Resolver,
				Region: region, Endpoint: endpoint, AccessKeyID: akID, AccessKeySecret: akSecret,
			})
			out := cmd.OutOrStdout()
			if output == "json" {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				for _, c := range rep.Checks {
					fmt.Fprintf(out, "%-4s  %-11s  %s\n", strings.ToUpper(string(c.Status)), c.Name, c.Message)
					if c.Fix != "" && c.Status != doctor.Pass {
						fmt.Fprintf(out, "      %-11s  fix: %s\n", "", c.Fix)
					}
				}
			}
			if failed := rep.Failed(); len(failed) > 0 {
				return &ExitError{Code: 1, Err: fmt.Errorf("%d check(s) failed: %s", len(failed), strings.Join(failed, ", "))}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&kubeconfig, "kubeconfig", "vnode-config", "the virtual node's kubeconfig to check")
	f.StringVar(&admin, "admin-kubeconfig", "", "admin kubeconfig for cluster-wide checks (default $KUBECONFIG, else ~/.kube/config)")
	f.StringVarP(&output, "output", "o", "text", "text or json")
	f.BoolVar(&extra, "extra-privilege", false, "also expect endpoints create/update (1.13 clusters)")
	f.DurationVar(&timeout, "timeout", 10*time.Second, "timeout of each network step")
	f.StringVar(&region, "region", o.Getenv("ECI_REGION"), "ECI region (default $ECI_REGION)")
	f.StringVar(&endpoint, "endpoint", o.Getenv("ECI_ENDPOINT"), "ECI endpoint (default $ECI_ENDPOINT, else eci.<region>.aliyuncs.com)")
	f.StringVar(&akID, "access-key-id", o.Getenv("ALIBABA_CLOUD_ACCESS_KEY_ID"), "AccessKey ID (default $ALIBABA_CLOUD_ACCESS_KEY_ID)")
	f.StringVar(&akSecret, "access-key-secret", "", "AccessKey secret (default $ALIBABA_CLOUD_ACCESS_KEY_SECRET; prefer the variable, flags show in ps)")
	cmd.PreRun = func(*cobra.Command, []string) {
		if akSecret == "" {
			akSecret = o.Getenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
		}
	}
	return cmd
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func excludeCommand(o Options) *cobra.Command {
	var (
		kubeconfig, kctx string
		all, dryRun      bool
	)
	cmd := &cobra.Command{
		Use:   "exclude-daemonsets [--all] [--dry-run]",
		Short: "Keep kube-proxy (and with --all every DaemonSet tolerating the virtual node's taint) off virtual nodes",
		Long: `Adds the node affinity the vendor's documentation asks for,

  matchExpressions: [{key: ` + daemonsets.NodeLabelKey + `, operator: NotIn, values: [` + daemonsets.NodeLabelValue + `]}]

to kube-system/kube-proxy and, with --all, to every DaemonSet whose tolerations admit the taint
` + daemonsets.TaintKey + `. Existing affinity is kept: each required nodeSelectorTerm gets the
expression (terms are ORed). Running it again changes nothing. Prints the diff of each change;
--dry-run validates the change on the server and persists nothing. Changing the pod template
rolls the DaemonSet's pods.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			admin, err := nodeaccess.LoadAdmin(kubeconfig, kctx, "")
			if err != nil && !errors.Is(err, nodeaccess.ErrNoCA) {
				return err
			}
			if admin == nil {
				// No CA to inline is fine here: only vnode-config needs one.
				return err
			}
			kube, err := kubernetes.NewForConfig(admin.Config)
			if err != nil {
				return err
			}
			changes, err := daemonsets.Exclude(cmd.Context(), kube, daemonsets.Options{All: all, DryRun: dryRun})
			out := cmd.OutOrStdout()
			for _, c := range changes {
				switch {
				case !c.Changed:
					fmt.Fprintf(out, "DaemonSet %s/%s already excludes virtual nodes\n", c.Namespace, c.Name)
				case dryRun:
					fmt.Fprintf(out, "DaemonSet %s/%s would change (dry run, nothing persisted):\n%s", c.Namespace, c.Name, c.Diff)
				default:
					fmt.Fprintf(out, "DaemonSet %s/%s updated:\n%s", c.Namespace, c.Name, c.Diff)
				}
			}
			if err != nil {
				return err
			}
			if len(changes) == 0 {
				fmt.Fprintf(out, "no DaemonSet to change: %s/%s does not exist", daemonsets.KubeProxy[0], daemonsets.KubeProxy[1])
				if all {
					fmt.Fprintf(out, " and no other DaemonSet tolerates %s", daemonsets.TaintKey)
				}
				fmt.Fprintln(out)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&kubeconfig, "kubeconfig", "", "admin kubeconfig (default $KUBECONFIG, else ~/.kube/config)")
	f.StringVar(&kctx, "context", "", "kubeconfig context to use")
	f.BoolVar(&all, "all", false, "also every DaemonSet that tolerates "+daemonsets.TaintKey)
	f.BoolVar(&dryRun, "dry-run", false, "print the diff and validate on the server, change nothing")
	return cmd
}
