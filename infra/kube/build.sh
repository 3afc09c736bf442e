#!/usr/bin/env bash
# Builds a real kube-apiserver and etcd for the test suite (envtest-style), from
# the Go module proxy, into a cache keyed by version:
#   <repo>/.cache/kube/<k8s-version>/kube-apiserver
#   <repo>/.cache/kube/etcd-<etcd-version>/etcd
# A binary that already exists is not rebuilt. Versions come from the go.mod files
# beside this script (infra/kube/go.mod, infra/kube/etcd/go.mod).
#
# Usage: infra/kube/build.sh [--print]
#   --print  after building, print `KUBE_APISERVER=<path>` and `ETCD=<path>` on stdout
#            (all other output goes to stderr).
# Env: KUBE_CACHE_DIR overrides <repo>/.cache/kube; NICE (default 10) is the niceness
#      of the Go builds.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${KUBE_CACHE_DIR:-$repo/.cache/kube}"
nice_level="${NICE:-10}"

print=0
for arg in "$@"; do
  case "$arg" in
    --print) print=1 ;;
    *) echo "usage: $0 [--print]" >&2; exit 2 ;;
  esac
done

module_version() { # <go.mod> <module path> -> the required version
  awk -v m="$2" '($1 == m) || ($1 == "require" && $2 == m) { print ($1 == m) ? $2 : $3; exit }' "$1"
}

kube_version="$(module_version "$here/go.mod" k8s.io/kubernetes)"
etcd_version="$(module_version "$here/etcd/go.mod" go.etcd.io/etcd/server/v3)"
[[ -n "$kube_version" && -n "$etcd_version" ]] || { echo "cannot read versions from go.mod" >&2; exit 1; }

apiserver_bin="$cache/$kube_version/kube-apiserver"
etcd_bin="$cache/etcd-$etcd_version/etcd"

export GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0

build() { # <module dir> <package> <output> <extra ldflags>
  local dir="$1" pkg="$2" out="$3" extra="$4" tmp start
  if [[ -x "$out" ]]; then
    echo "kube-bins: $out is cached" >&2
    return
  fi
  command -v go >/dev/null || { echo "kube-bins: 'go' is not on PATH" >&2; exit 1; }
  mkdir -p "$(dirname "$out")"
  tmp="$out.tmp.$$"
  start=$SECONDS
  echo "kube-bins: building $pkg -> $out (cold builds take minutes)" >&2
  (cd "$dir" && nice -n "$nice_level" go build -trimpath -ldflags="-s -w $extra" -o "$tmp" "$pkg") >&2
  mv -f "$tmp" "$out"
  echo "kube-bins: built $out in $((SECONDS - start))s" >&2
}

minor="${kube_version#v1.}"
minor="${minor%%.*}"
kube_ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  kube_ldflags+=" -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  kube_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.gitCommit=$kube_version"
done

# Test processes run side by side (pytest-xdist) and each asks for the binaries: one builds,
# the others wait for it and find them cached.
mkdir -p "$cache"
exec 9>"$cache/.build.lock"
flock 9

build "$here/etcd" . "$etcd_bin" ""
build "$here" k8s.io/kubernetes/cmd/kube-apiserver "$apiserver_bin" "$kube_ldflags"

if (( print )); then
  echo "KUBE_APISERVER=$apiserver_bin"
  echo "ETCD=$etcd_bin"
fi
