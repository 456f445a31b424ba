#!/usr/bin/env bash
# Checkouts per second end to end on PostgreSQL, beside pgbench on the same
# machine in the same run. Builds the release binaries, creates a fresh
# database for the marketplace on the local PostgreSQL, seeds buyers (with
# long-lived tokens) and sellers with one active gig each, starts
# `marketplace serve` on it (development payment provider, log level warn),
# runs `loadgen checkout` (each client places and pays orders in a loop:
# `POST /api/v1/checkout` with a test card), then initialises a separate
# pgbench database and runs pgbench's TPC-B-like test with as many clients
# for as long. Prints both rates and their ratio, and the machine. Both
# databases and the server are removed at exit.
#
#   scripts/bench-checkout.sh                            # 16 clients, 20 s each
#   CLIENTS=4 DURATION_SECS=5 scripts/bench-checkout.sh  # a quick run
#
# Settings (environment): CLIENTS (16), DURATION_SECS (20), WARMUP_SECS (2,
# before loadgen's measured window), BUYERS (1000), GIGS (100),
# PGBENCH_SCALE (10), PGBENCH_JOBS (2), POOL (the server's database pool;
# default: its own default), PG_URL (postgres://postgres@127.0.0.1:5432/postgres,
# the server to create the databases on), KEEP=1 keeps the work directory
# (server log, token and gig files).
#
# Progress and each tool's full output go to stderr; the summary to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

clients=${CLIENTS:-16}
duration_secs=${DURATION_SECS:-20}
warmup_secs=${WARMUP_SECS:-2}
buyers=${BUYERS:-1000}
gigs=${GIGS:-100}
scale=${PGBENCH_SCALE:-10}
jobs=${PGBENCH_JOBS:-2}
pg_url=${PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}

die() {
  echo "bench-checkout: $*" >&2
  exit 1
}
for tool in psql pgbench; do
  command -v "$tool" >/dev/null ||
    die "$tool is missing; on Debian or Ubuntu: apt-get install -y postgresql-client (pgbench ships with it; postgresql-contrib on older releases)"
