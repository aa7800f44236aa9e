#!/usr/bin/env bash
# Builds the Kubernetes binaries from the Go module proxy, once, in ONE `go build`, and caches them
# by version:
#   ${LOADLAB_CACHE:-$HOME/.cache/loadlab}/bin/kube-apiserver-<version>, etcd-<version>
#     the operator tests' control plane (like controller-runtime's envtest: no kubelet, no
#     controllers; sandbox/src/control-plane.ts starts them);
#   .../bin/kube-controller-manager-, kube-scheduler-, kubelet-, kube-proxy-<version>
#     the rest of the local one-host cluster (scripts/local-cluster/).
# Idempotent: when every versioned binary exists it prints one line and exits.
#
# One build, because the six binaries share most of their packages (client-go, apimachinery, the
# API types, grpc, etcd's client, ...): one `go build` of every cmd compiles each shared package
# once. etcd is the version k8s.io/kubernetes' own go.mod requires, so adding it changes no
# dependency version of the Kubernetes binaries (their build list is the release's) and its
# packages shared with kube-apiserver compile once too.
#
# `go install k8s.io/kubernetes/cmd/kube-apiserver@...` does not work, because k8s.io/kubernetes
# replaces its staging modules (k8s.io/api, k8s.io/apiserver, ...) with local directories. The
# throwaway module below requires k8s.io/kubernetes and replaces every staging module it names with
# the published k8s.io/<module> v0.<minor>.<patch>; the list is read from k8s.io/kubernetes' own
# go.mod, so it follows the pinned version.
set -euo pipefail

KUBE_VERSION=v1.33.13   # k8s.io/kubernetes (cmd/kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy)
ETCD_VERSION=v3.5.21    # go.etcd.io/etcd/server/v3: the version k8s.io/kubernetes@KUBE_VERSION requires (checked below)

CACHE="${LOADLAB_CACHE:-$HOME/.cache/loadlab}"
BIN_DIR="$CACHE/bin"
CMDS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)

say() { printf 'control-plane: %s\n' "$*"; }
die() { printf 'control-plane: error: %s\n' "$*" >&2; exit 1; }

