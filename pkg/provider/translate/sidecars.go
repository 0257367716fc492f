package translate

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	corev1 "k8s.io/api/core/v1"
)

// The container settings ECI documents as environment variables of a
// container ("Forcibly terminate the sidecar container and ignore the
// container exit code", "Configure the startup and exit priorities of
// containers"):
//   - ECI_CONTAINER_TYPE=sidecar: once the other containers have exited
//     and will not restart, ECI stops the container, so a Job's pod ends;
//   - ECI_CONTAINER_IGNORE_EXIT_CODE=true: its exit code (that of the
//     forced stop included) counts as success;
//   - ECI_CONTAINER_LAUNCH_PRIORITY: -1000 to 1000, default 0; a container
//     starts before every container of lower priority, and when it has a
//     readiness probe, those start only once it is ready;
//   - ECI_CONTAINER_EXIT_PRIORITY: -1000 to 1000, default 0; a container
//     exits before every container of lower priority.
const (
	EnvContainerType     = "ECI_CONTAINER_TYPE"
	ContainerTypeSidecar = "sidecar"
	EnvIgnoreExitCode    = "ECI_CONTAINER_IGNORE_EXIT_CODE"
	EnvLaunchPriority    = "ECI_CONTAINER_LAUNCH_PRIORITY"
	EnvExitPriority      = "ECI_CONTAINER_EXIT_PRIORITY"

	// maxPriority is the highest launch and exit priority ECI takes; the
	// hidden kube-proxy starts with it and exits with its opposite, so it
	// is the first to start and the last to exit.
	maxPriority = 1000
)

// SidecarLaunchPriority is the ECI_CONTAINER_LAUNCH_PRIORITY of the i-th
// native sidecar of a pod (0: the first declared): below kube-proxy's,
// decreasing in the declared order, and far above the app containers'
// default 0, so app containers the user orders among themselves with
// small priorities still start after every sidecar.
func SidecarLaunchPriority(i int) int { return maxPriority - 1 - i }

// SidecarExitPriority is the ECI_CONTAINER_EXIT_PRIORITY of the i-th
// native sidecar: below the app containers' default 0, so sidecars exit
// after them, increasing in the declared order, so they exit in reverse
// order as Kubernetes stops them, and above kube-proxy's, which exits last.
func SidecarExitPriority(i int) int { return -maxPriority + 1 + i }

// groupContainers is how many regular containers the pod's group has: its
// containers and its native sidecars, which ECI runs as regular containers.
func groupContainers(pod *corev1.Pod) int {
	n := len(pod.Spec.Containers)
	for i := range pod.Spec.InitContainers {
		if IsSidecar(&pod.Spec.InitContainers[i]) {
			n++
		}
	}
	return n
}

// checkSidecars refuses a pod whose native sidecars, which ECI runs as
// regular containers, would take it past ECI's container limit.
func checkSidecars(pod *corev1.Pod) error {
	if n := groupContainers(pod); n > maxContainers {
		return &InvalidPodError{Field: "spec.initContainers", Reason: fmt.Sprintf("ECI runs native sidecars as regular containers, and the pod would have %d of them; ECI allows at most %d", n, maxContainers),
			Fix: "split the pod"}
	}
	return nil
}

