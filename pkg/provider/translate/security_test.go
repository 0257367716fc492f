package translate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// specCase is one pod to translate: either refused with an error naming
// wantErr, or translated, with wantWarn/wantNote found among the warnings
// and notes, noWarn absent from them, and check passing.
type specCase struct {
	name     string
	pod      func(*corev1.Pod)
	wantErr  string
	wantWarn []string
	noWarn   []string
	wantNote []string
	check    func(t *testing.T, r *eci.CreateContainerGroupRequest)
}

func runSpecCases(t *testing.T, cases []specCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := testTranslator(t).build(context.Background(), testPod(tt.pod))
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
			warnings, notes := strings.Join(tr.Warnings, "\n"), strings.Join(tr.Notes, "\n")
			for _, w := range tt.wantWarn {
				if !strings.Contains(warnings, w) {
					t.Errorf("warnings %q lack %q", tr.Warnings, w)
				}
			}
			for _, w := range tt.noWarn {
				if strings.Contains(warnings, w) {
					t.Errorf("warnings %q must not contain %q", tr.Warnings, w)
				}
			}
			for _, n := range tt.wantNote {
				if !strings.Contains(notes, n) {
					t.Errorf("notes %q lack %q", tr.Notes, n)
				}
			}
			if tt.check != nil {
				tt.check(t, tr.Req)
			}
		})
	}
}

func initC(name string, mut func(*corev1.Container)) corev1.Container {
	c := corev1.Container{Name: name, Image: "busybox", Command: []string{"sh", "-c", "true"}}
	if mut != nil {
		mut(&c)
	}
	return c
}

func sidecar(name string, mut func(*corev1.Container)) corev1.Container {
	return initC(name, func(c *corev1.Container) {
		c.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
		if mut != nil {
			mut(c)
		}
	})
}

func TestInitContainerParameters(t *testing.T) {
	httpProbe := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(15021)}}}
	runSpecCases(t, []specCase{
		{
			name: "stdin and tty of an init container are dropped with a warning",
			pod: func(p *corev1.Pod) {
				p.Spec.InitContainers = []corev1.Container{initC("ask", func(c *corev1.Container) { c.Stdin, c.StdinOnce, c.TTY = true, true, true })}
			},
			wantWarn: []string{"stdin/stdinOnce/tty is not supported for ECI init containers (InitContainer.N has no Stdin, StdinOnce or Tty) and was ignored", "(spec.initContainers[0] ask)"},
			check: func(t *testing.T, r *eci.CreateContainerGroupRequest) {
				if len(r.InitContainers) != 1 || r.InitContainers[0].Name != "ask" || len(r.Containers) != 1 {
					t.Errorf("init containers %+v containers %d", r.InitContainers, len(r.Containers))
				}
			},
		},
		{
			name:   "stdin of an app container is sent, no warning",
			pod:    func(p *corev1.Pod) { p.Spec.Containers[0].Stdin, p.Spec.Containers[0].TTY = true, true },
			noWarn: []string{"stdin"},
			check: func(t *testing.T, r *eci.CreateContainerGroupRequest) {
				if c := r.Containers[0]; !c.Stdin || !c.Tty {
					t.Errorf("stdin %v tty %v, want both sent", c.Stdin, c.Tty)
				}
			},
		},
		{
			name: "probe on an ordinary init container is refused",
			pod: func(p *corev1.Pod) {
				p.Spec.InitContainers = []corev1.Container{initC("wait", func(c *corev1.Container) { c.ReadinessProbe = httpProbe })}
			},
			wantErr: "spec.initContainers[0]: ECI init containers have no probes",
		},
		{
			name: "lifecycle hook on an ordinary init container is refused",
			pod: func(p *corev1.Pod) {
				p.Spec.InitContainers = []corev1.Container{initC("wait", func(c *corev1.Container) {
					c.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}
				})}
			},
			wantErr: "spec.initContainers[0].lifecycle: ECI init containers have no lifecycle hooks",
		},
		{
			name: "a native sidecar keeps its probes, hooks and stdin as a regular container",
			pod: func(p *corev1.Pod) {
				p.Spec.RestartPolicy = corev1.RestartPolicyAlways
				p.Spec.InitContainers = []corev1.Container{sidecar("proxy", func(c *corev1.Container) {
					c.ReadinessProbe, c.Stdin = httpProbe, true
					c.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"drain"}}}}
				})}
			},
			noWarn: []string{"stdin"},
			check: func(t *testing.T, r *eci.CreateContainerGroupRequest) {
				if len(r.InitContainers) != 0 {
					t.Fatalf("init containers = %+v, want the sidecar among the containers", r.InitContainers)
				}
				c := r.Containers[0]
				if c.Name != "proxy" || c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGetPort != 15021 || !c.Stdin || len(c.PreStopExec) != 1 {
					t.Errorf("sidecar container = %+v", c)
				}
			},
		},
	})
}

