{{/*
Common labels of every object of the release.
*/}}
{{- define "ack-virtual-node.labels" -}}
app.kubernetes.io/name: ack-virtual-node
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{/*
Selector labels of one component: (dict "ctx" . "component" "controller").
*/}}
{{- define "ack-virtual-node.selector" -}}
app.kubernetes.io/name: ack-virtual-node
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
Image reference of one binary: (dict "ctx" . "name" "virtual-node"). The tag defaults to appVersion
so that a chart and its images always come from the same build.
*/}}
{{- define "ack-virtual-node.image" -}}
{{- printf "%s/%s:%s" (trimSuffix "/" .ctx.Values.image.repository) .name (.ctx.Values.image.tag | default .ctx.Chart.AppVersion) -}}
{{- end }}

{{/*
The required settings, checked once with messages that say what to set. vSwitches is a list, so it is
joined first: `required` only rejects nil and "".
*/}}
{{- define "ack-virtual-node.vSwitches" -}}
{{- required "vSwitches is required: set it to 1-10 vSwitch ids of the cluster's VPC, e.g. --set 'vSwitches={vsw-aaa,vsw-bbb}' (becomes ECI_VSWITCH)" (join "," (.Values.vSwitches | default list)) -}}
{{- end }}
{{- define "ack-virtual-node.securityGroup" -}}
{{- required "securityGroup is required: set it to the security group id of new ECI pods, e.g. --set securityGroup=sg-xxx (becomes ECI_SECURITY_GROUP)" .Values.securityGroup -}}
{{- end }}
{{- define "ack-virtual-node.region" -}}
{{- required "region is required: set it to the region of the vSwitches, e.g. --set region=cn-hangzhou (becomes ECI_REGION)" .Values.region -}}
{{- end }}

{{/*
Environment of the controller, shared by its Deployment and the pre-delete drain Job so both reach
the same cloud account and node.
*/}}
{{- define "ack-virtual-node.controllerEnv" -}}
- name: ECI_REGION
  value: {{ include "ack-virtual-node.region" . | quote }}
- name: ECI_VSWITCH
  value: {{ include "ack-virtual-node.vSwitches" . | quote }}
- name: ECI_SECURITY_GROUP
  value: {{ include "ack-virtual-node.securityGroup" . | quote }}
- name: ECI_KUBE_PROXY
  value: {{ .Values.kubeProxy | quote }}
{{- with .Values.kubeProxyImage }}
- name: ECI_KUBE_PROXY_IMAGE
  value: {{ . | quote }}
{{- end }}
{{- with .Values.apiServerUrl }}
- name: KUBERNETES_APISERVER_URL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.clusterId }}
- name: CLUSTER_ID
  value: {{ . | quote }}
{{- end }}
{{- with .Values.eciEndpoint }}
- name: ECI_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- include "ack-virtual-node.consoleEnv" . }}
- name: IMAGE_CACHE_CONTROLLER
  value: {{ .Values.imageCache.controller | quote }}
{{- if eq .Values.controller.kind "StatefulSet" }}
{{- /* No VIRTUAL_NODE_NAME: each ordinal pod serves the node named after it. */}}
- name: VIRTUAL_NODE_COUNT
  value: "1"
{{- with .Values.controller.statefulSet.legacyNodes }}
- name: VIRTUAL_NODE_LEGACY_NAMES
  value: {{ join "," . | quote }}
{{- end }}
- name: VIRTUAL_NODE_SCALE_DOWN_TIMEOUT
  value: {{ printf "%vs" .Values.controller.statefulSet.scaleDownTimeoutSeconds | quote }}
{{- else }}
- name: VIRTUAL_NODE_NAME
  value: {{ .Values.controller.nodeName | quote }}
- name: VIRTUAL_NODE_COUNT
  value: {{ .Values.controller.nodeCount | quote }}
{{- end }}
- name: KUBE_API_QPS
  value: {{ .Values.controller.kubeAPIQPS | quote }}
