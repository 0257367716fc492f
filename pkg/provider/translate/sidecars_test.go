package translate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// eciSettings are the ECI container settings (sidecars.go) a container
// carries, by variable.
func eciSettings(c eci.Container) map[string]string {
	out := map[string]string{}
	for _, e := range c.EnvironmentVars {
		if strings.HasPrefix(e.Key, "ECI_CONTAINER_") {
			out[e.Key] = e.Value
		}
	}
	return out
}

// priority is the container's launch or exit priority as ECI reads it:
// the variable's value, 0 when it is not set.
func priority(t *testing.T, c eci.Container, key string) int {
	t.Helper()
	v, ok := eciSettings(c)[key]
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < -maxPriority || n > maxPriority {
		t.Fatalf("%s %s=%q is not an ECI priority (-1000 to 1000)", c.Name, key, v)
	}
	return n
}

// TestNativeSidecars: native sidecars run as the group's first regular
// containers with ECI's documented sidecar settings, which reproduce
// Kubernetes' order: kube-proxy, then the sidecars in their declared
// order, then the app containers start, each group strictly before the
// next (launch priority); they exit in the reverse order (exit priority);
// the pod's own settings are kept; a pod that must complete is accepted.
func TestNativeSidecars(t *testing.T) {
	withLimits := func(c *corev1.Container) {
		c.Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("1Gi")}
	}
	settings := func(launch, exit int) map[string]string {
		return map[string]string{EnvContainerType: ContainerTypeSidecar, EnvIgnoreExitCode: "true",
			EnvLaunchPriority: strconv.Itoa(launch), EnvExitPriority: strconv.Itoa(exit)}
	}
	cases := []struct {
		name string
		// tl is the translator (default testTranslator, without kube-proxy).
		tl      func(t *testing.T) *Translator
		pod     func(*corev1.Pod)
		wantErr string
		// wantInit and wantContainers are the request's containers in order.
		wantInit, wantContainers []string
		// wantSettings are the ECI settings of containers, all of them.
		wantSettings map[string]map[string]string
		// sidecars names the pod's sidecars in declared order: the order
		// check expects kube-proxy (when in the request), then these, then
		// the app containers.
		sidecars []string
		wantNote []string
		noNote   []string
		check    func(t *testing.T, tr *Translation)
	}{
		{
			name: "sidecars become the first containers, in their order before the app, ordinary init containers stay, the group is sized with them",
			pod: func(p *corev1.Pod) {
				p.Spec.RestartPolicy = corev1.RestartPolicyAlways
				p.Spec.InitContainers = []corev1.Container{initC("first", nil), sidecar("proxy", withLimits), initC("after", nil), sidecar("logs", nil)}
			},
			wantInit:       []string{"first", "after"},
			wantContainers: []string{"proxy", "logs", "app"},
			wantSettings:   map[string]map[string]string{"proxy": settings(999, -999), "logs": settings(998, -998), "app": {}},
			sidecars:       []string{"proxy", "logs"},
			wantNote: []string{"native sidecars spec.initContainers[1] (proxy), spec.initContainers[3] (logs): ECI has no init containers that keep running, so they run as regular containers of the group, after all init containers (also those declared after them) instead of before them.",
				"ECI starts them in their order before the app containers (ECI_CONTAINER_LAUNCH_PRIORITY) and, once the app containers have exited for good, stops them with their exit codes ignored",
				"They exit after the app containers, in reverse order, when the pod stops (ECI_CONTAINER_EXIT_PRIORITY)",
				"where Kubernetes waits for their startup probes."},
			noNote: []string{"restarted", "kept"},
			check: func(t *testing.T, tr *Translation) {
				if r := tr.Req; r.Cpu != 1.5 || r.Memory != 3 {
					t.Errorf("group cpu %v memory %v, want the app's 1/2 plus the sidecar's 0.5/1", r.Cpu, r.Memory)
				}
				for _, c := range tr.Req.InitContainers {
					for _, e := range c.EnvironmentVars {
						if strings.HasPrefix(e.Key, "ECI_CONTAINER_") {
							t.Errorf("ordinary init container %s got %s", c.Name, e.Key)
						}
					}
				}
			},
		},
		{
			name: "one sidecar in a Job's pod (Never) is accepted: ECI stops it after the app, and the note says it is not restarted",
			pod: func(p *corev1.Pod) {
				p.Spec.InitContainers = []corev1.Container{sidecar("proxy", nil)}
			},
			wantContainers: []string{"proxy", "app"},
			wantSettings:   map[string]map[string]string{"proxy": settings(999, -999), "app": {}},
			sidecars:       []string{"proxy"},
			wantNote: []string{"native sidecar spec.initContainers[0] (proxy): ECI has no init containers that keep running, so it runs as a regular container of the group",
				"once they have exited for good, stops it with its exit code ignored, so a pod that must complete does (ECI_CONTAINER_TYPE=sidecar, ECI_CONTAINER_IGNORE_EXIT_CODE=true)",
				"The app containers wait for its readiness probe if it has one, where Kubernetes waits for its startup probe.",
				"It is not restarted when it exits, as the pod's restartPolicy is Never, where Kubernetes restarts a sidecar whenever it exits."},
			check: func(t *testing.T, tr *Translation) {
				if tr.Req.RestartPolicy != "Never" {
					t.Errorf("RestartPolicy %q, want the pod's Never", tr.Req.RestartPolicy)
				}
			},
		},
		{
			name: "sidecars in an OnFailure pod are accepted; the note says they restart only when they fail",
			pod: func(p *corev1.Pod) {
				p.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
				p.Spec.InitContainers = []corev1.Container{sidecar("a", nil), sidecar("b", nil), sidecar("c", nil)}
			},
			wantContainers: []string{"a", "b", "c", "app"},
			wantSettings:   map[string]map[string]string{"a": settings(999, -999), "b": settings(998, -998), "c": settings(997, -997), "app": {}},
			sidecars:       []string{"a", "b", "c"},
			wantNote:       []string{"They are restarted only when they fail, as the pod's restartPolicy is OnFailure"},
		},
		{
			name: "the pod's own settings (env and envFrom) are kept, the others added, and the note names them without their values",
			tl: func(t *testing.T) *Translator {
				return testTranslator(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "eci"},
					Data: map[string]string{EnvContainerType: "normal"}})
			},
			pod: func(p *corev1.Pod) {
				p.Spec.RestartPolicy = corev1.RestartPolicyAlways
				p.Spec.InitContainers = []corev1.Container{
					sidecar("proxy", func(c *corev1.Container) {
						c.Env = []corev1.EnvVar{{Name: "Z", Value: "last"}, {Name: EnvLaunchPriority, Value: "7"}}
						c.EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "eci"}}}}
					}),
					sidecar("logs", nil),
				}
			},
			wantContainers: []string{"proxy", "logs", "app"},
			wantSettings: map[string]map[string]string{
				"proxy": {EnvContainerType: "normal", EnvIgnoreExitCode: "true", EnvLaunchPriority: "7", EnvExitPriority: "-999"},
				"logs":  settings(998, -998), "app": {}},
			wantNote: []string{"the pod's own ECI container settings are kept, and ECI orders, stops and ends these sidecars as they say instead: spec.initContainers[0] (proxy) sets ECI_CONTAINER_TYPE (the virtual node would set sidecar), ECI_CONTAINER_LAUNCH_PRIORITY (the virtual node would set 999) itself"},
			noNote:   []string{"normal", "=7", "logs) sets"},
			check: func(t *testing.T, tr *Translation) {
				env := tr.Req.Containers[0].EnvironmentVars
				var keys []string
				for _, e := range env {
					keys = append(keys, e.Key)
				}
				if !slices.IsSorted(keys) || len(slices.Compact(slices.Clone(keys))) != len(keys) {
					t.Errorf("env keys %q, want sorted without repeats (the same pod must always send the same parameters)", keys)
				}
				if !slices.Contains(keys, "Z") {
					t.Errorf("env keys %q lost the pod's own Z", keys)
				}
			},
		},
		{
			name: "with kube-proxy: kube-proxy starts first and exits last, the sidecars right after and before it",
			tl: func(t *testing.T) *Translator {
				tl, _ := kubeProxyTranslator(t, true, nil)
				return tl
			},
			pod: func(p *corev1.Pod) {
				p.Spec.InitContainers = []corev1.Container{sidecar("proxy", nil), sidecar("logs", nil)}
				p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "second", Image: "busybox"})
			},
			wantContainers: []string{"proxy", "logs", "app", "second", KubeProxyContainer},
			wantSettings: map[string]map[string]string{"proxy": settings(999, -999), "logs": settings(998, -998), "app": {}, "second": {},
				KubeProxyContainer: settings(1000, -1000)},
			sidecars: []string{"proxy", "logs"},
		},
		{
			name: "sidecars that would exceed ECI's container limit are refused",
			pod: func(p *corev1.Pod) {
				p.Spec.RestartPolicy = corev1.RestartPolicyAlways
				for i := 0; i < 19; i++ {
					p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: fmt.Sprintf("c%d", i), Image: "busybox"})
				}
				p.Spec.InitContainers = []corev1.Container{sidecar("proxy", nil)}
			},
			wantErr: "the pod would have 21 of them; ECI allows at most 20",
		},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			tl := testTranslator(t)
			if tt.tl != nil {
				tl = tt.tl(t)
			}
			tr, err := tl.build(context.Background(), testPod(tt.pod))
			if tt.wantErr != "" {
				var inv *InvalidPodError
				if err == nil || !errors.As(err, &inv) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want an InvalidPodError containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			r := tr.Req
			var inits, ctrs []string
			for _, c := range r.InitContainers {
				inits = append(inits, c.Name)
			}
			byName := map[string]eci.Container{}
			for _, c := range r.Containers {
				ctrs = append(ctrs, c.Name)
				byName[c.Name] = c
			}
			if !slices.Equal(inits, tt.wantInit) || !slices.Equal(ctrs, tt.wantContainers) {
				t.Errorf("init containers %q containers %q, want %q and %q", inits, ctrs, tt.wantInit, tt.wantContainers)
			}
			for name, want := range tt.wantSettings {
				if got := eciSettings(byName[name]); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s ECI settings %v, want %v", name, got, want)
				}
			}
			if len(tt.sidecars) > 0 {
				checkOrder(t, r, tt.sidecars)
			}
			notes := strings.Join(tr.Notes, "\n")
			for _, n := range tt.wantNote {
				if !strings.Contains(notes, n) {
					t.Errorf("notes %q lack %q", tr.Notes, n)
				}
			}
			for _, n := range tt.noNote {
				if strings.Contains(notes, n) {
					t.Errorf("notes %q must not contain %q", tr.Notes, n)
				}
			}
			if tt.check != nil {
				tt.check(t, tr)
			}
		})
	}
}

