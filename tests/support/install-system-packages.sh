#!/usr/bin/env bash
# Installs the Debian packages of the servers the tests start when missing: PostgreSQL, Redis,
# Prometheus, a Java runtime with Maven for the Kafka broker (tests/support/kafka/build.sh),
# Chromium for the browser tests (Playwright drives Debian's build; it cannot download its own),
# and wrk, the benchmarks' load generator (tests/bench/loadgen.py).
set -euo pipefail

need=()
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
[ -x /usr/bin/prometheus ] || need+=(prometheus)
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need+=(maven)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
[ ${#need[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "need root or sudo to install: ${need[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "Installing Debian packages: ${need[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian starts the packaged services on install; the tests run their own throwaway servers.
for service in postgresql redis-server prometheus; do
  $sudo service "$service" stop >/dev/null 2>&1 || true
done
