#!/usr/bin/env bash
# Fetches the Kafka test broker's jars from Maven Central (pom.xml, at the versions in
# versions.env) unless that version is already cached: the broker, its logging backend and the
# Prometheus JMX exporter agent go to
# ${SLUICE_TESTENV_CACHE:-${XDG_CACHE_HOME:-~/.cache}/sluice/testenv}/kafka-<version>/libs/.
# Maven's own repository (~/.m2) stays in its usual place, outside the repository.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
cache="${SLUICE_TESTENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice/testenv}"
libs="$cache/kafka-$KAFKA_VERSION/libs"

required=(
  "kafka_2.13-$KAFKA_VERSION.jar"
  "jmx_prometheus_javaagent-$JMX_EXPORTER_VERSION.jar"
  "log4j-core-$LOG4J_VERSION.jar"
  "log4j-slf4j-impl-$LOG4J_VERSION.jar"
)
complete() {
  local jar
  for jar in "${required[@]}"; do [ -f "$libs/$jar" ] || return 1; done
}
complete && exit 0

for tool in java mvn; do
  command -v "$tool" >/dev/null || {
    echo "$tool is needed for the Kafka test broker: run \`make system-packages\`" >&2
    exit 1
  }
done

echo "fetching Kafka $KAFKA_VERSION jars into $libs (once; later runs reuse them)"
started=$SECONDS
mkdir -p "$(dirname "$libs")"
partial=$(mktemp -d "$libs.partial.XXXXXX")
trap 'rm -rf "$partial"' EXIT
mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies \
  -DincludeScope=runtime -DoutputDirectory="$partial" \
  -Dkafka.version="$KAFKA_VERSION" -Dlog4j.version="$LOG4J_VERSION" \
  -Djmx.exporter.version="$JMX_EXPORTER_VERSION"
rm -rf "$libs"
mv -T "$partial" "$libs"
complete || { echo "Maven did not fetch all of: ${required[*]}" >&2; exit 1; }
echo "fetched the Kafka jars in $((SECONDS - started))s"
