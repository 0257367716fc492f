package doctor

import (
	"context"
	"fmt"
	"strings"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
)

// checkECIPermissions probes every action the controller uses with the
// AccessKey (harmless calls, eci.ProbeParams) and lists those its RAM policy refuses (Forbidden.RAM), with
// the policy that allows them. Any other answer (NotFound,
// InvalidParameter, DryRunOperation...) means the action is allowed.
func checkECIPermissions(ctx context.Context, o Options) Result {
	c, hint, err := eciClient(o)
	if err != nil {
		return Result{Name: CheckECIPermissions, Status: Fail, Message: err.Error(), Fix: hint}
	}
	var missing, optional, unknown []string
	for _, a := range eci.ControllerActions {
		err := c.Probe(ctx, a.Action)
		if _, refused := eci.PermissionDenied(err); refused {
			if a.Required {
				missing = append(missing, fmt.Sprintf("eci:%s (%s)", a.Action, a.Use))
			} else {
				optional = append(optional, "eci:"+a.Action)
			}
			continue
		}
		if err != nil && (eci.KeyRefused(err) || eci.NoAnswer(err) || eci.ClassOf(err) == eci.ClassThrottled) {
			unknown = append(unknown, fmt.Sprintf("eci:%s (%v)", a.Action, err))
		}
	}
	fix := "Allow these actions in the RAM policy of the AccessKey, or grant AliyunECIFullAccess. The minimal policy:\n" + eci.MinimalPolicy()
	switch {
	case len(missing) > 0:
		return Result{Name: CheckECIPermissions, Status: Fail,
			Message: "the RAM policy of AccessKey " + maskKey(o.AccessKeyID) + " does not allow: " + strings.Join(append(missing, optional...), ", "),
			Fix:     fix}
	case len(unknown) > 0:
		return Result{Name: CheckECIPermissions, Status: Fail,
			Message: "could not probe: " + strings.Join(unknown, ", "), Fix: "Retry in a minute; check the AccessKey and the endpoint."}
	case len(optional) > 0:
		return Result{Name: CheckECIPermissions, Status: Pass,
			Message: fmt.Sprintf("every action the controller needs is allowed; %s is not (the documented policy lacks it): pod status is polled with DescribeContainerGroups instead, adding it saves API calls",
				strings.Join(optional, ", "))}
	}
	return Result{Name: CheckECIPermissions, Status: Pass, Message: fmt.Sprintf("all %d ECI actions the controller uses are allowed", len(eci.ControllerActions))}
}
