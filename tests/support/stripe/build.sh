#!/usr/bin/env bash
# Builds stripe-mock (github.com/stripe/stripe-mock, Stripe's own mock of its API, which checks
# every request against Stripe's OpenAPI description) at the version in versions.env, unless a
# build of that version is already cached: the binary goes to
# ${SLUICE_TESTENV_CACHE:-${XDG_CACHE_HOME:-~/.cache}/sluice/testenv}/stripe-mock-<version>/;
# Go's module and build caches stay in their usual places, outside the repository.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
cache="${SLUICE_TESTENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice/testenv}"
out="$cache/stripe-mock-$STRIPE_MOCK_VERSION"
[ -x "$out/stripe-mock" ] && exit 0

command -v go >/dev/null || { echo "Go is needed to build stripe-mock (golang.org/dl)" >&2; exit 1; }

echo "building stripe-mock $STRIPE_MOCK_VERSION into $cache (once; later runs reuse it)"
started=$SECONDS
mkdir -p "$cache"
partial=$(mktemp -d "$out.partial.XXXXXX")
trap 'rm -rf "$partial"' EXIT
chmod 755 "$partial"
# `go install module@version` builds the module with its own go.mod and go.sum (checked against
# the Go checksum database), whatever directory it is run from.
GOBIN="$partial" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w -X main.version=$STRIPE_MOCK_VERSION" \
  "github.com/stripe/stripe-mock@$STRIPE_MOCK_VERSION"
rm -rf "$out"
mv -T "$partial" "$out"
echo "built stripe-mock in $((SECONDS - started))s"
