#!/usr/bin/env bash
# Installs and builds what the local one-host cluster runs, once; a second run prints one line per
# cached thing and takes seconds.
#   - Debian packages (apt-get, idempotent): containerd, runc, the CNI plugins, iptables, ipset,
#     conntrack, openssl, debootstrap and buildah (images), iproute2, util-linux.
#   - From the Go module proxy, into ${LOADLAB_CACHE:-~/.cache/loadlab}/bin/<name>-<version>:
#       kube-apiserver and etcd (scripts/build-control-plane.sh: the operator tests' control plane);
#       kube-controller-manager, kube-scheduler, kubelet, kube-proxy: ONE `go build` of the four
#         cmds (their shared packages compile once; the apiserver's build cache makes it cheaper);
#       coredns, kube-router (NetworkPolicy), prometheus-operator + prometheus-config-reloader,
#         Prometheus (Debian's lacks Kubernetes service discovery), and
#         pause (scripts/local-cluster/pause, versioned by its hash).
#   - prometheus-operator's CRDs and RBAC examples, copied from its module into the cache.
# Builds run one at a time under `nice -n 10` (the machine is shared).
set -euo pipefail
LOG_PREFIX=build
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

start_all=$SECONDS
DEBIAN_PACKAGES=(containerd runc containernetworking-plugins iptables ipset conntrack iproute2
  util-linux openssl debootstrap buildah)

# --- Debian packages -----------------------------------------------------------------------------
missing=()
for p in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  say "Debian packages: cached (${DEBIAN_PACKAGES[*]})"
else
  command -v apt-get >/dev/null || die "missing Debian packages ${missing[*]} and no apt-get: this cluster is built for Debian 12"
  need_root "apt-get install ${missing[*]}"
  say "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The containerd package starts a system service where there is an init system; the cluster
  # starts one containerd per node with its own root, state and socket instead.
fi

# --- Go builds -----------------------------------------------------------------------------------
command -v go >/dev/null 2>&1 ||
  die "go is not installed: the cluster's binaries are built from the Go module proxy (Go >= 1.26)"