done
[[ $pg_url =~ ^(postgres(ql)?://[^/?]*)(/[^?]*)?(\?.*)?$ ]] || die "PG_URL is not a postgres:// URL: $pg_url"
pg_server=${BASH_REMATCH[1]}
psql "$pg_url" -XqAtc 'select 1' >/dev/null 2>&1 ||
  die "PostgreSQL does not answer at $pg_url (trust auth expected; start it with: pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start)"

echo "building release binaries..." >&2
cargo build --release --locked -p gateway --bin marketplace -p load-tests --bin loadgen >&2
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
marketplace="$target_dir/release/marketplace"
loadgen="$target_dir/release/loadgen"

work=$(mktemp -d "${TMPDIR:-/tmp}/marketplace-bench.XXXXXX")
suffix="$(date +%s)_$$"
app_db="bench_checkout_$suffix"
pgbench_db="bench_pgbench_$suffix"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
pid=
created=()
cleanup() {
  if [[ -n $pid ]]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  for db in "${created[@]}"; do
    psql "$pg_url" -XqAtc "drop database if exists \"$db\" with (force)" >/dev/null 2>&1 ||
      echo "bench-checkout: could not drop database $db" >&2
  done
  if [[ ${KEEP:-0} == 1 ]]; then
    echo "kept $work (server.log, tokens.txt, gigs.txt)" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

psql "$pg_url" -XqAtc "create database \"$app_db\"" >&2
created+=("$app_db")

unset MARKETPLACE_CONFIG
export MARKETPLACE_DATABASE__URL="$pg_server/$app_db"
export MARKETPLACE_SERVER__DATA_DIR="$work/data"
export MARKETPLACE_SERVER__LISTEN="127.0.0.1:$port"
export MARKETPLACE_SERVER__PUBLIC_URL="http://127.0.0.1:$port"
export MARKETPLACE_PAYMENTS__PROVIDER=dev
export MARKETPLACE_LOG__FILTER="${MARKETPLACE_LOG__FILTER:-warn}"
[[ -n ${POOL:-} ]] && export MARKETPLACE_DATABASE__MAX_CONNECTIONS="$POOL"
# Run from the work directory so that no ./marketplace.toml is picked up.
cd "$work"

echo "seeding $buyers buyers and $gigs sellers with a gig each..." >&2
seed_out=$("$marketplace" seed --load-users "$buyers" --tokens-out "$work/tokens.txt" \
  --load-gigs "$gigs" --gigs-out "$work/gigs.txt" --token-ttl-secs 7200)
echo "$seed_out" >&2

"$marketplace" serve >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/server.log" >&2; die "the server stopped"; }
  sleep 0.1
done
curl -fs "http://127.0.0.1:$port/readyz" >/dev/null || die "the server is not ready"

status=0
# Other work on the machine skews either figure: note the load before each.
load_before_checkout=$(cut -d' ' -f1-3 /proc/loadavg)
checkout_cmd=("$loadgen" checkout --url "http://127.0.0.1:$port" --tokens "$work/tokens.txt"
  --gigs "$work/gigs.txt" --clients "$clients" --duration-secs "$duration_secs"
  --warmup-secs "$warmup_secs" --server-pid "$pid")
echo "== $(date -u +%T) ${checkout_cmd[*]}" >&2
checkout_out=$("${checkout_cmd[@]}") || status=$?
echo "$checkout_out" >&2
if ! kill -0 "$pid" 2>/dev/null; then
  echo "the server died during the test; its log:" >&2
  tail -50 "$work/server.log" >&2
  status=1
fi
kill "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
pid=
sed -e 's/\x1b\[[0-9;]*m//g' "$work/server.log" >"$work/server.plain.log"
warnings=$(grep -c -E '^\S+ +(WARN|ERROR) ' "$work/server.plain.log" || true)

psql "$pg_url" -XqAtc "create database \"$pgbench_db\"" >&2
created+=("$pgbench_db")
pgbench_url="$pg_server/$pgbench_db"
echo "== $(date -u +%T) pgbench -i -s $scale" >&2
pgbench -i -q -s "$scale" "$pgbench_url" >&2
load_before_pgbench=$(cut -d' ' -f1-3 /proc/loadavg)
pgbench_cmd=(pgbench -c "$clients" -j "$jobs" -T "$duration_secs" "$pgbench_url")
echo "== $(date -u +%T) ${pgbench_cmd[*]}" >&2
pgbench_out=$("${pgbench_cmd[@]}" 2>&1) || status=$?
echo "$pgbench_out" >&2

checkouts_per_sec=$(awk '/^throughput:/ {print $2; exit}' <<<"$checkout_out")
tps=$(awk '/^tps = / {print $3; exit}' <<<"$pgbench_out")
if [[ -n $checkouts_per_sec && -n $tps ]]; then
  ratio=$(awk -v a="$checkouts_per_sec" -v b="$tps" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }')
else
  ratio="-"
  status=1
fi

cat <<EOF

== machine
$(nproc) CPUs ($(awk -F: '/model name/ {gsub(/^ +/, "", $2); print $2; exit}' /proc/cpuinfo)), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) memory, kernel $(uname -r); $(psql "$pg_url" -XqAtc 'show server_version' 2>/dev/null | sed 's/^/PostgreSQL /')
== seed
$seed_out
== checkout ($clients clients, ${warmup_secs} s warmup, ${duration_secs} s measured; load average before: $load_before_checkout)
$(grep -E '^(checkout:|checkouts|throughput|checkout latency|errors|server RSS|no checkout)|^ +[0-9]+  ' <<<"$checkout_out" || true)
== pgbench (TPC-B-like, scale $scale, $clients clients, $jobs threads, ${duration_secs} s; load average before: $load_before_pgbench)
$(grep -E '^(number of transactions actually processed|number of failed|latency average|tps)' <<<"$pgbench_out" || true)
== server log: $warnings warning/error lines
$(grep -E '^\S+ +(WARN|ERROR) ' "$work/server.plain.log" | sed -n '1,5p' || true)
== result
checkouts/s          ${checkouts_per_sec:--}
pgbench tps          ${tps:--}
checkouts/s ÷ tps    $ratio
EOF
exit "$status"
