#!/usr/bin/env bash
# Starts (up) or stops (down) the local demo: a real control plane, the ECI
# simulator and the virtual node, then runs ci/demo/hello-eci.yaml on it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# DEMO_STATE_DIR and DEMO_BIN_DIR let a test run the demo beside another
# one (test/integration TestDemo); users leave them unset.
state="${DEMO_STATE_DIR:-$root/.devcluster}"
bin="${DEMO_BIN_DIR:-$root/bin}"
kubeconfig="$state/cluster/admin.kubeconfig"
mkdir -p "$state"

running() { [ -f "$state/$1.pid" ] && kill -0 "$(cat "$state/$1.pid")" 2>/dev/null; }

stop() {
  for p in virtual-node eci-simulator devcluster; do
    if running "$p"; then
      kill "$(cat "$state/$p.pid")" 2>/dev/null || true
      for _ in $(seq 50); do running "$p" || break; sleep 0.2; done
      running "$p" && kill -9 "$(cat "$state/$p.pid")" 2>/dev/null || true
      echo "stopped $p"
    fi
    rm -f "$state/$p.pid"
  done
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

  kubectl --kubeconfig "$kubeconfig" apply -f "$root/ci/demo/hello-eci.yaml"
  kubectl --kubeconfig "$kubeconfig" rollout status deployment/hello-eci --timeout=120s
  echo
  kubectl --kubeconfig "$kubeconfig" get nodes,pods -o wide
  echo
  pod=$(kubectl --kubeconfig "$kubeconfig" get pods -l app=hello-eci -o jsonpath='{.items[0].metadata.name}')
  echo "kubectl logs $pod:"
  kubectl --kubeconfig "$kubeconfig" logs "$pod" | head -3
  echo
  echo "what the node says about the cloud (RAM policy: documented):"
  kubectl --kubeconfig "$kubeconfig" get node virtual-kubelet \
    -o jsonpath='{range .status.conditions[?(@.type=="ContainerInstanceAPI")]}{.type}={.status} {.reason}{"\n"}{end}{range .status.conditions[?(@.type=="ContainerInstancePermissions")]}{.type}={.status} {.reason}: {.message}{"\n"}{end}'
  show_kube_proxy "$pod"
  cat <<MSG

The demo is running. Point kubectl at it with:
  export KUBECONFIG=$kubeconfig
Logs: $state/*.log    Stop everything: make demo-down
MSG
}

case "${1:-}" in
  up) up ;;
  down) stop ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
