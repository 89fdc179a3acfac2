#!/usr/bin/env bash
# Builds helm (helm.sh/helm/v3, the Kubernetes package manager the chart in deploy/helm/ is
# tested with) at the version in versions.env, unless a build of that version is already cached:
# the binary goes to ${SLUICE_TESTENV_CACHE:-${XDG_CACHE_HOME:-~/.cache}/sluice/testenv}/helm-<version>/;
# Go's module and build caches stay in their usual places, outside the repository.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
cache="${SLUICE_TESTENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice/testenv}"
out="$cache/helm-$HELM_VERSION"
[ -x "$out/helm" ] && exit 0

command -v go >/dev/null || { echo "Go is needed to build helm (golang.org/dl)" >&2; exit 1; }

echo "building helm $HELM_VERSION into $cache (once; later runs reuse it)"
started=$SECONDS
mkdir -p "$cache"
partial=$(mktemp -d "$out.partial.XXXXXX")
trap 'rm -rf "$partial"' EXIT
chmod 755 "$partial"
# `go install module@version` builds the module with its own go.mod and go.sum (checked against
# the Go checksum database), whatever directory it is run from. The version is stamped as
# helm's own Makefile does, so `helm version` reports it.
GOBIN="$partial" CGO_ENABLED=0 go install -trimpath \
  -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
  "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
rm -rf "$out"
mv -T "$partial" "$out"
echo "built helm in $((SECONDS - started))s"
