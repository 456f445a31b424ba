#!/usr/bin/env bash
# The project's one test command: makes sure the local servers the tests talk
# to are installed and running, then runs every test of the workspace.
#
#   scripts/test.sh                  # everything
#   scripts/test.sh -p adapters      # extra arguments go to `cargo test`
#
# Needs: the Rust toolchain, python3 (3.11 or newer, with venv) and
# PostgreSQL on 127.0.0.1:5432 with trust auth (started here if it is
# installed but stopped). Set MARKETPLACE_TEST_POSTGRES_URL to use another
# server. Quiet unless something needs attention.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

venv="$root/.venv-services"
requirements="$root/scripts/requirements-services.txt"

say() { printf 'scripts/test.sh: %s\n' "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}

# Runs a command silently; shows its output only if it fails.
quietly() {
	local log status=0
	log="$(mktemp)"
	"$@" >"$log" 2>&1 || status=$?
	if [[ $status -ne 0 ]]; then
		cat "$log" >&2
	fi
	rm -f "$log"
	return "$status"
}

# --- PyPI services, in a virtual environment inside the ignored build area ---
setup_services_venv() {
	command -v python3 >/dev/null || die "python3 is required (3.11 or newer)"

	# A venv whose interpreter no longer runs (python upgraded, copied clone)
	# is rebuilt from scratch.
	if [[ -e "$venv" ]] && ! "$venv/bin/python" -c '' >/dev/null 2>&1; then
		rm -rf "$venv"
	fi
	if [[ ! -x "$venv/bin/python" ]]; then
		quietly python3 -m venv "$venv" ||
			die "could not create $venv (on Debian: apt-get install python3-venv)"
	fi

	# Install only when the pinned list changed since the last install.
	local want stamp="$venv/.requirements.sha256"
	want="$(sha256sum "$requirements" | cut -d' ' -f1)"
	if [[ ! -x "$venv/bin/aiosmtpd" || ! -x "$venv/bin/moto_server" || ! -x "$venv/bin/localstripe" ||
		! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
		quietly "$venv/bin/python" -m pip install --quiet --no-input \
			--disable-pip-version-check -r "$requirements" ||
			die "pip install -r scripts/requirements-services.txt failed"
		printf '%s\n' "$want" >"$stamp"
	fi
	[[ -x "$venv/bin/aiosmtpd" ]] || die "$venv/bin/aiosmtpd is missing after install"
	[[ -x "$venv/bin/moto_server" ]] || die "$venv/bin/moto_server is missing after install"
	[[ -x "$venv/bin/localstripe" ]] || die "$venv/bin/localstripe is missing after install"
}

# --- PostgreSQL ---
pg_reachable() {
	local host="$1" port="$2"
	if command -v pg_isready >/dev/null; then
		pg_isready -q -h "$host" -p "$port" -t 2
	else
		timeout 2 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null
	fi
}

ensure_postgres() {
	local url="$1" host port
	# postgres://[user[:password]@]host[:port][/db][?params]
	if [[ "$url" =~ ^postgres(ql)?://([^@/]*@)?([^:/?]+)(:([0-9]+))? ]]; then
		host="${BASH_REMATCH[3]}"
		port="${BASH_REMATCH[5]:-5432}"
	else
		die "MARKETPLACE_TEST_POSTGRES_URL is not a postgres:// URL: $url"
	fi
	pg_reachable "$host" "$port" && return 0

	if [[ "$host" == 127.0.0.1 || "$host" == localhost ]] &&
		command -v pg_ctlcluster >/dev/null && [[ -d /etc/postgresql ]]; then
		say "PostgreSQL is not answering on $host:$port; starting it"
		local version
		for version in $(ls /etc/postgresql); do
			quietly pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
		done
		local tries
		for tries in $(seq 1 30); do
			pg_reachable "$host" "$port" && return 0
			sleep 1
		done
	fi
	die "PostgreSQL is not reachable on $host:$port; start it (for example:" \
		"pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start)" \
		"or point MARKETPLACE_TEST_POSTGRES_URL at a running server"
}

command -v cargo >/dev/null || die "cargo is required (install the Rust toolchain)"

setup_services_venv
export MARKETPLACE_AIOSMTPD="${MARKETPLACE_AIOSMTPD:-$venv/bin/aiosmtpd}"
export MARKETPLACE_MOTO_SERVER="${MARKETPLACE_MOTO_SERVER:-$venv/bin/moto_server}"
export MARKETPLACE_LOCALSTRIPE="${MARKETPLACE_LOCALSTRIPE:-$venv/bin/localstripe}"

export MARKETPLACE_TEST_POSTGRES_URL="${MARKETPLACE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
ensure_postgres "$MARKETPLACE_TEST_POSTGRES_URL"

exec cargo test --workspace --locked "$@"
