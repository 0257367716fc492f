{{- /*
What differs between the Kubernetes versions the chart supports (Chart.yaml kubeVersion, the range
in pkg/kubeversion). Each choice follows .Capabilities.KubeVersion, which is the cluster's version on
install and upgrade and --kube-version for `helm template`. (.Capabilities.APIVersions cannot decide:
client-side renders list every version client-go knows.) TestRenderEveryKubeVersion renders the chart
for every supported minor and checks each object's apiVersion/kind against the versions that minor
serves, and the fields below against the minor that introduced them.
*/ -}}

{{- /* policy/v1 PodDisruptionBudget is served from 1.21; policy/v1beta1 until 1.24. */ -}}
{{- define "ack-virtual-node.pdbApiVersion" -}}
{{- if semverCompare ">=1.21.0-0" .Capabilities.KubeVersion.Version }}policy/v1{{ else }}policy/v1beta1{{ end }}
{{- end -}}

{{- /*
The containers' securityContext. The seccompProfile field exists from 1.19; before that the
apiserver drops it, so older clusters get the same profile through the pod annotation below.
*/ -}}
{{- define "ack-virtual-node.securityContext" -}}
{{- $sc := .Values.securityContext }}
{{- if semverCompare "<1.19.0-0" .Capabilities.KubeVersion.Version }}
{{- $sc = omit $sc "seccompProfile" }}
{{- end }}
{{- toYaml $sc }}
{{- end -}}

{{- /*
The pod annotation that stands for securityContext.seccompProfile below 1.19 (each pod of the chart
has one container, so the pod's profile is the container's), or nothing.
*/ -}}
{{- define "ack-virtual-node.legacySeccomp" -}}
{{- $p := .Values.securityContext.seccompProfile }}
{{- if and $p (semverCompare "<1.19.0-0" .Capabilities.KubeVersion.Version) }}
{{- if eq $p.type "RuntimeDefault" }}seccomp.security.alpha.kubernetes.io/pod: runtime/default
{{- else if eq $p.type "Unconfined" }}seccomp.security.alpha.kubernetes.io/pod: unconfined
{{- else if eq $p.type "Localhost" }}seccomp.security.alpha.kubernetes.io/pod: {{ printf "localhost/%s" $p.localhostProfile | quote }}
{{- else }}{{ fail (printf "securityContext.seccompProfile.type %q: use RuntimeDefault, Unconfined or Localhost" $p.type) }}
{{- end }}
{{- end }}
{{- end -}}

{{- /*
startupProbe is on by default from 1.18 (alpha and off in 1.16 and 1.17, where the apiserver drops
it). There the liveness probe waits as long as the startup probe would have.
*/ -}}
{{- define "ack-virtual-node.hasStartupProbe" -}}
{{- if semverCompare ">=1.18.0-0" .Capabilities.KubeVersion.Version }}true{{ end }}
{{- end -}}

{{- /*
NetworkPolicy port ranges (endPort) are on by default from 1.22 (alpha and off in 1.21, unknown
before). There each port of a range is listed.
*/ -}}
{{- define "ack-virtual-node.hasEndPort" -}}
{{- if semverCompare ">=1.22.0-0" .Capabilities.KubeVersion.Version }}true{{ end }}
{{- end -}}
