#!/usr/bin/env bash
# Regenerates infra/kube/go.mod (and go.sum) for another k8s.io/kubernetes version.
#
# k8s.io/kubernetes requires its staging modules (k8s.io/api, k8s.io/apiserver, ...) at v0.0.0
# and `replace`s them with ./staging/src/...; replaces only apply to the main module, so this
# wrapper repeats them with the published tags: k8s.io/kubernetes v1.X.Y <-> k8s.io/* v0.X.Y.
#
# Usage: infra/kube/gen-gomod.sh v1.37.2    (then: infra/kube/build.sh)
set -euo pipefail

version="${1:?usage: $0 v1.X.Y}"
[[ "$version" =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] || { echo "expected v1.X.Y, got $version" >&2; exit 2; }
staging_version="v0.${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

gomod="$(cd "$here" && go mod download -json "k8s.io/kubernetes@$version" \
  | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
[[ -f "$gomod" ]] || { echo "could not download k8s.io/kubernetes@$version" >&2; exit 1; }
go_line="$(grep -m1 '^go ' "$gomod")"
godebug_line="$(grep -m1 '^godebug ' "$gomod" || true)"

# Staging modules: required at v0.0.0 and replaced with a ./staging path.
mapfile -t staging < <(
  awk '$2 == "v0.0.0" { req[$1] = 1 }
       $2 == "=>" && $3 ~ /^\.\/staging\// && ($1 in req) { print $1 }' "$gomod"
)
(( ${#staging[@]} > 0 )) || { echo "no staging modules found in $gomod" >&2; exit 1; }

{
  cat <<EOF
// Wrapper module: builds k8s.io/kubernetes/cmd/kube-apiserver for the test suite
// (tests/support/kube_apiserver.py). k8s.io/kubernetes points its staging modules
// at ./staging in its own go.mod; those replaces only apply to the main module, so
// they are repeated here with the published v0.<minor>.<patch> tags.
// Regenerate with infra/kube/gen-gomod.sh when bumping the version.
module queue-manager/infra/kube

$go_line
${godebug_line:+
$godebug_line
}
require k8s.io/kubernetes $version

tool k8s.io/kubernetes/cmd/kube-apiserver

replace (
EOF
  for module in "${staging[@]}"; do
    printf '\t%s => %s %s\n' "$module" "$module" "$staging_version"
  done
  echo ")"
} > "$here/go.mod"
rm -f "$here/go.sum"
(cd "$here" && GOFLAGS=-mod=mod go mod tidy)
echo "infra/kube/go.mod now pins k8s.io/kubernetes $version (${#staging[@]} staging modules at $staging_version)" >&2
