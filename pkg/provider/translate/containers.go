package translate

import (
	"fmt"
	"strings"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	corev1 "k8s.io/api/core/v1"
)

// containerSlot is one container of the pod on its way into the request.
type containerSlot struct {
	spec  *corev1.Container
	field string // the pod field it comes from, e.g. spec.initContainers[0]
	// init says it is an ordinary init container (InitContainer.N); native
	// sidecars and app containers become Container.N.
	init bool
	// sidecar says it is a native sidecar (IsSidecar).
	sidecar bool
	out     eci.Container
}

// IsSidecar reports whether init container c is a native sidecar (an init
// container with restartPolicy Always, which keeps running beside the app
// containers).
func IsSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// buildContainers maps the pod's containers, init containers first, each
// checked before the cluster is read. Native sidecars become regular
// containers (see sidecars.go); place puts them into the request.
func buildContainers(pod *corev1.Pod, tr *Translation) ([]containerSlot, error) {
	var slots []containerSlot
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		slots = append(slots, containerSlot{spec: c, field: fmt.Sprintf("spec.initContainers[%d]", i), init: !IsSidecar(c), sidecar: IsSidecar(c)})
	}
	for i := range pod.Spec.Containers {
		slots = append(slots, containerSlot{spec: &pod.Spec.Containers[i], field: fmt.Sprintf("spec.containers[%d]", i)})
	}
	if err := checkSidecars(pod); err != nil {
		return nil, err
	}
	ign := &adaptations{}
	for i := range slots {
		sl := &slots[i]
		if sl.init {
			if err := checkInitContainer(sl.spec, sl.field, ign); err != nil {
				return nil, err
			}
		}
		c, notes, err := buildContainer(sl.spec, sl.field)
		if err != nil {
			return nil, err
		}
		if err := buildSecurity(pod, sl.spec, sl.field, sl.init, &c, ign); err != nil {
			return nil, err
		}
		if err := checkEnv(pod, sl.spec, sl.field); err != nil {
			return nil, err
		}
		tr.Notes = append(tr.Notes, notes...)
		sl.out = c
	}
	if err := podSecurity(pod, tr.Req, ign); err != nil {
		return nil, err
	}
	tr.Warnings = append(tr.Warnings, ign.list()...)
	return slots, nil
}

// place puts the containers into the request: the ordinary init
// containers as InitContainer.N in their order; then, as Container.N, the
// native sidecars in their order, then the app containers.
func place(slots []containerSlot, req *eci.CreateContainerGroupRequest) {
	for _, sl := range slots {
		if sl.init {
			req.InitContainers = append(req.InitContainers, initContainer(sl.out))
		} else {
			req.Containers = append(req.Containers, sl.out)
		}
	}
}

// initContainer keeps what InitContainer.N can carry. checkInitContainer
// has refused or reported every other field the pod set.
func initContainer(c eci.Container) eci.InitContainer {
	return eci.InitContainer{
		Name: c.Name, Image: c.Image, Cpu: c.Cpu, Memory: c.Memory, Gpu: c.Gpu, WorkingDir: c.WorkingDir,
		ImagePullPolicy: c.ImagePullPolicy, Commands: c.Commands, Args: c.Args, Ports: c.Ports,
		EnvironmentVars: c.EnvironmentVars, VolumeMounts: c.VolumeMounts, SecurityContext: c.SecurityContext,
		TerminationMessagePath: c.TerminationMessagePath, TerminationMessagePolicy: c.TerminationMessagePolicy,
	}
}

// checkInitContainer refuses or reports what an ordinary init container
// sets that InitContainer.N has no parameter for: probes and lifecycle
// hooks (which the apiserver already forbids on ordinary init containers,
// so only a pod built around it has them), and stdin/tty, which are
// dropped with a warning: nothing else about the container depends on
// them, and a program reading stdin then reads end-of-file instead of
// waiting for an attach that ECI could not give it anyway.
func checkInitContainer(c *corev1.Container, field string, ign *adaptations) error {
	switch {
	case c.ReadinessProbe != nil || c.LivenessProbe != nil || c.StartupProbe != nil:
		return &InvalidPodError{Field: field, Reason: "ECI init containers have no probes (InitContainer.N defines none)",
			Fix: "remove the probes, or make it a native sidecar (restartPolicy: Always)"}
	case c.Lifecycle != nil:
		return &InvalidPodError{Field: field + ".lifecycle", Reason: "ECI init containers have no lifecycle hooks (InitContainer.N defines none)",
			Fix: "run the hook's command in the container's own command"}
	}
	var set []string
	for _, f := range []struct {
		name string
		on   bool
	}{{"stdin", c.Stdin}, {"stdinOnce", c.StdinOnce}, {"tty", c.TTY}} {
		if f.on {
			set = append(set, f.name)
		}
	}
	if len(set) > 0 {
		ign.add(strings.Join(set, "/")+" is not supported for ECI init containers (InitContainer.N has no Stdin, StdinOnce or Tty) and was ignored: the init container gets no terminal, and its standard input is empty",
			fmt.Sprintf("%s %s", field, c.Name))
	}
	return nil
}

// adaptations collects the pod fields left out, each message once with
// the places it applies to, so that a pod gets one event however many
// containers share a setting.
type adaptations struct {
	order []string
	where map[string][]string
}

func (a *adaptations) add(msg, where string) {
	if a.where == nil {
		a.where = map[string][]string{}
	}
	if _, ok := a.where[msg]; !ok {
		a.order = append(a.order, msg)
	}
	if where != "" {
		a.where[msg] = append(a.where[msg], where)
	}
}

// list returns the messages in the order first seen, each followed by
// where it applies (in pod order).
func (a *adaptations) list() []string {
	out := make([]string, 0, len(a.order))
	for _, m := range a.order {
		w := a.where[m]
		if len(w) == 0 {
			out = append(out, m)
			continue
		}
		out = append(out, fmt.Sprintf("%s (%s)", m, strings.Join(w, ", ")))
	}
	return out
}