// checkOrder checks that ECI, reading the priorities, starts kube-proxy
// (if the request has it), then each sidecar in the declared order, then
// the app containers, each strictly before the next (a higher launch
// priority), and stops them in the reverse order (the app containers
// first: a higher exit priority exits earlier).
func checkOrder(t *testing.T, r *eci.CreateContainerGroupRequest, sidecars []string) {
	t.Helper()
	var tiers [][]eci.Container
	byName := map[string]eci.Container{}
	var apps []eci.Container
	for _, c := range r.Containers {
		byName[c.Name] = c
		if c.Name != KubeProxyContainer && !slices.Contains(sidecars, c.Name) {
			apps = append(apps, c)
		}
	}
	if kp, ok := byName[KubeProxyContainer]; ok {
		tiers = append(tiers, []eci.Container{kp})
	}
	for _, s := range sidecars {
		tiers = append(tiers, []eci.Container{byName[s]})
	}
	tiers = append(tiers, apps)
	for i := 1; i < len(tiers); i++ {
		for _, before := range tiers[i-1] {
			for _, after := range tiers[i] {
				if lb, la := priority(t, before, EnvLaunchPriority), priority(t, after, EnvLaunchPriority); lb <= la {
					t.Errorf("%s launch priority %d is not above %s's %d: it must start first", before.Name, lb, after.Name, la)
				}
				if eb, ea := priority(t, before, EnvExitPriority), priority(t, after, EnvExitPriority); eb >= ea {
					t.Errorf("%s exit priority %d is not below %s's %d: it must exit after it", before.Name, eb, after.Name, ea)
				}
			}
		}
	}
}
