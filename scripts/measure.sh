#!/usr/bin/env bash
# Measures the release build on this machine: resident memory of an idle
# marketplace (embedded defaults, fresh data directory) and login throughput.
#
#   scripts/measure.sh [--seconds N] [--concurrency N]
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked --bin marketplace --example login_throughput -p gateway >&2
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')

data=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
MARKETPLACE_SERVER__DATA_DIR="$data" MARKETPLACE_SERVER__LISTEN="127.0.0.1:$port" \
  MARKETPLACE_LOG__FILTER=warn "$target_dir/release/marketplace" serve &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data"' EXIT

for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "http://127.0.0.1:$port/readyz" >/dev/null

echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -srm)"
echo "idle server, after start-up: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status) resident"
for _ in $(seq 1 20); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null; done
echo "idle server, after 20 requests: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status) resident"

"$target_dir/release/examples/login_throughput" "$@"
