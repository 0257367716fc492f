package addon

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/kubeversion"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chartutil"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var getOpts = metav1.GetOptions{}

var (
	vswitchRE = regexp.MustCompile(`^vsw-[a-z0-9-]+$`)
	sgRE      = regexp.MustCompile(`^sg-[a-z0-9-]+$`)
	regionRE  = regexp.MustCompile(`^[a-z]{2,}-[a-z0-9-]+$`)
)

// PreflightError lists every prerequisite an install is missing, each with
// what to do about it.
type PreflightError struct {
	// Problems are the missing prerequisites, one sentence each.
	Problems []string
}

// Error lists the problems.
func (e *PreflightError) Error() string {
	return "ack-virtual-node cannot be installed yet:\n  - " + strings.Join(e.Problems, "\n  - ")
}

// Preflight checks what an install needs before anything is created: the
// vSwitch, security group and region values, the AccessKey Secret (or a
// RAM role / RRSA configuration), the cluster version the chart supports,
// the release namespace, and that the release is not installed already. It
// returns a *PreflightError naming everything missing at once.
func (c *Client) Preflight(ctx context.Context, values map[string]any) error {
	ch, err := Chart()
	if err != nil {
		return err
	}
	vals, err := chartutil.CoalesceValues(ch, values)
	if err != nil {
		return fmt.Errorf("values: %w", err)
	}
	var problems []string
	add := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }

	problems = append(problems, checkNetworkValues(vals)...)

	ns := c.opts.Namespace
	if _, err := c.kube.CoreV1().Namespaces().Get(ctx, ns, getOpts); err != nil {
		add("namespace %s: %v", ns, err)
	}

	mode, _ := nestedString(vals, "credentials", "mode")
	switch mode {
	case "secret":
		create, _ := vals["credentials"].(map[string]any)["create"].(bool)
		name, _ := nestedString(vals, "credentials", "secretName")
		if create {
			id, _ := nestedString(vals, "credentials", "accessKeyId")
			secret, _ := nestedString(vals, "credentials", "accessKeySecret")
			if id == "" || secret == "" {
				add("credentials.create is true but credentials.accessKeyId/accessKeySecret are empty: set both, or create the Secret %s yourself and set credentials.create=false", name)
			}
			break
		}
		sec, err := c.kube.CoreV1().Secrets(ns).Get(ctx, name, getOpts)
		switch {
		case apierrors.IsNotFound(err):
			add("AccessKey Secret %s/%s not found: create it with `kubectl -n %s create secret generic %s --from-literal=access-key-id=<id> --from-literal=access-key-secret=<secret>` (a RAM user with AliyunECIFullAccess), or use a RAM role with --set credentials.mode=rrsa or ramRole", ns, name, ns, name)
		case err != nil:
			add("AccessKey Secret %s/%s cannot be read: %v", ns, name, err)
		default:
			for _, key := range []string{"access-key-id", "access-key-secret"} {
				if len(sec.Data[key]) == 0 {
					add("AccessKey Secret %s/%s has no %q key: recreate it with both access-key-id and access-key-secret", ns, name, key)
				}
			}
		}
	case "rrsa":
		for _, k := range []string{"roleArn", "oidcProviderArn"} {
			if v, _ := nestedString(vals, "credentials", "rrsa", k); v == "" {
				add("credentials.mode=rrsa needs credentials.rrsa.%s: set it (RAM console → RRSA of the cluster)", k)
			}
		}
	case "ramRole":
		// The instance RAM role is only visible from the node; nothing to
		// check from here.
	default:
		add("credentials.mode %q is unknown: use secret, rrsa or ramRole", mode)
	}

	if sv, err := c.kube.Discovery().ServerVersion(); err != nil {
		add("cluster version cannot be read: %v", err)
	} else if kv := ch.Metadata.KubeVersion; kv != "" && !chartutil.IsCompatibleRange(kv, sv.GitVersion) {
		add("cluster version %s is not supported: ack-virtual-node %s supports Kubernetes %s (chart kubeVersion %s); use a cluster in that range", sv.GitVersion, ch.Metadata.AppVersion, kubeversion.Range, kv)
	}

	if _, err := action.NewGet(c.cfg).Run(c.opts.ReleaseName); err == nil {
		add("release %s is already installed in %s: use upgrade to change it", c.opts.ReleaseName, ns)
	}

	if len(problems) > 0 {
		return &PreflightError{Problems: problems}
	}
	return nil
}

// checkNetworkValues checks region, vSwitches and securityGroup, naming the
// value, the environment variable it becomes and an example.
func checkNetworkValues(vals map[string]any) []string {
	var problems []string
	add := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	region, _ := vals["region"].(string)
	switch {
	case region == "":
		add("region is empty: set it to the region of the vSwitches, e.g. --set region=cn-hangzhou (ECI_REGION)")
	case !regionRE.MatchString(region):
		add("region %q is not a region id, e.g. cn-hangzhou (ECI_REGION)", region)
	}
	var vsw []string
	switch v := vals["vSwitches"].(type) {
	case []any:
		for _, x := range v {
			vsw = append(vsw, fmt.Sprint(x))
		}
	case []string:
		vsw = v
	case string:
		vsw = splitList(v)
	}
	switch {
	case len(vsw) == 0:
		add("vSwitches is empty: set 1-10 vSwitch ids of the cluster's VPC, e.g. --set 'vSwitches={vsw-aaa,vsw-bbb}' (ECI_VSWITCH)")
	case len(vsw) > 10:
		add("vSwitches has %d entries: ECI accepts at most 10 (ECI_VSWITCH)", len(vsw))
	}
	for _, v := range vsw {
		if !vswitchRE.MatchString(v) {
			add("vSwitches: %q is not a vSwitch id (expected vsw-...)", v)
		}
	}
	sg, _ := vals["securityGroup"].(string)
	switch {
	case sg == "":
		add("securityGroup is empty: set it to the security group of new ECI pods, e.g. --set securityGroup=sg-xxx (ECI_SECURITY_GROUP)")
	case !sgRE.MatchString(sg):
		add("securityGroup %q is not a security group id (expected sg-...)", sg)
	}
	return problems
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
