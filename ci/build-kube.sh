#!/usr/bin/env bash
# Builds kube-apiserver, kube-scheduler and kube-controller-manager from the
# pinned tools module in ci/kube into bin/kube. The build takes minutes, so it
# is skipped when bin/kube/.stamp matches the hash of the pin (go.mod+go.sum).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/bin/kube"
mod="$root/ci/kube"
stamp=$(cat "$mod/go.mod" "$mod/go.sum" | sha256sum | cut -c1-16)
if [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$stamp" ] &&
   [ -x "$out/kube-apiserver" ] && [ -x "$out/kube-scheduler" ] && [ -x "$out/kube-controller-manager" ]; then
  echo "kube binaries up to date in $out"
  exit 0
fi
version=$(sed -n 's/^require k8s.io\/kubernetes \(v[0-9.]*\)$/\1/p' "$mod/go.mod")
major=$(echo "${version#v}" | cut -d. -f1)
minor=$(echo "${version#v}" | cut -d. -f2)
pkg=k8s.io/component-base/version
ldflags="-s -w -X $pkg.gitVersion=$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
ldflags="$ldflags -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
mkdir -p "$out"
rm -f "$out/.stamp"
cd "$mod"
for c in kube-apiserver kube-scheduler kube-controller-manager; do
  echo "building $c $version (several minutes on a cold cache)"
  CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/$c" "k8s.io/kubernetes/cmd/$c"
done
echo "$stamp" > "$out/.stamp"
echo "kube binaries $version built in $out"
