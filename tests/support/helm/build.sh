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
# Helm's own Makefile stamps its version, and the Kubernetes version it assumes when it renders
# without a cluster (`helm template`, `helm lint`): its client-go's minor, as 1.<minor> (client-go
# v0.N is Kubernetes 1.N). Unstamped, helm would claim Kubernetes 1.20.
gomod=$(go mod download -json "helm.sh/helm/v3@$HELM_VERSION" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')
client_go=$(sed -n 's/^\tk8s.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$gomod")
[ -n "$client_go" ] || { echo "cannot read helm's client-go version from $gomod" >&2; exit 1; }
flags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
flags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for package in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  flags+=" -X $package.k8sVersionMajor=1 -X $package.k8sVersionMinor=$client_go"
done
# `go install module@version` builds the module with its own go.mod and go.sum (checked against
# the Go checksum database), whatever directory it is run from.
GOBIN="$partial" CGO_ENABLED=0 go install -trimpath -ldflags "$flags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
rm -rf "$out"
mv -T "$partial" "$out"
echo "built helm in $((SECONDS - started))s"
