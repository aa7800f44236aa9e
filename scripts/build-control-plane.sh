#!/usr/bin/env bash
# Builds a real Kubernetes control plane for the operator's tests (like controller-runtime's envtest:
# kube-apiserver + etcd, no kubelet, no controllers) from the Go module proxy, once, and caches the
# binaries by version:
#   ${LOADLAB_CACHE:-$HOME/.cache/loadlab}/bin/kube-apiserver-<version>
#   ${LOADLAB_CACHE:-$HOME/.cache/loadlab}/bin/etcd-<version>
# Idempotent: when both versioned binaries exist it prints one line and exits. A cold build takes
# several minutes (kube-apiserver is the big one).
#
# `go install k8s.io/kubernetes/cmd/kube-apiserver@...` does not work, because k8s.io/kubernetes
# replaces its staging modules (k8s.io/api, k8s.io/apiserver, ...) with local directories. The
# throwaway module below requires k8s.io/kubernetes and replaces every staging module it names with
# the published k8s.io/<module> v0.<minor>.<patch>; the list is read from k8s.io/kubernetes' own
# go.mod, so it follows the pinned version.
set -euo pipefail

KUBE_VERSION=v1.33.13   # k8s.io/kubernetes (cmd/kube-apiserver)
ETCD_VERSION=v3.5.35    # go.etcd.io/etcd/server/v3

CACHE="${LOADLAB_CACHE:-$HOME/.cache/loadlab}"
BIN_DIR="$CACHE/bin"
APISERVER_BIN="$BIN_DIR/kube-apiserver-$KUBE_VERSION"
ETCD_BIN="$BIN_DIR/etcd-$ETCD_VERSION"

say() { printf 'control-plane: %s\n' "$*"; }
die() { printf 'control-plane: error: %s\n' "$*" >&2; exit 1; }
# Runs a go command quietly (its output goes to a log), showing the log when it fails.
quiet() {
  local log
  log=$(mktemp "$tmp/go-log.XXXXXX")
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2
    die "failed: $*"
  fi
}

if [ -x "$APISERVER_BIN" ] && [ -x "$ETCD_BIN" ]; then
  say "kube-apiserver $KUBE_VERSION and etcd $ETCD_VERSION already built in $BIN_DIR"
  exit 0
fi

command -v go >/dev/null 2>&1 ||
  die "go is not installed: kube-apiserver $KUBE_VERSION and etcd $ETCD_VERSION are built from the Go module proxy and need Go >= 1.26: install it (https://go.dev/dl or your package manager), then run 'npm run setup' again"

mkdir -p "$BIN_DIR"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/loadlab-control-plane.XXXXXX")
cleanup() {
  # Go's module cache marks files read-only; make the temp tree writable before removing it.
  chmod -R u+w "$tmp" 2>/dev/null || true
  rm -rf "$tmp"
  rm -f "$BIN_DIR"/.*.partial.$$
}
trap cleanup EXIT

export CGO_ENABLED=0
export GOFLAGS="-buildvcs=false -mod=mod"
# k8s.io/kubernetes pins its own toolchain in go.mod only as a suggestion; use the local Go unless
# the caller chose another (e.g. GOTOOLCHAIN=go1.25.5 when a newer Go cannot build the pinned
# version).
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
say "using $(go version)"
start=$SECONDS

# --- etcd ----------------------------------------------------------------------------------------
if [ ! -x "$ETCD_BIN" ]; then
  say "building etcd $ETCD_VERSION (go.etcd.io/etcd/server/v3; cached in $BIN_DIR)"
  mkdir -p "$tmp/etcd"
  (
    cd "$tmp/etcd"
    quiet go mod init loadlab.invalid/etcd-build
    say "resolving go.etcd.io/etcd/server/v3@$ETCD_VERSION and downloading its modules"
    quiet go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
    say "compiling go.etcd.io/etcd/server/v3"
    nice -n 10 go build -trimpath \
      -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=module-proxy" \
      -o "$BIN_DIR/.etcd.partial.$$" go.etcd.io/etcd/server/v3
  )
  mv -f "$BIN_DIR/.etcd.partial.$$" "$ETCD_BIN"
  say "built $ETCD_BIN ($((SECONDS - start))s so far)"
fi

# --- kube-apiserver ------------------------------------------------------------------------------
if [ ! -x "$APISERVER_BIN" ]; then
  say "building kube-apiserver $KUBE_VERSION (k8s.io/kubernetes; several minutes on a cold cache)"
  minor_patch=${KUBE_VERSION#v1.}            # 33.13
  staging_version="v0.$minor_patch"          # v0.33.13
  major=1
  minor=${minor_patch%%.*}
  mkdir -p "$tmp/apiserver"
  (
    cd "$tmp/apiserver"
    quiet go mod init loadlab.invalid/kube-apiserver-build

    kube_gomod=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" |
      sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
    if [ -z "$kube_gomod" ] || [ ! -f "$kube_gomod" ]; then
      die "could not download k8s.io/kubernetes@$KUBE_VERSION's go.mod from the Go module proxy"
    fi

    # The staging modules: every 'k8s.io/<m> => ./staging/src/k8s.io/<m>' in k8s.io/kubernetes' go.mod.
    mapfile -t staging < <(sed -n 's#^[[:space:]]*\(k8s\.io/[a-z0-9-]*\) => \./staging/src/.*#\1#p' "$kube_gomod")
    [ ${#staging[@]} -gt 0 ] || die "found no staging modules in k8s.io/kubernetes@$KUBE_VERSION's go.mod"
    say "replacing ${#staging[@]} staging modules with $staging_version"
    edits=(-require "k8s.io/kubernetes@$KUBE_VERSION")
    for m in "${staging[@]}"; do
      edits+=(-replace "$m=$m@$staging_version")
    done
    # Same language version and GODEBUG defaults as upstream's main module.
    kube_go=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$kube_gomod")
    kube_godebug=$(sed -n 's/^godebug \(default=go[0-9.]*\)$/\1/p' "$kube_gomod")
    if [ -n "$kube_go" ]; then edits+=(-go "$kube_go"); fi
    if [ -n "$kube_godebug" ]; then edits+=(-godebug "$kube_godebug"); fi
    go mod edit "${edits[@]}"

    say "resolving k8s.io/kubernetes/cmd/kube-apiserver@$KUBE_VERSION and downloading its modules"
    quiet go get "k8s.io/kubernetes/cmd/kube-apiserver@$KUBE_VERSION"

    # What hack/lib/version.sh stamps into release builds (kube-apiserver --version, GET /version).
    build_date=$(date -u +'%Y-%m-%dT%H:%M:%SZ')
    ldflags="-s -w"
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
      ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
    done
    say "compiling k8s.io/kubernetes/cmd/kube-apiserver"
    nice -n 10 go build -trimpath -ldflags "$ldflags" \
      -o "$BIN_DIR/.kube-apiserver.partial.$$" k8s.io/kubernetes/cmd/kube-apiserver
  )
  mv -f "$BIN_DIR/.kube-apiserver.partial.$$" "$APISERVER_BIN"
  say "built $APISERVER_BIN ($((SECONDS - start))s so far)"
fi

say "ready: $("$APISERVER_BIN" --version) and etcd $ETCD_VERSION in $BIN_DIR ($((SECONDS - start))s)"