missing=()
for c in "${CMDS[@]}"; do [ -x "$BIN_DIR/$c-$KUBE_VERSION" ] || missing+=("$c"); done
[ -x "$BIN_DIR/etcd-$ETCD_VERSION" ] || missing+=(etcd)
if [ ${#missing[@]} -eq 0 ]; then
  say "Kubernetes $KUBE_VERSION (${CMDS[*]}) and etcd $ETCD_VERSION: cached in $BIN_DIR"
  exit 0
fi

command -v go >/dev/null 2>&1 ||
  die "go is not installed: Kubernetes $KUBE_VERSION and etcd $ETCD_VERSION are built from the Go module proxy and need Go >= 1.26: install it (https://go.dev/dl or your package manager), then run 'npm run setup' again"

mkdir -p "$BIN_DIR"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/loadlab-control-plane.XXXXXX")
cleanup() {
  # Go's module cache marks files read-only; make the temp tree writable before removing it.
  chmod -R u+w "$tmp" 2>/dev/null || true
  rm -rf "$tmp"
  rm -f "$BIN_DIR"/.*.partial.$$
}
trap cleanup EXIT
# Runs a go command quietly (its output goes to a log), showing the log when it fails.
quiet() {
  local log
  log=$(mktemp "$tmp/go-log.XXXXXX")
  if ! "$@" >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    die "failed: $*"
  fi
}

export CGO_ENABLED=0
export GOFLAGS="-buildvcs=false -mod=mod"
# k8s.io/kubernetes pins its own toolchain in go.mod only as a suggestion; use the local Go unless
# the caller chose another (e.g. GOTOOLCHAIN=go1.25.5 when a newer Go cannot build the pinned
# version).
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
start=$SECONDS

# --- the throwaway module: resolve and download (network-bound) -----------------------------------
minor_patch=${KUBE_VERSION#v1.}            # 33.13
staging_version="v0.$minor_patch"          # v0.33.13
module_dir="$tmp/kubernetes"
say "resolving k8s.io/kubernetes@$KUBE_VERSION (${CMDS[*]}) and etcd $ETCD_VERSION, downloading their modules"
mkdir -p "$module_dir"
(
  cd "$module_dir"
  quiet go mod init loadlab.invalid/kubernetes-build

  kube_gomod=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
  if [ -z "$kube_gomod" ] || [ ! -f "$kube_gomod" ]; then
    die "could not download k8s.io/kubernetes@$KUBE_VERSION's go.mod from the Go module proxy"
  fi
  required_etcd=$(sed -n 's#^[[:space:]]*go\.etcd\.io/etcd/server/v3 \(v[0-9.]*\).*#\1#p' "$kube_gomod")
  [ "$required_etcd" = "$ETCD_VERSION" ] ||
    die "k8s.io/kubernetes@$KUBE_VERSION requires etcd ${required_etcd:-(none)}, but ETCD_VERSION is $ETCD_VERSION: set ETCD_VERSION to $required_etcd in $0 (the two are built from one build list)"

  # The staging modules: every 'k8s.io/<m> => ./staging/src/k8s.io/<m>' in k8s.io/kubernetes' go.mod.
  mapfile -t staging < <(sed -n 's#^[[:space:]]*\(k8s\.io/[a-z0-9-]*\) => \./staging/src/.*#\1#p' "$kube_gomod")
  [ ${#staging[@]} -gt 0 ] || die "found no staging modules in k8s.io/kubernetes@$KUBE_VERSION's go.mod"
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

  gets=()
  for c in "${CMDS[@]}"; do gets+=("k8s.io/kubernetes/cmd/$c@$KUBE_VERSION"); done
  gets+=("go.etcd.io/etcd/server/v3@$ETCD_VERSION")
  quiet go get "${gets[@]}"
  # Adding etcd must not move any version: the Kubernetes build list stays the release's.
  got_etcd=$(go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
  [ "$got_etcd" = "$ETCD_VERSION" ] || die "the build list moved etcd to $got_etcd (expected $ETCD_VERSION)"
)
say "modules resolved and downloaded in $((SECONDS - start))s"

# --- one go build of every binary ------------------------------------------------------------------
# What hack/lib/version.sh stamps into release builds (--version, GET /version), and etcd's.
build_date=$(date -u +'%Y-%m-%dT%H:%M:%SZ')
ldflags="-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=module-proxy"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=${minor_patch%%.*}"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
done
pkgs=()
for c in "${CMDS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
pkgs+=(go.etcd.io/etcd/server/v3)
say "compiling ${CMDS[*]} and etcd in one go build (cold: about 15 minutes on 2 cores; the output is cached)"
t=$SECONDS
(
  cd "$module_dir"
  quiet nice -n 10 go build -trimpath -ldflags "$ldflags" -o "$tmp/out/" "${pkgs[@]}"
)
for c in "${CMDS[@]}"; do
  mv -f "$tmp/out/$c" "$BIN_DIR/.$c.partial.$$"
  mv -f "$BIN_DIR/.$c.partial.$$" "$BIN_DIR/$c-$KUBE_VERSION"
done
# etcd's main package is its module root go.etcd.io/etcd/server/v3: go build names it "server".
mv -f "$tmp/out/server" "$BIN_DIR/.etcd.partial.$$"
mv -f "$BIN_DIR/.etcd.partial.$$" "$BIN_DIR/etcd-$ETCD_VERSION"
say "compiled in $((SECONDS - t))s"

say "ready: $("$BIN_DIR/kube-apiserver-$KUBE_VERSION" --version), etcd $("$BIN_DIR/etcd-$ETCD_VERSION" --version | sed -n 's/^etcd Version: //p') in $BIN_DIR ($((SECONDS - start))s)"