func TestSysctlPlacement(t *testing.T) {
	tests := []struct {
		name, want string // want: "safe", "host" or "" (refused)
		sent       string // the name as sent, when it differs
	}{
		{name: "net.ipv4.ping_group_range", want: "safe"},
		{name: "net.ipv4.ip_unprivileged_port_start", want: "safe"},
		{name: "net.ipv4.tcp_syncookies", want: "safe"},
		{name: "kernel.shm_rmid_forced", want: "safe"},
		{name: "net.core.somaxconn", want: "host"},
		// Kubernetes counts it safe; ECI's published list does not.
		{name: "net.ipv4.ip_local_port_range", want: "host"},
		{name: "kernel.shmmax", want: "host"},
		{name: "kernel.msgmax", want: "host"},
		{name: "kernel.sem", want: "host"},
		{name: "fs.mqueue.msg_max", want: "host"},
		{name: "net/ipv4/conf/eth0.100/forwarding", want: "host", sent: "net.ipv4.conf.eth0/100.forwarding"},
		{name: "kernel/shm_rmid_forced", want: "safe", sent: "kernel.shm_rmid_forced"},
		{name: "vm.max_map_count"},
		{name: "kernel.semx"},
		{name: "kernel.pid_max"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := testPod(func(p *corev1.Pod) {
				p.Spec.SecurityContext = &corev1.PodSecurityContext{Sysctls: []corev1.Sysctl{{Name: tt.name, Value: "1"}}}
			})
			tr, err := testTranslator(t).build(context.Background(), pod)
			if tt.want == "" {
				want := fmt.Sprintf("spec.securityContext.sysctls[0] (%s): is not a sysctl ECI can set", tt.name)
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("err = %v, want %q", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			sent := tt.name
			if tt.sent != "" {
				sent = tt.sent
			}
			safe, host := tr.Req.Sysctls, tr.Req.HostSysctls
			if tt.want == "host" {
				safe, host = host, safe
			}
			if len(safe) != 1 || safe[0] != (eci.Sysctl{Name: sent, Value: "1"}) || len(host) != 0 {
				t.Errorf("SecurityContext.Sysctl %+v, HostSecurityContext.Sysctl %+v; want %s only in the %s list", tr.Req.Sysctls, tr.Req.HostSysctls, sent, tt.want)
			}
		})
	}
}

func TestSecurityContextMapping(t *testing.T) {
	group := func(p *corev1.Pod) {
		p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](1000), RunAsGroup: ptr.To[int64](3000), RunAsNonRoot: ptr.To(true)}
	}
	runSpecCases(t, []specCase{
		{
			name: "pod-level runAsUser, runAsGroup and runAsNonRoot reach every container; the container's own win",
			pod: func(p *corev1.Pod) {
				group(p)
				p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "own", Image: "busybox",
					SecurityContext: &corev1.SecurityContext{RunAsUser: ptr.To[int64](2000), RunAsGroup: ptr.To[int64](0)}})
			},
			check: func(t *testing.T, r *eci.CreateContainerGroupRequest) {
				for i, want := range [][2]int64{{1000, 3000}, {2000, 0}} {
					c := r.Containers[i]
					if c.SecurityContext == nil || *c.SecurityContext.RunAsUser != want[0] || c.RunAsGroup == nil || *c.RunAsGroup != want[1] || !c.RunAsNonRoot {
						t.Errorf("container %s: security %+v runAsGroup %v runAsNonRoot %v, want user %d group %d non-root", c.Name, c.SecurityContext, c.RunAsGroup, c.RunAsNonRoot, want[0], want[1])
					}
				}
			},
		},
		{
			name: "privileged containers are sent, no longer refused",
			pod: func(p *corev1.Pod) {
				p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
			},
			check: func(t *testing.T, r *eci.CreateContainerGroupRequest) {
				if !r.Containers[0].Privileged {
					t.Error("SecurityContextPrivileged not sent")
				}
			},
		},
		{
			name: "privileged native sidecar is sent (it is a regular container on ECI)",
			pod: func(p *corev1.Pod) {
				p.Spec.RestartPolicy = corev1.RestartPolicyAlways
				p.Spec.InitContainers = []corev1.Container{sidecar("net", func(c *corev1.Container) {
					c.SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
				})}
			},
			check: func(t *testing.T, r *eci.CreateContainerGroupRequest) {
				if r.Containers[0].Name != "net" || !r.Containers[0].Privileged {
					t.Errorf("sidecar %+v, want privileged", r.Containers[0])
				}
			},
		},
		{
			name: "privileged ordinary init container is refused",
			pod: func(p *corev1.Pod) {
				p.Spec.InitContainers = []corev1.Container{initC("tune", func(c *corev1.Container) {
					c.SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
				})}
			},
			wantErr: "spec.initContainers[0].securityContext.privileged: ECI cannot run init containers privileged",
		},
		{
			name: "runAsNonRoot with runAsUser 0 is refused",
			pod: func(p *corev1.Pod) {
				p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](0), RunAsNonRoot: ptr.To(true)}
			},
			wantErr: "spec.containers[0].securityContext.runAsNonRoot: is true but runAsUser is 0",
		},
		{
			name: "init containers get runAsUser; runAsGroup is reported, runAsNonRoot is satisfied by runAsUser",
			pod: func(p *corev1.Pod) {
				group(p)
				p.Spec.InitContainers = []corev1.Container{initC("setup", nil)}
			},
			wantWarn: []string{"runAsGroup 3000 is not supported for ECI init containers (InitContainer.N has no SecurityContextRunAsGroup) and was ignored: the init container runs with its image's group (spec.initContainers[0] setup)"},
			noWarn:   []string{"runAsNonRoot"},
			check: func(t *testing.T, r *eci.CreateContainerGroupRequest) {
				if sc := r.InitContainers[0].SecurityContext; sc == nil || *sc.RunAsUser != 1000 {
					t.Errorf("init security context %+v, want runAsUser 1000", sc)
				}
			},
		},
		{
			name: "runAsNonRoot without runAsUser cannot be checked for init containers",
			pod: func(p *corev1.Pod) {
				p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)}
				p.Spec.InitContainers = []corev1.Container{initC("setup", nil)}
			},
			wantWarn: []string{"runAsNonRoot cannot be checked for ECI init containers", "(spec.initContainers[0] setup)"},
			check: func(t *testing.T, r *eci.CreateContainerGroupRequest) {
				if !r.Containers[0].RunAsNonRoot {
					t.Error("the app container's runAsNonRoot was not sent")
				}
			},
		},
		{
			name: "capabilities.drop, allowPrivilegeEscalation false, fsGroup and supplementalGroups: one warning each, aggregated over containers",
			pod: func(p *corev1.Pod) {
				restricted := &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false),
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: []corev1.Capability{"NET_BIND_SERVICE"}}}
				p.Spec.SecurityContext = &corev1.PodSecurityContext{FSGroup: ptr.To[int64](2000), SupplementalGroups: []int64{4000, 5000}}
				p.Spec.Containers[0].SecurityContext = restricted
				p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "second", Image: "busybox", SecurityContext: restricted})
			},
			wantWarn: []string{
				"securityContext.capabilities.drop [ALL] is not supported by ECI (no published parameter) and was ignored: the container keeps the runtime's default capabilities (spec.containers[0] app, spec.containers[1] second)",
				"securityContext.allowPrivilegeEscalation false is not supported by ECI (no published parameter) and was ignored: processes can gain privileges through setuid files (spec.containers[0] app, spec.containers[1] second)",
				"spec.securityContext.fsGroup 2000 is not supported by ECI (no published parameter) and was ignored: files in volumes keep their owner",
				"spec.securityContext.supplementalGroups [4000 5000] is not supported by ECI (no published parameter) and was ignored",
			},
			check: func(t *testing.T, r *eci.CreateContainerGroupRequest) {
				if sc := r.Containers[1].SecurityContext; sc == nil || len(sc.CapabilityAdd) != 1 || sc.CapabilityAdd[0] != "NET_BIND_SERVICE" {
					t.Errorf("capabilities.add lost: %+v", sc)
				}
			},
		},
		{
			name: "seccomp, AppArmor and SELinux profiles (pod default or the container's own) are reported",
			pod: func(p *corev1.Pod) {
				p.Spec.SecurityContext = &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					SELinuxOptions: &corev1.SELinuxOptions{Level: "s0:c1"}}
				p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "own", Image: "busybox",
					SecurityContext: &corev1.SecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined},
						AppArmorProfile: &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeRuntimeDefault}}})
			},
			wantWarn: []string{
				"securityContext.seccompProfile RuntimeDefault is not supported by ECI (no published parameter) and was ignored: the container runs with the seccomp profile of ECI's runtime (spec.containers[0] app)",
				"securityContext.seccompProfile Unconfined is not supported by ECI (no published parameter) and was ignored: the container runs with the seccomp profile of ECI's runtime (spec.containers[1] own)",
				"securityContext.appArmorProfile RuntimeDefault is not supported by ECI (no published parameter) and was ignored: the container runs with the AppArmor profile of ECI's runtime (spec.containers[1] own)",
				"securityContext.seLinuxOptions is not supported by ECI (no published parameter) and was ignored: the container gets the SELinux label of ECI's runtime (spec.containers[0] app, spec.containers[1] own)",
			},
		},
		{
			name: "allowPrivilegeEscalation true is the default: nothing to report",
			pod: func(p *corev1.Pod) {
				p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(true)}
			},
			noWarn: []string{"allowPrivilegeEscalation"},
			check: func(t *testing.T, r *eci.CreateContainerGroupRequest) {
				if r.Containers[0].SecurityContext != nil || r.Containers[0].Privileged {
					t.Errorf("security context %+v, want none", r.Containers[0].SecurityContext)
				}
			},
		},
	})
}
