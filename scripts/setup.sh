#!/usr/bin/env bash
# Installs what loadlab's tests and local mode need, idempotently; a second run takes seconds.
#   - Debian packages: PostgreSQL (server binaries for throwaway test clusters), Prometheus and its
#     exporters (local mode and the analysis tests), shellcheck (lint), Chromium (tests only: the
#     reports checked in a real browser).
#   - npm dependencies, including Node 24 from the npm package `node` (the machine's Node may be older).
#   - for the tests only: the Kubernetes binaries and the local one-host cluster the tests run on
#     (scripts/local-cluster/build.sh: kube-apiserver and etcd for the operator's tests, the rest of
#     the cluster, from the Go module proxy; images.sh: its images, with buildah). Cached under
#     ${LOADLAB_CACHE:-~/.cache/loadlab}: a cold build takes about 30 minutes on 2 cores (see
#     scripts/local-cluster/README.md), a warm one seconds.
#
# --local: only what local mode (`loadlab run`) needs; skips everything Kubernetes.
set -euo pipefail
cd "$(dirname "$0")/.."
for_tests=1
[ "${1:-}" = "--local" ] && for_tests=0

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# --- Debian packages ---------------------------------------------------------------------------
SCHEMATHESIS_VERSION=4.32.5
need_pkgs=()
latest_pg_bin() { local d found=""; for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && found=$d; done; echo "$found"; }
pg_bin=$(latest_pg_bin)
[ -n "$pg_bin" ] || need_pkgs+=(postgresql)
command -v prometheus >/dev/null || need_pkgs+=(prometheus)
command -v prometheus-postgres-exporter >/dev/null || need_pkgs+=(prometheus-postgres-exporter)
command -v prometheus-node-exporter >/dev/null || need_pkgs+=(prometheus-node-exporter)
command -v shellcheck >/dev/null || need_pkgs+=(shellcheck)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_pkgs+=(python3-venv)
# The tests open the HTML reports in a real browser (operator/test/report-browser.test.ts).
[ "$for_tests" = 1 ] && { command -v chromium >/dev/null || need_pkgs+=(chromium); }
if [ ${#need_pkgs[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || die "missing ${need_pkgs[*]} and no apt-get: install them with your package manager (PostgreSQL >= 15, Prometheus >= 2.42)"
  [ "$(id -u)" = 0 ] || die "missing ${need_pkgs[*]}: run 'sudo apt-get install -y ${need_pkgs[*]}' (or this script as root)"
  say "installing Debian packages: ${need_pkgs[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
  # The packages start system services; loadlab starts its own instances on free ports instead.
  for svc in postgresql prometheus prometheus-postgres-exporter prometheus-node-exporter; do
    (service "$svc" stop >/dev/null 2>&1 || true)
  done
fi

# --- npm dependencies (and Node 24) --------------------------------------------------------------
stamp=node_modules/.loadlab-installed
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  say "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  touch "$stamp"
fi
node_version=$(node_modules/.bin/node -v 2>/dev/null || true)
case "$node_version" in
  v24.*) ;;
  *) die "node_modules/.bin/node is '${node_version:-missing}', expected v24 (the npm package 'node' runs an install script: check that npm allows it, see package.json allowScripts)" ;;
esac

# --- Kubernetes and the local cluster (tests only) ----------------------------------------------------
if [ "$for_tests" = 1 ]; then
  [ "$(id -u)" = 0 ] || die "the tests run a real Kubernetes cluster on this machine (scripts/local-cluster/: network namespaces, cgroups, mounts, images built with buildah), which needs root: run 'npm test' as root"
  say "the Kubernetes binaries and the local cluster's (scripts/local-cluster/build.sh)"
  bash scripts/local-cluster/build.sh
  # Only the cluster tests (the last ones) need the images: they are built in the background (at
  # nice 10) while the other tests run, and scripts/local-cluster/up.sh waits for them.
  lc_cache="${LOADLAB_CACHE:-$HOME/.cache/loadlab}/local-cluster"
  mkdir -p "$lc_cache"
  rm -f "$lc_cache/images-build.status"
  : >"$lc_cache/images-build.pending"
  say "the local cluster's images: building in the background (scripts/local-cluster/images.sh; log $lc_cache/images-build.log)"
  (
    echo "$BASHPID" >"$lc_cache/images-build.pending"
    status=0
    bash scripts/local-cluster/images.sh >"$lc_cache/images-build.log" 2>&1 || status=$?
    echo "$status" >"$lc_cache/images-build.status"
    rm -f "$lc_cache/images-build.pending"
  ) </dev/null &
  # Schemathesis checks the API against its own OpenAPI document (api/test/openapi-conformance):
  # a Python tool (MIT), in a venv of its own in the cache, pinned.
  st_venv="${LOADLAB_CACHE:-$HOME/.cache/loadlab}/schemathesis"
  if [ "$("$st_venv/bin/st" --version 2>/dev/null)" != "st, version $SCHEMATHESIS_VERSION" ]; then
    say "Schemathesis $SCHEMATHESIS_VERSION (PyPI, in $st_venv)"
    python3 -m venv "$st_venv" || die "python3 -m venv failed: install python3-venv (apt-get install python3-venv)"
    "$st_venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
  fi
fi

say "ready (node $node_version, PostgreSQL in $(latest_pg_bin))"
