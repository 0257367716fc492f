#!/usr/bin/env bash
# Starts (up) or stops (down) the local demo: a real control plane, the ECI
# simulator, the webhook and the virtual node, then runs ci/demo/hello-eci.yaml
# (pods labelled alibabacloud.com/eci=true, nothing else) on it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# DEMO_STATE_DIR and DEMO_BIN_DIR let a test run the demo beside another
# one (test/integration TestDemo); users leave them unset. KUBELET_PORT,
# METRICS_PORT and WEBHOOK_PORT move the ports the demo listens on.
state="${DEMO_STATE_DIR:-$root/.devcluster}"
bin="${DEMO_BIN_DIR:-$root/bin}"
kubeconfig="$state/cluster/admin.kubeconfig"
mkdir -p "$state"

running() { [ -f "$state/$1.pid" ] && kill -0 "$(cat "$state/$1.pid")" 2>/dev/null; }

stop() {
  for p in virtual-node vnode-webhook eci-simulator devcluster; do
    if running "$p"; then
      kill "$(cat "$state/$p.pid")" 2>/dev/null || true
      for _ in $(seq 50); do running "$p" || break; sleep 0.2; done
      running "$p" && kill -9 "$(cat "$state/$p.pid")" 2>/dev/null || true
      echo "stopped $p"
    fi
    rm -f "$state/$p.pid"
  done
}

kc() { kubectl --kubeconfig "$kubeconfig" "$@"; }

# routed: the apiserver calls the webhook, which gives a pod that carries only
# the label alibabacloud.com/eci=true the virtual node's nodeSelector
# (a server-side dry run: nothing is created).
routed() {
  [ "$(kc run webhook-probe --image=registry.example.com/library/busybox:1.36 \
    --labels=alibabacloud.com/eci=true --dry-run=server -o jsonpath='{.spec.nodeSelector.type}')" = virtual-kubelet ]
}

