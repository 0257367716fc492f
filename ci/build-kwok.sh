#!/usr/bin/env bash
# Builds kwok (the zero-cost kubelet that `make bench` compares the virtual
# node with) from the pinned tools module in ci/kwok into bin/kwok, skipped
# when bin/.kwok-stamp matches the hash of the pin.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mod="$root/ci/kwok"
stamp=$(cat "$mod/go.mod" "$mod/go.sum" | sha256sum | cut -c1-16)
if [ -x "$root/bin/kwok" ] && [ -f "$root/bin/kwok-stages.yaml" ] && [ "$(cat "$root/bin/.kwok-stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "kwok up to date in $root/bin"
  exit 0
fi
mkdir -p "$root/bin"
rm -f "$root/bin/.kwok-stamp"
cd "$mod"
echo "building kwok $(sed -n 's/^require sigs.k8s.io\/kwok \(v[0-9.]*\)$/\1/p;s/^\tsigs.k8s.io\/kwok \(v[0-9.]*\)$/\1/p' go.mod) (a few minutes on a cold cache)"
CGO_ENABLED=0 go build -trimpath -o "$root/bin/kwok" sigs.k8s.io/kwok/cmd/kwok
# kwok runs nothing without Stages; the bench uses the upstream "fast"
# ones (node ready with a Lease heartbeat; pods ready, Job pods complete,
# deleted pods removed), taken from the pinned module.
stages=$(go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)/kustomize/stage
for f in "$stages"/node/fast/node-initialize.yaml "$stages"/node/heartbeat-with-lease/*.yaml "$stages"/pod/fast/pod-*.yaml; do
  echo "---"
  cat "$f"
done > "$root/bin/kwok-stages.yaml"
echo "$stamp" > "$root/bin/.kwok-stamp"