// markSidecars gives each native sidecar, once its environment is
// resolved, the settings with which ECI runs it as Kubernetes runs a
// sidecar: ECI_CONTAINER_TYPE=sidecar and ECI_CONTAINER_IGNORE_EXIT_CODE
// =true, so a pod that must complete (a Job's) does, and succeeds, once
// its app containers have; launch priorities that start the sidecars in
// their declared order before the app containers; exit priorities that
// stop them after the app containers, in reverse order. A variable the
// pod sets itself (env or envFrom) is kept, and a note says so.
//
// A note states what still differs from Kubernetes: the sidecars are
// regular containers of the group, started after every ordinary init
// container (also those declared after them); ECI waits for a sidecar's
// readiness probe before starting the next container, where Kubernetes
// waits for its startup probe; and they restart as the pod's
// restartPolicy says, not always.
func markSidecars(pod *corev1.Pod, slots []containerSlot, tr *Translation) {
	var names, kept []string
	k := 0
	for i := range slots {
		sl := &slots[i]
		if !sl.sidecar {
			continue
		}
		names = append(names, fmt.Sprintf("%s (%s)", sl.field, sl.spec.Name))
		want := []eci.EnvVar{
			{Key: EnvContainerType, Value: ContainerTypeSidecar},
			{Key: EnvIgnoreExitCode, Value: "true"},
			{Key: EnvLaunchPriority, Value: strconv.Itoa(SidecarLaunchPriority(k))},
			{Key: EnvExitPriority, Value: strconv.Itoa(SidecarExitPriority(k))},
		}
		k++
		have := map[string]bool{}
		for _, e := range sl.out.EnvironmentVars {
			have[e.Key] = true
		}
		var own []string
		for _, e := range want {
			if have[e.Key] {
				// The pod's value is not repeated: it may come from a
				// Secret.
				own = append(own, fmt.Sprintf("%s (the virtual node would set %s)", e.Key, e.Value))
				continue
			}
			sl.out.EnvironmentVars = append(sl.out.EnvironmentVars, e)
		}
		// Sorted as resolveEnv sorts, so the same pod always sends the
		// same parameters.
		sort.SliceStable(sl.out.EnvironmentVars, func(a, b int) bool {
			return sl.out.EnvironmentVars[a].Key < sl.out.EnvironmentVars[b].Key
		})
		if len(own) > 0 {
			kept = append(kept, fmt.Sprintf("%s (%s) sets %s itself", sl.field, sl.spec.Name, strings.Join(own, ", ")))
		}
	}
	if len(names) == 0 {
		return
	}
	one, many := "", ""
	switch pod.Spec.RestartPolicy {
	case corev1.RestartPolicyNever:
		one = " It is not restarted when it exits, as the pod's restartPolicy is Never, where Kubernetes restarts a sidecar whenever it exits."
		many = " They are not restarted when they exit, as the pod's restartPolicy is Never, where Kubernetes restarts a sidecar whenever it exits."
	case corev1.RestartPolicyOnFailure:
		one = " It is restarted only when it fails, as the pod's restartPolicy is OnFailure, where Kubernetes restarts a sidecar whenever it exits."
		many = " They are restarted only when they fail, as the pod's restartPolicy is OnFailure, where Kubernetes restarts a sidecar whenever it exits."
	}
	note := fmt.Sprintf("native sidecar %s: ECI has no init containers that keep running, so it runs as a regular container of the group,"+
		" after all init containers (also those declared after it) instead of before them."+
		" ECI starts it before the app containers (%s) and, once they have exited for good, stops it with its exit code ignored, so a pod that must complete does (%s=%s, %s=true)."+
		" It exits after them when the pod stops (%s)."+
		" The app containers wait for its readiness probe if it has one, where Kubernetes waits for its startup probe.%s",
		names[0], EnvLaunchPriority, EnvContainerType, ContainerTypeSidecar, EnvIgnoreExitCode, EnvExitPriority, one)
	if len(names) > 1 {
		note = fmt.Sprintf("native sidecars %s: ECI has no init containers that keep running, so they run as regular containers of the group,"+
			" after all init containers (also those declared after them) instead of before them."+
			" ECI starts them in their order before the app containers (%s) and, once the app containers have exited for good, stops them with their exit codes ignored, so a pod that must complete does (%s=%s, %s=true)."+
			" They exit after the app containers, in reverse order, when the pod stops (%s)."+
			" A container waits for the readiness probe of each sidecar before it that has one, where Kubernetes waits for their startup probes.%s",
			strings.Join(names, ", "), EnvLaunchPriority, EnvContainerType, ContainerTypeSidecar, EnvIgnoreExitCode, EnvExitPriority, many)
	}
	tr.Notes = append(tr.Notes, note)
	if len(kept) > 0 {
		tr.Notes = append(tr.Notes, "the pod's own ECI container settings are kept, and ECI orders, stops and ends these sidecars as they say instead: "+strings.Join(kept, " and "))
	}
}