wait_for() { # description, seconds, command...
  local what=$1 secs=$2; shift 2
  for _ in $(seq $((secs * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "timed out waiting for $what; logs are in $state" >&2
  return 1
}

# show_kube_proxy prints the kube-proxy container the pod's container group runs (from the
# simulator's admin API) next to the pod's own containers, which do not include it.
show_kube_proxy() {
  local pod=$1 group
  group=$(kubectl --kubeconfig "$kubeconfig" get pod "$pod" -o jsonpath='{.metadata.annotations.k8s\.aliyun\.com/eci-instance-id}')
  echo
  echo "kube-proxy (ECI_KUBE_PROXY=true): in container group $group, not on pod $pod"
  echo "  pod containers:   $(kubectl --kubeconfig "$kubeconfig" get pod "$pod" -o jsonpath='{.spec.containers[*].name}')"
  echo "  group containers (simulator GET /admin/groups/$group):"
  local json
  json=$(curl -fsS "http://$(cat "$state/simulator.addr")/admin/groups/$group")
  if ! command -v jq >/dev/null; then
    echo "$json" | grep -o '"Name":"eci-kube-proxy"[^}]*' | sed 's/^/    /'
    return
  fi
  echo "$json" | jq -r '.Containers[] |
    "    \(.Name)  image=\(.Image)  cpu=\(.Cpu) memory=\(.Memory)Gi" +
    (if .SecurityContext.Capability.Adds then "  capabilities=\(.SecurityContext.Capability.Adds | join(","))" else "" end) +
    (if (.Args | length) > 0 then "\n      \(.Commands | join(" ")) \(.Args | join(" "))" else "" end)'
}

# show_node_address prints the address the node advertises, and says so
# clearly when it is loopback (a machine with no other address): the
# apiserver's node proxy then refuses it.
show_node_address() {
  node_ip=$(kc get node virtual-kubelet -o jsonpath='{.status.addresses[?(@.type=="InternalIP")].address}')
  node_port=$(kc get node virtual-kubelet -o jsonpath='{.status.daemonEndpoints.kubeletEndpoint.Port}')
  case "$node_ip" in
    127.*|::1)
      if [ -z "${VIRTUAL_NODE_IP:-}" ]; then
        cat <<MSG
NOTE: this machine has no network address other than loopback, so the node advertises
$node_ip (VIRTUAL_NODE_IP unset). kubectl logs and exec still work, but the apiserver
refuses to proxy to a loopback address ("address not allowed"), so the demo skips
kubectl get --raw /api/v1/nodes/virtual-kubelet/proxy/... . Give the machine an address
(or set VIRTUAL_NODE_IP to one of its addresses) to see it.
MSG
      else
        echo "NOTE: VIRTUAL_NODE_IP=$node_ip is loopback: the apiserver refuses to proxy to it, so the demo skips its node proxy."
      fi
      node_proxy=no ;;
    *)
      local why="VIRTUAL_NODE_IP unset: this host's first address other than loopback"
      [ -z "${VIRTUAL_NODE_IP:-}" ] || why="VIRTUAL_NODE_IP=$VIRTUAL_NODE_IP"
      echo "node virtual-kubelet advertises $node_ip:$node_port (InternalIP; $why)"
      node_proxy=yes ;;
  esac
}

# show_routing prints what the Deployment asked for (only the label) next to
# what its pod got from the webhook (nodeSelector and toleration) and where
# it runs.
show_routing() {
  local pod=$1
  echo
  echo "routed by the webhook: the Deployment sets only the label alibabacloud.com/eci=true"
  local sel tol
  sel=$(kc get deployment hello-eci -o jsonpath='{.spec.template.spec.nodeSelector}')
  tol=$(kc get deployment hello-eci -o jsonpath='{.spec.template.spec.tolerations}')
  echo "  deployment/hello-eci template: labels=$(kc get deployment hello-eci -o jsonpath='{.spec.template.metadata.labels}')" \
    "nodeSelector=${sel:-none} tolerations=${tol:-none}"
  echo "  pod $pod: nodeName=$(kc get pod "$pod" -o jsonpath='{.spec.nodeName}')" \
    "nodeSelector=$(kc get pod "$pod" -o jsonpath='{.spec.nodeSelector}')" \
    "toleration=$(kc get pod "$pod" -o jsonpath='{range .spec.tolerations[?(@.key=="virtual-kubelet.io/provider")]}{.key} {.operator} {.effect}{end}')" \
    "(added by the webhook)"
}

# show_node_proxy reads the pod's log and the node's stats through the
# apiserver's node proxy, which dials the node's advertised address.
show_node_proxy() {
  local pod=$1 out base=/api/v1/nodes/virtual-kubelet/proxy
  [ "$node_proxy" = yes ] || return 0
  echo
  echo "through the apiserver's node proxy to $node_ip:$node_port:"
  echo "  kubectl get --raw $base/containerLogs/default/$pod/hello"
  if ! out=$(kc get --raw "$base/containerLogs/default/$pod/hello" 2>&1); then
    echo "the node proxy failed: $out" >&2
    return 1
  fi
  printf '%s\n' "$out" | head -3 | sed 's/^/    /'
  echo "  kubectl get --raw $base/stats/summary"
  if ! out=$(kc get --raw "$base/stats/summary" 2>&1); then
    echo "the node proxy failed: $out" >&2
    return 1
  fi
  if command -v jq >/dev/null; then
    printf '%s\n' "$out" | jq -r '"    node \(.node.nodeName)", (.pods[] | "    pod \(.podRef.namespace)/\(.podRef.name)" +
      (if .cpu.usageNanoCores then "  cpu=\(.cpu.usageNanoCores / 1000000 | floor)m" else "" end) +
      (if .memory.workingSetBytes then "  memory=\(.memory.workingSetBytes / 1048576 | floor)Mi" else "" end))'
  else
    printf '%s\n' "$out" | grep -o '"podRef":{[^}]*}' | sed 's/^/    /'
  fi
}