- name: KUBE_API_BURST
  value: {{ .Values.controller.kubeAPIBurst | quote }}
- name: ECI_POD_CAPACITY
  value: {{ .Values.controller.podCapacity | quote }}
- name: ECI_CPU_CAPACITY
  value: {{ .Values.controller.cpuCapacity | quote }}
- name: ECI_MEMORY_CAPACITY
  value: {{ .Values.controller.memoryCapacity | quote }}
- name: ECI_STATUS_INTERVAL
  value: {{ .Values.controller.statusInterval | quote }}
- name: ECI_RESYNC_INTERVAL
  value: {{ .Values.controller.resyncInterval | quote }}
- name: KUBELET_PORT
  value: {{ .Values.controller.kubeletPort | quote }}
- name: METRICS_ADDR
  value: {{ printf ":%v" .Values.controller.metricsPort | quote }}
- name: VIRTUAL_NODE_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
# The container's memory limit, from which the controller sets its Go memory limit (GOMEMLIMIT,
# 90 %), so the garbage collector works harder near the limit instead of the container being killed.
- name: MEMORY_LIMIT_BYTES
  valueFrom:
    resourceFieldRef:
      resource: limits.memory
      divisor: "1"
{{- if eq .Values.credentials.mode "secret" }}
- name: ALIBABA_CLOUD_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ .Values.credentials.secretName }}
      key: access-key-id
- name: ALIBABA_CLOUD_ACCESS_KEY_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ .Values.credentials.secretName }}
      key: access-key-secret
{{- else if eq .Values.credentials.mode "rrsa" }}
- name: ALIBABA_CLOUD_ROLE_ARN
  value: {{ required "credentials.rrsa.roleArn is required with credentials.mode=rrsa: set it to the ARN of the RAM role to assume" .Values.credentials.rrsa.roleArn | quote }}
- name: ALIBABA_CLOUD_OIDC_PROVIDER_ARN
  value: {{ required "credentials.rrsa.oidcProviderArn is required with credentials.mode=rrsa: set it to the ARN of the cluster's OIDC provider" .Values.credentials.rrsa.oidcProviderArn | quote }}
- name: ALIBABA_CLOUD_OIDC_TOKEN_FILE
  value: /var/run/secrets/ack.alibabacloud.com/rrsa-tokens/token
{{- else if eq .Values.credentials.mode "ramRole" }}
{{- with .Values.credentials.ramRole.roleName }}
- name: ALIBABA_CLOUD_ECS_METADATA
  value: {{ . | quote }}
{{- end }}
{{- end }}
{{- if .Values.controller.tlsBootstrap.enabled }}
- name: TLS_BOOTSTRAP_ENABLED
  value: "true"
- name: KUBECONFIG
  value: /etc/ack-virtual-node/bootstrap/kubeconfig
- name: VNODE_CERT_DIR
  value: /var/lib/ack-virtual-node/pki
{{- end }}
{{- with .Values.controller.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Volumes and mounts of TLS bootstrapping: the bootstrap kubeconfig and a writable directory for the
client certificate (an emptyDir: it survives container restarts; a new pod bootstraps again).
*/}}
{{- define "ack-virtual-node.bootstrapVolume" -}}
{{- if .Values.controller.tlsBootstrap.enabled }}
- name: bootstrap-kubeconfig
  secret:
    secretName: {{ required "controller.tlsBootstrap.kubeconfigSecret is required with controller.tlsBootstrap.enabled: create a Secret with key kubeconfig from `vnodectl kubeconfig --mode bootstrap`" .Values.controller.tlsBootstrap.kubeconfigSecret }}
- name: pki
  emptyDir: {}
{{- end }}
{{- end }}
{{- define "ack-virtual-node.bootstrapMount" -}}
{{- if .Values.controller.tlsBootstrap.enabled }}
- name: bootstrap-kubeconfig
  mountPath: /etc/ack-virtual-node/bootstrap
  readOnly: true
