package translate

import (
	"fmt"
	"strings"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// buildSecurity maps container c's security context, merged with the
// pod's as the kubelet merges them (runAsUser, runAsGroup and runAsNonRoot
// come from the pod unless the container sets them). init says it becomes
// an InitContainer.N, which takes only the nested SecurityContext.*
// parameters, not the flat SecurityContextPrivileged/RunAsGroup/
// RunAsNonRoot of Container.N.
//
// What the published API cannot express is never sent. It is:
//   - refused where the pod would otherwise fail in a way that is hard to
//     trace, or run what Kubernetes itself would refuse to run: a
//     privileged init container (whatever needs the privileges would fail
//     inside it), runAsNonRoot with runAsUser 0;
//   - ignored with a warning where it is hardening whose loss gives the
//     pod's processes nothing beyond the pod's own sandbox: every ECI pod
//     is a dedicated VM, so capabilities.drop and allowPrivilegeEscalation
//     false guard no node and no other pod, and refusing them would refuse
//     every pod of the "restricted" Pod Security Standard, which requires
//     both; seccomp, AppArmor and SELinux profiles likewise; runAsGroup
//     and an unverifiable runAsNonRoot on init containers only, for the
//     same reason (regular containers send both).
func buildSecurity(pod *corev1.Pod, c *corev1.Container, field string, init bool, out *eci.Container, ign *adaptations) error {
	psc := pod.Spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	sc := c.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	runAsUser := firstSet(sc.RunAsUser, psc.RunAsUser)
	runAsGroup := firstSet(sc.RunAsGroup, psc.RunAsGroup)
	nonRoot := ptr.Deref(firstSet(sc.RunAsNonRoot, psc.RunAsNonRoot), false)
	privileged := ptr.Deref(sc.Privileged, false)
	f := field + ".securityContext"
	where := field + " " + c.Name

	if nonRoot && runAsUser != nil && *runAsUser == 0 {
		return &InvalidPodError{Field: f + ".runAsNonRoot", Reason: "is true but runAsUser is 0 (root), so Kubernetes would not start the container either",
			Fix: "set runAsUser to a non-zero UID or remove runAsNonRoot"}
	}
	ecs := &eci.ContainerSecurityContext{RunAsUser: runAsUser, ReadOnlyRootFilesystem: ptr.Deref(sc.ReadOnlyRootFilesystem, false)}
	if sc.Capabilities != nil {
		for _, cp := range sc.Capabilities.Add {
			ecs.CapabilityAdd = append(ecs.CapabilityAdd, string(cp))
		}
		if d := sc.Capabilities.Drop; len(d) > 0 {
			ign.add(fmt.Sprintf("securityContext.capabilities.drop %v is not supported by ECI (no published parameter) and was ignored: the container keeps the runtime's default capabilities", d), where)
		}
	}
	if sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
		ign.add("securityContext.allowPrivilegeEscalation false is not supported by ECI (no published parameter) and was ignored: processes can gain privileges through setuid files", where)
	}
	// Confinement profiles have no parameter either; ECI's runtime applies
	// its own. Not refused, for the reasons above (and RuntimeDefault is
	// required by the "restricted" standard).
	if sp := firstSet(sc.SeccompProfile, psc.SeccompProfile); sp != nil {
		ign.add(fmt.Sprintf("securityContext.seccompProfile %s is not supported by ECI (no published parameter) and was ignored: the container runs with the seccomp profile of ECI's runtime", sp.Type), where)
	}
	if ap := firstSet(sc.AppArmorProfile, psc.AppArmorProfile); ap != nil {
		ign.add(fmt.Sprintf("securityContext.appArmorProfile %s is not supported by ECI (no published parameter) and was ignored: the container runs with the AppArmor profile of ECI's runtime", ap.Type), where)
	}
	if firstSet(sc.SELinuxOptions, psc.SELinuxOptions) != nil {
		ign.add("securityContext.seLinuxOptions is not supported by ECI (no published parameter) and was ignored: the container gets the SELinux label of ECI's runtime", where)
	}
	if init {
		if privileged {
			return &InvalidPodError{Field: f + ".privileged", Reason: "ECI cannot run init containers privileged (InitContainer.N has no SecurityContextPrivileged)",
				Fix: "do the privileged work in a regular container, or set namespaced kernel parameters with spec.securityContext.sysctls"}
		}
		if runAsGroup != nil {
			ign.add(fmt.Sprintf("runAsGroup %d is not supported for ECI init containers (InitContainer.N has no SecurityContextRunAsGroup) and was ignored: the init container runs with its image's group", *runAsGroup), where)
		}
		if nonRoot && runAsUser == nil {
			ign.add("runAsNonRoot cannot be checked for ECI init containers (InitContainer.N has no SecurityContextRunAsNonRoot) and was ignored: the init container runs as its image's user, which may be root; set runAsUser to a non-zero UID to be sure", where)
		}
	} else {
		out.Privileged = privileged
		out.RunAsGroup = runAsGroup
		out.RunAsNonRoot = nonRoot
	}
	if ecs.RunAsUser != nil || ecs.ReadOnlyRootFilesystem || len(ecs.CapabilityAdd) > 0 {
		out.SecurityContext = ecs
	}
	return nil
}