up() {
  stop >/dev/null
  rm -rf "$state/cluster" "$state/simulator.addr"
  echo "starting the control plane (etcd, kube-apiserver, kube-scheduler, kube-controller-manager)"
  nohup "$bin/devcluster" -dir "$state/cluster" >"$state/devcluster.log" 2>&1 &
  echo $! >"$state/devcluster.pid"
  wait_for "the control plane" 120 kubectl --kubeconfig "$kubeconfig" get --raw /readyz

  # kube-proxy in ECI pods (ECI_KUBE_PROXY=true, the default) runs as its own identity, bound to
  # system:node-proxier only, as the chart and `vnodectl kubeconfig` install it.
  kubectl --kubeconfig "$kubeconfig" -n kube-system create serviceaccount ack-virtual-node-kube-proxy
  kubectl --kubeconfig "$kubeconfig" create clusterrolebinding ack-virtual-node:kube-proxy \
    --clusterrole=system:node-proxier --serviceaccount=kube-system:ack-virtual-node-kube-proxy

  # The AccessKey gets the documentation's custom RAM policy (seed 002,
  # step 1), not full access: the demo shows that policy is enough.
  echo "starting the ECI simulator (RAM policy: the documented custom policy)"
  nohup "$bin/eci-simulator" -listen 127.0.0.1:0 -addr-file "$state/simulator.addr" -start-delay 2s \
    -policy documented >"$state/eci-simulator.log" 2>&1 &
  echo $! >"$state/eci-simulator.pid"
  wait_for "the simulator" 30 test -s "$state/simulator.addr"

  # The webhook runs outside the cluster: it creates its CA and serving
  # certificate (Secret kube-system/ack-virtual-node-webhook-cert) and the
  # MutatingWebhookConfiguration with url: https://127.0.0.1:PORT/mutate-pods
  # and that CA as caBundle, so the apiserver calls it on loopback.
  local webhook_url="https://127.0.0.1:${WEBHOOK_PORT:-9443}/mutate-pods"
  echo "starting the webhook (virtual-node-affinity-admission-controller at $webhook_url)"
  KUBECONFIG="$kubeconfig" \
  WEBHOOK_LISTEN_ADDR="127.0.0.1:${WEBHOOK_PORT:-9443}" \
  WEBHOOK_URL="$webhook_url" \
  WEBHOOK_METRICS_ADDR="" \
    nohup "$bin/vnode-webhook" >"$state/vnode-webhook.log" 2>&1 &
  echo $! >"$state/vnode-webhook.pid"
  wait_for "the apiserver to call the webhook for labelled pods" 60 routed

  # VIRTUAL_NODE_IP is left unset: the node advertises this host's first
  # address other than loopback, which the apiserver's node proxy accepts
  # (it refuses loopback). The kubelet API listens on every interface
  # (KUBELET_LISTEN_IP unset) so that address reaches it; it is TLS and
  # answers only the apiserver's client certificate and authorized tokens.
  echo "starting the virtual node (ack-virtual-node-controller)"
  KUBECONFIG="$kubeconfig" \
  ECI_ENDPOINT="http://$(cat "$state/simulator.addr")" \
  ECI_REGION=cn-hangzhou \
  ECI_VSWITCH=vsw-sim-h,vsw-sim-i,vsw-sim-j \
  ECI_SECURITY_GROUP=sg-sim \
  ALIBABA_CLOUD_ACCESS_KEY_ID=sim-access-key-id \
  ALIBABA_CLOUD_ACCESS_KEY_SECRET=sim-access-key-secret \
  KUBELET_PORT="${KUBELET_PORT:-10250}" \
  METRICS_ADDR="127.0.0.1:${METRICS_PORT:-10255}" \
    nohup "$bin/virtual-node" >"$state/virtual-node.log" 2>&1 &
  echo $! >"$state/virtual-node.pid"
  wait_for "node virtual-kubelet to be Ready" 60 \
    kubectl --kubeconfig "$kubeconfig" wait node/virtual-kubelet --for=condition=Ready --timeout=1s

  show_node_address

  kubectl --kubeconfig "$kubeconfig" apply -f "$root/ci/demo/hello-eci.yaml"
  kubectl --kubeconfig "$kubeconfig" rollout status deployment/hello-eci --timeout=120s
  echo
  kubectl --kubeconfig "$kubeconfig" get nodes,pods -o wide
  echo
  pod=$(kubectl --kubeconfig "$kubeconfig" get pods -l app=hello-eci -o jsonpath='{.items[0].metadata.name}')
  echo "kubectl logs $pod:"
  kubectl --kubeconfig "$kubeconfig" logs "$pod" | head -3
  show_routing "$pod"
  show_node_proxy "$pod"
  echo
  echo "what the node says about the cloud (RAM policy: documented):"
  kubectl --kubeconfig "$kubeconfig" get node virtual-kubelet \
    -o jsonpath='{range .status.conditions[?(@.type=="ContainerInstanceAPI")]}{.type}={.status} {.reason}{"\n"}{end}{range .status.conditions[?(@.type=="ContainerInstancePermissions")]}{.type}={.status} {.reason}: {.message}{"\n"}{end}'
  show_kube_proxy "$pod"
  cat <<MSG

The demo is running. Point kubectl at it with:
  export KUBECONFIG=$kubeconfig
Send any pod to ECI by labelling it, e.g.:
  kubectl run hello --image=registry.example.com/library/busybox:1.36 --labels=alibabacloud.com/eci=true -- sleep 3600
Logs: $state/*.log    Stop everything: make demo-down
MSG
}

case "${1:-}" in
  up) up ;;
  down) stop ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