- name: pki
  mountPath: /var/lib/ack-virtual-node/pki
{{- end }}
{{- end }}

{{/*
Volumes and mounts of the RRSA token, projected with the STS audience.
*/}}
{{- define "ack-virtual-node.rrsaVolume" -}}
{{- if eq .Values.credentials.mode "rrsa" }}
- name: rrsa-oidc-token
  projected:
    sources:
      - serviceAccountToken:
          path: token
          audience: {{ .Values.credentials.rrsa.audience | quote }}
          expirationSeconds: 3600
{{- end }}
{{- end }}
{{- define "ack-virtual-node.rrsaMount" -}}
{{- if eq .Values.credentials.mode "rrsa" }}
- name: rrsa-oidc-token
  mountPath: /var/run/secrets/ack.alibabacloud.com/rrsa-tokens
  readOnly: true
{{- end }}
{{- end }}

{{/*
Checksum of everything the controller reads at start: a change rolls its pods. The AccessKey is read
from the cluster (lookup) so that rotating alibaba-addon-secret and running `helm upgrade` restarts
the controller with the new key.
*/}}
{{- define "ack-virtual-node.configChecksum" -}}
{{- $secret := "" -}}
{{- if eq .Values.credentials.mode "secret" -}}
{{- if .Values.credentials.create -}}
{{- $secret = printf "%s/%s" .Values.credentials.accessKeyId .Values.credentials.accessKeySecret -}}
{{- else -}}
{{- $s := lookup "v1" "Secret" .Release.Namespace .Values.credentials.secretName -}}
{{- if $s -}}{{- $secret = toJson $s.data -}}{{- end -}}
{{- end -}}
{{- end -}}
{{- printf "%s|%s" (include "ack-virtual-node.controllerEnv" .) $secret | sha256sum -}}
{{- end }}

{{- /*
The console's VNode settings: tags on every container group (ECI_TAGS), their resource group
(ECI_RESOURCE_GROUP_ID), extra node labels (VIRTUAL_NODE_LABELS) and taints (VIRTUAL_NODE_TAINTS; with
controller.defaultTaint false the list ends with "virtual-kubelet.io/provider-", which removes the
default taint). Each variable is rendered only when set.
*/ -}}
{{- define "ack-virtual-node.consoleEnv" -}}
{{- with .Values.resourceGroupId }}
- name: ECI_RESOURCE_GROUP_ID
  value: {{ . | quote }}
{{- end }}
{{- with .Values.tags }}
{{- $items := list }}
{{- range $k := keys . | sortAlpha }}{{ $items = append $items (printf "%s:%s" $k (toString (index $.Values.tags $k))) }}{{ end }}
- name: ECI_TAGS
  value: {{ join "," $items | quote }}
{{- end }}
{{- with .Values.controller.nodeLabels }}
{{- $items := list }}
{{- range $k := keys . | sortAlpha }}{{ $items = append $items (printf "%s=%s" $k (toString (index $.Values.controller.nodeLabels $k))) }}{{ end }}
- name: VIRTUAL_NODE_LABELS
  value: {{ join "," $items | quote }}
{{- end }}
{{- $taints := list }}
{{- range .Values.controller.nodeTaints }}
{{- if .value }}{{ $taints = append $taints (printf "%s=%s:%s" .key (toString .value) .effect) }}{{ else }}{{ $taints = append $taints (printf "%s:%s" .key .effect) }}{{ end }}
{{- end }}
{{- if not .Values.controller.defaultTaint }}{{ $taints = append $taints "virtual-kubelet.io/provider-" }}{{ end }}
{{- if $taints }}
- name: VIRTUAL_NODE_TAINTS
  value: {{ join "," $taints | quote }}
{{- end }}
{{- end }}
