#!/usr/bin/env bash
# Builds the test servers (etcd, kube-apiserver, kube-controller-manager) from their Go modules
# at the versions in versions.env, unless a build of that version is already cached.
# Binaries go to ${SLUICE_TESTENV_CACHE:-${XDG_CACHE_HOME:-~/.cache}/sluice/testenv}/<name>-<version>/;
# Go's module and build caches stay in their usual places, outside the repository.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
cache="${SLUICE_TESTENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice/testenv}"

command -v go >/dev/null || { echo "Go is needed to build the test servers (golang.org/dl)" >&2; exit 1; }

build() {
  local name=$1 version=$2 module=$3 package=$4 ldflags=$5
  local out="$cache/$name-$version/$name"
  [ -x "$out" ] && return 0
  echo "building $name $version into $cache (once; later runs reuse it)"
  mkdir -p "$(dirname "$out")"
  local started=$SECONDS
  (cd "$here/$module" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out.partial" "$package")
  mv "$out.partial" "$out"
  echo "built $name in $((SECONDS - started))s"
}

kube=${KUBERNETES_VERSION#v}
kube_major=${kube%%.*}
kube_minor=${kube#*.}
kube_minor=${kube_minor%%.*}
version_flags=""
for package in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  version_flags+=" -X $package.gitVersion=$KUBERNETES_VERSION"
  version_flags+=" -X $package.gitMajor=$kube_major -X $package.gitMinor=$kube_minor"
  version_flags+=" -X $package.gitTreeState=clean -X $package.buildDate=1970-01-01T00:00:00Z"
done

build etcd "$ETCD_VERSION" etcd . "-s -w"
build kube-apiserver "$KUBERNETES_VERSION" kube ./cmd/kube-apiserver "-s -w$version_flags"
build kube-controller-manager "$KUBERNETES_VERSION" kube ./cmd/kube-controller-manager "-s -w$version_flags"