func firstSet[T any](v ...*T) *T {
	for _, p := range v {
		if p != nil {
			return p
		}
	}
	return nil
}

// podSecurity maps the pod-level security context's own fields (the
// per-container ones are merged by buildSecurity): sysctls, split as the
// published API wants them, and warnings for fsGroup and
// supplementalGroups, which have no parameter. Those two only ever grant
// access: without them the pod's processes can reach less, never more, so
// they are ignored with a warning rather than refused.
func podSecurity(pod *corev1.Pod, req *eci.CreateContainerGroupRequest, ign *adaptations) error {
	sc := pod.Spec.SecurityContext
	if sc == nil {
		return nil
	}
	if g := sc.FSGroup; g != nil {
		ign.add(fmt.Sprintf("spec.securityContext.fsGroup %d is not supported by ECI (no published parameter) and was ignored: files in volumes keep their owner, and the containers' processes do not get group %d", *g, *g), "")
	}
	if g := sc.SupplementalGroups; len(g) > 0 {
		ign.add(fmt.Sprintf("spec.securityContext.supplementalGroups %v is not supported by ECI (no published parameter) and was ignored: the containers' processes get only the groups their user has in the image", g), "")
	}
	for i, s := range sc.Sysctls {
		name := sysctlName(s.Name)
		host, ok := hostSysctl(name)
		if !ok {
			return &InvalidPodError{Field: fmt.Sprintf("spec.securityContext.sysctls[%d] (%s)", i, s.Name),
				Reason: "is not a sysctl ECI can set: it takes kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.* and net.* (namespaced sysctls only)",
				Fix:    "remove it; node-wide kernel parameters cannot be set from a pod"}
		}
		if host {
			req.HostSysctls = append(req.HostSysctls, eci.Sysctl{Name: name, Value: s.Value})
		} else {
			req.Sysctls = append(req.Sysctls, eci.Sysctl{Name: name, Value: s.Value})
		}
	}
	return nil
}

// safeSysctls are the sysctls the published API takes in
// SecurityContext.Sysctl.N: those its HostSecurityContext.Sysctl.N
// description excepts from the unsafe groups. This is ECI's list, not
// Kubernetes' safe set: Kubernetes also counts e.g.
// net.ipv4.ip_local_port_range safe, which ECI takes as a host sysctl.
var safeSysctls = map[string]bool{
	"kernel.shm_rmid_forced":              true,
	"net.ipv4.tcp_syncookies":             true,
	"net.ipv4.ping_group_range":           true,
	"net.ipv4.ip_unprivileged_port_start": true,
}

// hostSysctl says where sysctl name goes: HostSecurityContext.Sysctl.N
// (host true) for the unsafe groups of the published API, kernel.shm*,
// kernel.msg*, kernel.sem, fs.mqueue.* and net.*, or SecurityContext.Sysctl.N
// for the safe ones; ok is false for a sysctl neither takes.
func hostSysctl(name string) (host, ok bool) {
	if safeSysctls[name] {
		return false, true
	}
	for _, p := range []string{"kernel.shm", "kernel.msg", "fs.mqueue.", "net."} {
		if strings.HasPrefix(name, p) {
			return true, true
		}
	}
	return name == "kernel.sem", name == "kernel.sem"
}

// sysctlName writes a sysctl name with '.' separators, as ECI's lists do;
// Kubernetes also accepts '/' as the separator, with '.' then allowed
// inside a segment (net/ipv4/conf/eth0.100/forwarding).
func sysctlName(name string) string {
	if !strings.Contains(name, "/") {
		return name
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '/':
			return '.'
		case '.':
			return '/'
		}
		return r
	}, name)
}
