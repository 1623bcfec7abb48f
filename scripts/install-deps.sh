#!/usr/bin/env bash
# Installs the Debian packages healer builds and tests with, and the npm
# packages its test peers use. Idempotent: does nothing when all are present.
# Usage: scripts/install-deps.sh [--build-only]
set -euo pipefail
cd "$(dirname "$0")/.."

build_pkgs=(
	meson ninja-build pkg-config gcc clang libclang-rt-14-dev
	libmicrohttpd-dev libcurl4-openssl-dev libjansson-dev libvectorscan-dev
	libpcre2-dev libsqlite3-dev libpq-dev libssl-dev libyaml-dev libcmocka-dev zlib1g-dev liblz4-dev
)
test_pkgs=(
	nodejs npm python3 openssl curl postgresql postgresql-client prometheus python3-aiosmtpd cmark-gfm
	chromium
)
bench_pkgs=(wrk webhook nginx-light ripgrep)

want=("${build_pkgs[@]}")
if [ "${1:-}" != "--build-only" ]; then
	want+=("${test_pkgs[@]}" "${bench_pkgs[@]}")
fi

missing=()
for p in "${want[@]}"; do
	# nodejs/npm may come from outside Debian on this image: accept a working binary
	case "$p" in
	nodejs) command -v node >/dev/null 2>&1 && continue ;;
	npm) command -v npm >/dev/null 2>&1 && continue ;;
	esac
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "install-deps: missing Debian packages: ${missing[*]} (run as root to install)" >&2
		exit 1
	fi
	echo "install-deps: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null || true
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	# Debian starts some services on install; the tests start their own.
	for s in nginx prometheus postgresql webhook; do
		(systemctl stop "$s" || service "$s" stop) >/dev/null 2>&1 || true
	done
fi

# npm packages of tests/node/package.json (test peers, YAML, schemas)
npm_pkgs=(handlebars @octokit/webhooks-examples @octokit/webhooks-methods kubernetes-models yaml ajv
	playwright-core)
npm_missing=0
for p in "${npm_pkgs[@]}"; do
	[ -d "tests/node/node_modules/$p" ] || npm_missing=1
done
if [ "${1:-}" != "--build-only" ] && [ "$npm_missing" -eq 1 ]; then
	echo "install-deps: installing npm test peers" >&2
	(cd tests/node && npm install --no-audit --no-fund --silent >/dev/null)
fi