export CGO_ENABLED=0 GOFLAGS="-buildvcs=false -mod=mod" GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
mkdir -p "$BIN_DIR" "$LC_CACHE"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/loadlab-local-cluster-build.XXXXXX")
cleanup() { chmod -R u+w "$tmp" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

# Runs a command with its output in a log, printing the log only when it fails.
quiet() {
  local log
  log=$(mktemp "$tmp/log.XXXXXX")
  if ! "$@" >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    die "failed: $*"
  fi
}

# build_go NAME "MODULE@VERSION" "LDFLAGS" "OUT_NAME=PACKAGE"...
# One throwaway module that requires MODULE at VERSION (its own go.mod decides every dependency
# version, as in its release), then one `go build` of all the PACKAGEs into a temp dir; each binary
# is then moved to its versioned name OUT_NAME in $BIN_DIR.
build_go() {
  local name=$1 modver=$2 ldflags=$3; shift 3
  local dir="$tmp/$name" out="$tmp/$name-out" pkgs=() gets=() spec
  mkdir -p "$dir" "$out"
  for spec in "$@"; do pkgs+=("${spec#*=}"); gets+=("${spec#*=}@${modver#*@}"); done
  (
    cd "$dir"
    quiet go mod init "loadlab.invalid/$name-build"
    # The module's own version replacements (not its local-directory ones) apply to its release
    # build, but a main module ignores a dependency's replace directives: repeat them here.
    local gomod edits=()
    gomod=$(go mod download -json "$modver" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
    [ -f "$gomod" ] || die "could not download $modver's go.mod from the Go module proxy"
    while read -r from to; do
      edits+=(-replace "$from=$to")
    done < <(awk '/^replace \(/ {r=1; next} r && /^\)/ {r=0} /^replace / && !/\(/ {sub(/^replace /, ""); print_it=1}
                 (r || print_it) && /=>/ {split($0, a, "=>"); gsub(/^[ \t]+|[ \t]+$/, "", a[1]); gsub(/^[ \t]+|[ \t]+$/, "", a[2]);
                   n1 = split(a[1], f, " "); n2 = split(a[2], t, " ");
                   if (t[1] !~ /^\./ && n2 == 2) print (n1 == 2 ? f[1] "@" f[2] : f[1]), t[1] "@" t[2] }
                 {print_it=0}' "$gomod")
    if [ ${#edits[@]} -gt 0 ]; then go mod edit "${edits[@]}"; fi
    say "$name: resolving ${modver} and downloading its modules"
    quiet go get "${gets[@]}"
    say "$name: compiling ${pkgs[*]}"
    quiet nice -n 10 go build -trimpath -ldflags "$ldflags" -o "$out/" "${pkgs[@]}"
  )
  for spec in "$@"; do
    local target="${spec%%=*}" base
    base=$(basename "${spec#*=}")
    mv -f "$out/$base" "$target"
  done
}

all_exist() { local f; for f in "$@"; do [ -x "$f" ] || return 1; done; }

# kube-apiserver + etcd: the project's own script (same version, same recipe, same cache).
if all_exist "$APISERVER_BIN" "$ETCD_BIN"; then
  say "kube-apiserver $KUBE_VERSION, etcd $ETCD_VERSION: cached"
else
  bash "$REPO_ROOT/scripts/build-control-plane.sh"
fi

# kube-controller-manager, kube-scheduler, kubelet, kube-proxy: one go build. The recipe of
# scripts/build-control-plane.sh: k8s.io/kubernetes replaces its staging modules with local
# directories, so the throwaway module replaces each with the published k8s.io/<m> v0.<minor>.<patch>
# (the list read from k8s.io/kubernetes' own go.mod).
if all_exist "$CONTROLLER_MANAGER_BIN" "$SCHEDULER_BIN" "$KUBELET_BIN" "$KUBE_PROXY_BIN"; then
  say "kube-controller-manager, kube-scheduler, kubelet, kube-proxy $KUBE_VERSION: cached"
else
  t=$SECONDS
  say "building kube-controller-manager, kube-scheduler, kubelet, kube-proxy $KUBE_VERSION (one go build)"
  dir="$tmp/kubernetes"; mkdir -p "$dir" "$tmp/kubernetes-out"
  (
    cd "$dir"
    quiet go mod init loadlab.invalid/kubernetes-build
    kube_gomod=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" |
      sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
    [ -f "$kube_gomod" ] || die "could not download k8s.io/kubernetes@$KUBE_VERSION's go.mod from the Go module proxy"
    mapfile -t staging < <(sed -n 's#^[[:space:]]*\(k8s\.io/[a-z0-9-]*\) => \./staging/src/.*#\1#p' "$kube_gomod")
    [ ${#staging[@]} -gt 0 ] || die "found no staging modules in k8s.io/kubernetes@$KUBE_VERSION's go.mod"
    minor_patch=${KUBE_VERSION#v1.}
    edits=(-require "k8s.io/kubernetes@$KUBE_VERSION")
    for m in "${staging[@]}"; do edits+=(-replace "$m=$m@v0.$minor_patch"); done
    kube_go=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$kube_gomod")
    kube_godebug=$(sed -n 's/^godebug \(default=go[0-9.]*\)$/\1/p' "$kube_gomod")
    if [ -n "$kube_go" ]; then edits+=(-go "$kube_go"); fi
    if [ -n "$kube_godebug" ]; then edits+=(-godebug "$kube_godebug"); fi
    go mod edit "${edits[@]}"
    cmds=(kube-controller-manager kube-scheduler kubelet kube-proxy)
    gets=(); pkgs=()
    for c in "${cmds[@]}"; do
      pkgs+=("k8s.io/kubernetes/cmd/$c"); gets+=("k8s.io/kubernetes/cmd/$c@$KUBE_VERSION")
    done
    say "kubernetes: resolving ${#staging[@]} staging modules at v0.$minor_patch and downloading"
    quiet go get "${gets[@]}"
    build_date=$(date -u +'%Y-%m-%dT%H:%M:%SZ')
    ldflags="-s -w"
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=${minor_patch%%.*}"
      ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
    done
    say "kubernetes: compiling ${cmds[*]}"
    quiet nice -n 10 go build -trimpath -ldflags "$ldflags" -o "$tmp/kubernetes-out/" "${pkgs[@]}"
  )
  for c in kube-controller-manager kube-scheduler kubelet kube-proxy; do
    mv -f "$tmp/kubernetes-out/$c" "$(kube_bin "$c")"
  done
  say "built kube-controller-manager, kube-scheduler, kubelet, kube-proxy in $(elapsed "$t")"
fi

if all_exist "$COREDNS_BIN"; then
  say "coredns $COREDNS_VERSION: cached"
else
  t=$SECONDS
  build_go coredns "github.com/coredns/coredns@$COREDNS_VERSION" \
    "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION" \
    "$COREDNS_BIN=github.com/coredns/coredns"
  say "built coredns $COREDNS_VERSION in $(elapsed "$t")"
fi

if all_exist "$KUBE_ROUTER_BIN"; then
  say "kube-router $KUBE_ROUTER_VERSION: cached"
else
  t=$SECONDS
  build_go kube-router "github.com/cloudnativelabs/kube-router/v2@$KUBE_ROUTER_VERSION" \
    "-s -w -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$KUBE_ROUTER_VERSION" \
    "$KUBE_ROUTER_BIN=github.com/cloudnativelabs/kube-router/v2/cmd/kube-router"
  say "built kube-router $KUBE_ROUTER_VERSION in $(elapsed "$t")"
fi

if all_exist "$PROMETHEUS_OPERATOR_BIN" "$CONFIG_RELOADER_BIN"; then
  say "prometheus-operator, prometheus-config-reloader $PROMETHEUS_OPERATOR_VERSION: cached"
else
  t=$SECONDS
  v=${PROMETHEUS_OPERATOR_VERSION#v}
  build_go prometheus-operator "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" \
    "-s -w -X github.com/prometheus/common/version.Version=$v -X github.com/prometheus/common/version.Revision=module-proxy -X github.com/prometheus/common/version.Branch=v$v" \
    "$PROMETHEUS_OPERATOR_BIN=github.com/prometheus-operator/prometheus-operator/cmd/operator" \
    "$CONFIG_RELOADER_BIN=github.com/prometheus-operator/prometheus-operator/cmd/prometheus-config-reloader"
  say "built prometheus-operator and prometheus-config-reloader $PROMETHEUS_OPERATOR_VERSION in $(elapsed "$t")"
fi

if all_exist "$PROMETHEUS_BIN"; then
  say "prometheus $PROMETHEUS_VERSION: cached"
else
  t=$SECONDS
  v=${PROMETHEUS_VERSION#v}
  build_go prometheus "github.com/prometheus/prometheus@$(prometheus_module_version)" \
    "-s -w -X github.com/prometheus/common/version.Version=$v -X github.com/prometheus/common/version.Revision=module-proxy -X github.com/prometheus/common/version.Branch=v$v" \
    "$PROMETHEUS_BIN=github.com/prometheus/prometheus/cmd/prometheus"
  say "built prometheus $PROMETHEUS_VERSION in $(elapsed "$t") (no web UI assets: the HTTP API only)"
fi

if all_exist "$PAUSE_BIN"; then
  say "pause $PAUSE_VERSION: cached"
else
  (cd "$LC_DIR/pause" && GOFLAGS=-buildvcs=false nice -n 10 go build -trimpath -ldflags "-s -w" -o "$tmp/pause" .)
  mv -f "$tmp/pause" "$PAUSE_BIN"
  say "built pause $PAUSE_VERSION (scripts/local-cluster/pause)"
fi

# prometheus-operator's CRDs and RBAC, as its release ships them, from the module cache.
if [ -f "$PROMETHEUS_OPERATOR_MANIFESTS/.complete" ]; then
  say "prometheus-operator $PROMETHEUS_OPERATOR_VERSION CRDs and RBAC: cached"
else
  moddir=$(go mod download -json "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
  [ -d "$moddir/example/prometheus-operator-crd" ] || die "no example/prometheus-operator-crd in $moddir"
  rm -rf "$PROMETHEUS_OPERATOR_MANIFESTS"; mkdir -p "$PROMETHEUS_OPERATOR_MANIFESTS/crd" "$PROMETHEUS_OPERATOR_MANIFESTS/rbac"
  cp "$moddir"/example/prometheus-operator-crd/*.yaml "$PROMETHEUS_OPERATOR_MANIFESTS/crd/"
  cp "$moddir"/example/rbac/prometheus-operator/prometheus-operator-cluster-role.yaml \
     "$moddir"/example/rbac/prometheus/prometheus-cluster-role.yaml "$PROMETHEUS_OPERATOR_MANIFESTS/rbac/"
  chmod -R u+w "$PROMETHEUS_OPERATOR_MANIFESTS"
  touch "$PROMETHEUS_OPERATOR_MANIFESTS/.complete"
  say "copied prometheus-operator $PROMETHEUS_OPERATOR_VERSION CRDs and RBAC to $PROMETHEUS_OPERATOR_MANIFESTS"
fi

say "ready in $(elapsed "$start_all"): Kubernetes $KUBE_VERSION, etcd $ETCD_VERSION, CoreDNS $COREDNS_VERSION, kube-router $KUBE_ROUTER_VERSION, prometheus-operator $PROMETHEUS_OPERATOR_VERSION, Prometheus $PROMETHEUS_VERSION, pause $PAUSE_VERSION (in $BIN_DIR)"
