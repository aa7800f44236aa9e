#!/usr/bin/env bash
# Installs and builds what the local one-host cluster runs, once; a second run prints one line per
# cached thing and takes seconds.
#   - Debian packages (apt-get, idempotent): containerd, runc, the CNI plugins, iptables, ipset,
#     conntrack, openssl, debootstrap and buildah (images), iproute2, util-linux.
#   - From the Go module proxy, into ${LOADLAB_CACHE:-~/.cache/loadlab}/bin/<name>-<version>, in
#     six `go build`s (shared packages compile once within each):
#       Kubernetes (kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy)
#         and etcd: scripts/build-control-plane.sh, shared with the operator tests;
#       Prometheus (Kubernetes service discovery only: prometheus/plugins.go through -overlay);
#       prometheus-operator and prometheus-config-reloader;
#       CoreDNS with only the plugins the Corefile uses (coredns/main.go);
#       kube-router (NetworkPolicy);
#     and pause (scripts/local-cluster/pause, versioned by its hash).
#   - prometheus-operator's CRDs and RBAC examples, copied from its module into the cache.
# Every module is resolved and downloaded in the background at the start (network-bound); the
# compiles run one at a time under `nice -n 10` (the machine is shared; each uses every core).
# shellcheck source-path=SCRIPTDIR
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
prepare_pids=()
cleanup() {
  local pid
  for pid in "${prepare_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  chmod -R u+w "$tmp" 2>/dev/null || true
  rm -rf "$tmp"
}
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
all_exist() { local f; for f in "$@"; do [ -x "$f" ] || return 1; done; }
gomod_of() { go mod download -json "$1" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p'; }
moddir_of() { go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p'; }

# prepare_module NAME MODULE@VERSION GET...: a throwaway module in $tmp/NAME that requires MODULE at
# VERSION (its own go.mod decides every dependency version, as in its release), and `go get` of the
# packages GET (each PACKAGE@VERSION) to resolve and download what they need. Network-bound: every
# module is prepared in the background at the start, while the compiles run one at a time.
prepare_module() {
  local name=$1 modver=$2; shift 2
  local dir="$tmp/$name" gomod edits=()
  mkdir -p "$dir"
  cd "$dir"
  go mod init "loadlab.invalid/$name-build"
  # The module's own version replacements (not its local-directory ones) apply to its release
  # build, but a main module ignores a dependency's replace directives: repeat them here.
  gomod=$(gomod_of "$modver")
  [ -f "$gomod" ] || { echo "could not download $modver's go.mod from the Go module proxy" >&2; return 1; }
  while read -r from to; do
    edits+=(-replace "$from=$to")
  done < <(awk '/^replace \(/ {r=1; next} r && /^\)/ {r=0} /^replace / && !/\(/ {sub(/^replace /, ""); print_it=1}
               (r || print_it) && /=>/ {split($0, a, "=>"); gsub(/^[ \t]+|[ \t]+$/, "", a[1]); gsub(/^[ \t]+|[ \t]+$/, "", a[2]);
                 n1 = split(a[1], f, " "); n2 = split(a[2], t, " ");
                 if (t[1] !~ /^\./ && n2 == 2) print (n1 == 2 ? f[1] "@" f[2] : f[1]), t[1] "@" t[2] }
               {print_it=0}' "$gomod")
  if [ ${#edits[@]} -gt 0 ]; then go mod edit "${edits[@]}"; fi
  go get "$modver" "$@"
}
# start_prepare NAME MODULE@VERSION GET...: prepare_module in the background (log: $tmp/NAME.prepare.log).
declare -A prepare_pid_of=()
start_prepare() {
  local name=$1
  (prepare_module "$@") >"$tmp/$name.prepare.log" 2>&1 </dev/null &
  prepare_pid_of[$name]=$!
  prepare_pids+=($!)
}
# wait_prepared NAME: wait for its preparation; fail with its log.
wait_prepared() {
  local rc=0
  wait "${prepare_pid_of[$1]}" || rc=$?
  if [ "$rc" != 0 ]; then
    tail -n 60 "$tmp/$1.prepare.log" >&2
    die "$1: resolving and downloading its modules failed"
  fi
}
# compile NAME [go build flags...] -- PACKAGE...: one `go build` of the packages into $tmp/NAME-out/.
compile() {
  local name=$1 flags=(); shift
  while [ "$1" != -- ]; do flags+=("$1"); shift; done
  shift
  say "$name: compiling $*"
  (cd "$tmp/$name" && quiet nice -n 10 go build -trimpath "${flags[@]}" -o "$tmp/$name-out/" "$@")
}
install_bin() { mv -f "$1" "$2.partial.$$" && mv -f "$2.partial.$$" "$2"; }   # install_bin BUILT TARGET

# --- start every download ----------------------------------------------------------------------------
# CoreDNS: our own main package (coredns/main.go) with only the plugins the Corefile uses.
need_coredns=0; all_exist "$COREDNS_BIN" || need_coredns=1
if [ "$need_coredns" = 1 ]; then
  mkdir -p "$tmp/coredns"
  cp "$LC_DIR/coredns/main.go" "$tmp/coredns/main.go"
  coredns_pkgs=()
  while read -r pkg; do coredns_pkgs+=("$pkg@$COREDNS_VERSION"); done < <(sed -n 's/^[[:space:]]*\(_ \)\{0,1\}"\(github.com\/coredns\/coredns\/[^"]*\)".*/\2/p' "$LC_DIR/coredns/main.go")
  start_prepare coredns "github.com/coredns/coredns@$COREDNS_VERSION" "${coredns_pkgs[@]}"
fi
need_kube_router=0; all_exist "$KUBE_ROUTER_BIN" || need_kube_router=1
if [ "$need_kube_router" = 1 ]; then
  start_prepare kube-router "github.com/cloudnativelabs/kube-router/v2@$KUBE_ROUTER_VERSION" \
    "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@$KUBE_ROUTER_VERSION"
fi
need_prometheus_operator=0; all_exist "$PROMETHEUS_OPERATOR_BIN" "$CONFIG_RELOADER_BIN" || need_prometheus_operator=1
if [ "$need_prometheus_operator" = 1 ]; then
  start_prepare prometheus-operator "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" \
    "github.com/prometheus-operator/prometheus-operator/cmd/operator@$PROMETHEUS_OPERATOR_VERSION" \
    "github.com/prometheus-operator/prometheus-operator/cmd/prometheus-config-reloader@$PROMETHEUS_OPERATOR_VERSION"
fi
need_prometheus=0; all_exist "$PROMETHEUS_BIN" || need_prometheus=1
if [ "$need_prometheus" = 1 ]; then
  start_prepare prometheus "github.com/prometheus/prometheus@$(prometheus_module_version)" \
    "github.com/prometheus/prometheus/cmd/prometheus@$(prometheus_module_version)"
fi

# --- Kubernetes and etcd: the project's own script (one go build; shared with the operator tests) ---
bash "$REPO_ROOT/scripts/build-control-plane.sh"

# --- Prometheus ----------------------------------------------------------------------------------------
# Its own build list, as its release: prometheus-operator's (which requires Prometheus as a library)
# has a newer client-go that Prometheus v3.5's Kubernetes discovery does not compile against.
if [ "$need_prometheus" = 0 ]; then
  say "prometheus $PROMETHEUS_VERSION: cached"
else
  t=$SECONDS
  wait_prepared prometheus
  # Only the Kubernetes service discovery: our plugins.go replaces upstream's through -overlay. Go
  # refuses overlays of files in its module cache, so Prometheus' module is used from a copy.
  cp -r "$(cd "$tmp/prometheus" && moddir_of "github.com/prometheus/prometheus@$(prometheus_module_version)")" "$tmp/prometheus-module"
  chmod -R u+w "$tmp/prometheus-module"
  (cd "$tmp/prometheus" && go mod edit -replace "github.com/prometheus/prometheus=../prometheus-module")
  printf '{"Replace": {"%s": "%s"}}\n' "$tmp/prometheus-module/plugins/plugins.go" "$LC_DIR/prometheus/plugins.go" >"$tmp/prometheus-overlay.json"
  v=${PROMETHEUS_VERSION#v}
  compile prometheus -overlay "$tmp/prometheus-overlay.json" \
    -ldflags "-s -w -X github.com/prometheus/common/version.Version=$v -X github.com/prometheus/common/version.Revision=module-proxy -X github.com/prometheus/common/version.Branch=v$v" -- \
    github.com/prometheus/prometheus/cmd/prometheus
  install_bin "$tmp/prometheus-out/prometheus" "$PROMETHEUS_BIN"
  say "built prometheus $PROMETHEUS_VERSION (Kubernetes service discovery only; no web UI assets: the HTTP API) in $(elapsed "$t")"
fi

# --- prometheus-operator and prometheus-config-reloader: one build ----------------------------------------
if [ "$need_prometheus_operator" = 0 ]; then
  say "prometheus-operator, prometheus-config-reloader $PROMETHEUS_OPERATOR_VERSION: cached"
else
  t=$SECONDS
  wait_prepared prometheus-operator
  v=${PROMETHEUS_OPERATOR_VERSION#v}
  compile prometheus-operator \
    -ldflags "-s -w -X github.com/prometheus/common/version.Version=$v -X github.com/prometheus/common/version.Revision=module-proxy -X github.com/prometheus/common/version.Branch=v$v" -- \
    github.com/prometheus-operator/prometheus-operator/cmd/operator \
    github.com/prometheus-operator/prometheus-operator/cmd/prometheus-config-reloader
  install_bin "$tmp/prometheus-operator-out/operator" "$PROMETHEUS_OPERATOR_BIN"
  install_bin "$tmp/prometheus-operator-out/prometheus-config-reloader" "$CONFIG_RELOADER_BIN"
  say "built prometheus-operator and prometheus-config-reloader $PROMETHEUS_OPERATOR_VERSION in $(elapsed "$t")"
fi

# --- CoreDNS --------------------------------------------------------------------------------------------
if [ "$need_coredns" = 0 ]; then
  say "coredns $COREDNS_VERSION: cached"
else
  t=$SECONDS
  wait_prepared coredns
  compile coredns -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION" -- .
  install_bin "$tmp/coredns-out/coredns-build" "$COREDNS_BIN"
  say "built coredns $COREDNS_VERSION (the Corefile's plugins only) in $(elapsed "$t")"
fi

# --- kube-router ------------------------------------------------------------------------------------------
if [ "$need_kube_router" = 0 ]; then
  say "kube-router $KUBE_ROUTER_VERSION: cached"
else
  t=$SECONDS
  wait_prepared kube-router
  compile kube-router -ldflags "-s -w -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$KUBE_ROUTER_VERSION" -- \
    github.com/cloudnativelabs/kube-router/v2/cmd/kube-router
  install_bin "$tmp/kube-router-out/kube-router" "$KUBE_ROUTER_BIN"
  say "built kube-router $KUBE_ROUTER_VERSION in $(elapsed "$t")"
fi

# --- pause ------------------------------------------------------------------------------------------------
if all_exist "$PAUSE_BIN"; then
  say "pause $PAUSE_VERSION: cached"
else
  (cd "$LC_DIR/pause" && GOFLAGS=-buildvcs=false nice -n 10 go build -trimpath -ldflags "-s -w" -o "$tmp/pause" .)
  install_bin "$tmp/pause" "$PAUSE_BIN"
  say "built pause $PAUSE_VERSION (scripts/local-cluster/pause)"
fi

# prometheus-operator's CRDs and RBAC, as its release ships them, from the module cache.
if [ -f "$PROMETHEUS_OPERATOR_MANIFESTS/.complete" ]; then
  say "prometheus-operator $PROMETHEUS_OPERATOR_VERSION CRDs and RBAC: cached"
else
  moddir=$(moddir_of "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION")
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
