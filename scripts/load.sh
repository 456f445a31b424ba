#!/usr/bin/env bash
# Load test of the live protocol (`/ws`) on the embedded defaults: builds the
# release binaries, starts `marketplace serve` on a fresh temporary data
# directory, seeds load-test accounts with long-lived tokens, then runs
# `loadgen idle` (memory per idle session) and `loadgen chat` (delivery and
# acknowledgement latency), prints the machine and the figures, and stops the
# server.
#
#   scripts/load.sh                          # 10000 idle sessions, 1000 chatting pairs
#   SESSIONS=500 PAIRS=50 scripts/load.sh    # a quick run
#
# Settings (environment): SESSIONS (10000), HOLD_SECS (10), PAIRS (1000),
# RATE (1.0 messages/s per session), DURATION_SECS (30), WARMUP_SECS (5),
# BODY_BYTES (100), SOURCE_ADDRS (8), KEEP=1 keeps the data directory and
# the server log.
#
# Progress and each tool's full output go to stderr; the summary (machine,
# commands' figures) to stdout.
#
# One process may hold at most `ulimit -Hn` descriptors (20000 here), so
# SESSIONS and 2*PAIRS must stay below about 19,900: loadgen says so
# before starting when they do not fit.
set -euo pipefail
cd "$(dirname "$0")/.."

sessions=${SESSIONS:-10000}
hold_secs=${HOLD_SECS:-10}
pairs=${PAIRS:-1000}
rate=${RATE:-1.0}
duration_secs=${DURATION_SECS:-30}
warmup_secs=${WARMUP_SECS:-5}
body_bytes=${BODY_BYTES:-100}
source_addrs=${SOURCE_ADDRS:-8}
users=$(( sessions > 2 * pairs ? sessions : 2 * pairs ))

echo "building release binaries..." >&2
cargo build --release --locked -p gateway --bin marketplace -p load-tests --bin loadgen >&2
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
marketplace="$target_dir/release/marketplace"
loadgen="$target_dir/release/loadgen"

work=$(mktemp -d "${TMPDIR:-/tmp}/marketplace-load.XXXXXX")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
pid=
cleanup() {
  if [[ -n $pid ]]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  if [[ ${KEEP:-0} == 1 ]]; then
    echo "kept $work (server.log, tokens.txt, data/)" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

# The embedded defaults only: no settings file, no database URL from outside.
unset MARKETPLACE_CONFIG MARKETPLACE_DATABASE__URL
export MARKETPLACE_SERVER__DATA_DIR="$work/data"
export MARKETPLACE_SERVER__LISTEN="127.0.0.1:$port"
export MARKETPLACE_SERVER__PUBLIC_URL="http://127.0.0.1:$port"
export MARKETPLACE_LOG__FILTER="${MARKETPLACE_LOG__FILTER:-warn}"
# Run from the work directory so that no ./marketplace.toml is picked up.
cd "$work"

echo "seeding $users load-test accounts..." >&2
seed_cmd=("$marketplace" seed --load-users "$users" --tokens-out "$work/tokens.txt" --token-ttl-secs 7200)
seed_out=$("${seed_cmd[@]}")
echo "$seed_out" >&2

# Every session holds a descriptor; the server lifts its own soft limit too.
ulimit -n "$(ulimit -Hn)"
"$marketplace" serve >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/server.log" >&2; echo "the server stopped" >&2; exit 1; }
  sleep 0.1
done
curl -fs "http://127.0.0.1:$port/readyz" >/dev/null
sleep 1 # let start-up settle before the first memory reading

url="ws://127.0.0.1:$port/ws"
status=0
idle_cmd=("$loadgen" idle --url "$url" --tokens "$work/tokens.txt" --sessions "$sessions"
  --server-pid "$pid" --source-addrs "$source_addrs" --hold-secs "$hold_secs")
echo "== $(date -u +%T) ${idle_cmd[*]}" >&2
idle_out=$("${idle_cmd[@]}") || status=$?
echo "$idle_out" >&2
echo "== $(date -u +%T) idle done" >&2
sleep 2 # let the server finish closing the idle sessions

chat_cmd=("$loadgen" chat --url "$url" --tokens "$work/tokens.txt" --pairs "$pairs"
  --rate "$rate" --duration-secs "$duration_secs" --warmup-secs "$warmup_secs"
  --body-bytes "$body_bytes" --server-pid "$pid" --source-addrs "$source_addrs")
echo "== $(date -u +%T) ${chat_cmd[*]}" >&2
chat_out=$("${chat_cmd[@]}") || status=$?
echo "$chat_out" >&2

echo "== $(date -u +%T) chat done" >&2
if ! kill -0 "$pid" 2>/dev/null; then
  echo "the server died during the test; its log:" >&2
  tail -50 "$work/server.log" >&2
  status=1
fi
# The server log without colours and timestamps, to count its warnings by message.
sed -e 's/\x1b\[[0-9;]*m//g' "$work/server.log" >"$work/server.plain.log"
warnings=$(grep -c -E '^\S+ +(WARN|ERROR) ' "$work/server.plain.log" || true)

cat <<EOF

== machine
$(nproc) CPUs ($(awk -F: '/model name/ {gsub(/^ +/, "", $2); print $2; exit}' /proc/cpuinfo)), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) memory, kernel $(uname -r), open files hard limit $(ulimit -Hn)
== seed ($users accounts)
$seed_out
== idle ($sessions sessions, held ${hold_secs} s)
$(grep -E '^(opened|sessions|server RSS|KiB per idle|loadgen RSS|ended|failed to open)|^ +[0-9]+  ' <<<"$idle_out" || true)
== chat ($pairs pairs, $rate msg/s per session, ${duration_secs} s after ${warmup_secs} s warmup)
$(grep -E '^(opened|sent|throughput|delivery latency|ack latency|error reply|errors|server RSS|loadgen RSS|failed to open|conversation.open failed)|^ +[0-9]+  ' <<<"$chat_out" || true)
== server log: $warnings warning/error lines
EOF
if (( warnings > 0 )); then
  # First and last time of each kind (level, target, message without fields).
  grep -E '^\S+ +(WARN|ERROR) ' "$work/server.plain.log" \
    | awk '{ t = $1; $1 = ""; sub(/ [a-z_]+=.*$/, ""); n[$0]++; if (!($0 in f)) f[$0] = t; l[$0] = t }
           END { for (k in n) printf "%8d %s  (%s .. %s)\n", n[k], k, f[k], l[k] }' \
    | sort -rn | sed -n '1,10p'
fi
exit "$status"
