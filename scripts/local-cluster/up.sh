#!/usr/bin/env bash
# Brings up a real one-host Kubernetes cluster from the binaries build.sh made and the images
# images.sh made, like hack/local-up-cluster.sh but with four nodes laid out as kind-config.yaml:
#
#   host processes  etcd, kube-apiserver, kube-controller-manager, kube-scheduler (host network;
#                   the API server listens only on the host's end of the cluster's wire)
#   per node        containerd (runc), kubelet, kube-proxy (iptables), kube-router (NetworkPolicy
#                   only), each node in its own network namespace and its own mount namespace
#   pods            CoreDNS, prometheus-operator + Prometheus (scraping the kubelets' cAdvisor too)
#   storage         StorageClass `standard` (the default) with static PersistentVolumes on every
#                   worker node (hostPath directories in the node's own /var/lib)
#
# Network: a bridge in the namespace loadlab-wire joins the nodes' eth0 and the host's veth
# ll-host ($API_IP, where the API server listens). Pods sit on a cni0 bridge inside their node's
# namespace; nodes route each other's pod ranges over the wire. Nothing masquerades and no
# namespace has a default route, so pod traffic cannot leave the machine.
#
# Usage: up.sh [--foreground]
#   --foreground   stay in the foreground and tear everything down on Ctrl-C (default: return once
#                  the cluster is up; scripts/local-cluster/down.sh removes it)
# Output: the kubeconfig at $KUBECONFIG_PATH (printed at the end).
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
LOG_PREFIX=up
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=runtime.sh
source "$LC_DIR/runtime.sh"

foreground=0
case "${1:-}" in
  "") ;;
  --foreground) foreground=1 ;;
  *) echo "usage: $0 [--foreground]" >&2; exit 2 ;;
esac
start_all=$SECONDS

# --- preflight: say exactly what is missing ------------------------------------------------------------
need_root "it creates network namespaces, cgroups and mounts, and runs containerd and kubelets"
case "$STATE/" in
  /run/*|/var/run/*|/var/lib/*|/var/log/*|/) die "the state directory $STATE is under a path the nodes mask (/run, /var/lib, /var/log): set LOADLAB_CLUSTER_STATE or LOADLAB_CACHE elsewhere" ;;
esac
missing=()
for tool in containerd containerd-shim-runc-v2 runc ctr iptables ipset conntrack ip nsenter unshare setsid openssl kubectl mount; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
CNI_BIN_DIR=/usr/lib/cni
for plugin in bridge host-local loopback portmap; do
  [ -x "$CNI_BIN_DIR/$plugin" ] || missing+=("$CNI_BIN_DIR/$plugin")
done
[ ${#missing[@]} -eq 0 ] || die "missing ${missing[*]}: run scripts/local-cluster/build.sh (it installs containerd, runc, containernetworking-plugins, iptables, ipset, conntrack, openssl; kubectl must be on PATH)"
missing=()
for f in "$ETCD_BIN" "$APISERVER_BIN" "$CONTROLLER_MANAGER_BIN" "$SCHEDULER_BIN" "$KUBELET_BIN" "$KUBE_PROXY_BIN" "$KUBE_ROUTER_BIN"; do
  [ -x "$f" ] || missing+=("$(basename "$f")")
done
[ -f "$PROMETHEUS_OPERATOR_MANIFESTS/.complete" ] || missing+=("prometheus-operator CRDs")
[ ${#missing[@]} -eq 0 ] || die "not built yet: ${missing[*]}: run scripts/local-cluster/build.sh"
wait_for_background_images
missing=()
for img in "${ALL_IMAGES[@]}"; do
  [ -f "$(image_archive "$img")" ] || missing+=("$img")
done
[ ${#missing[@]} -eq 0 ] || die "images not built yet: ${missing[*]}: run scripts/local-cluster/images.sh"
[ -n "$(cgroup_hierarchies)" ] || die "no cgroups: nothing mounted under $CGROUP_ROOT_FS (a kubelet needs cgroup v1 controllers or cgroup v2)"
for c in cpu memory pids; do
  [ -d "$CGROUP_ROOT_FS/$c" ] || [ -f "$CGROUP_ROOT_FS/cgroup.controllers" ] ||
    die "no cgroups: the $c controller is not mounted under $CGROUP_ROOT_FS"
done
[ -w "$CGROUP_ROOT_FS/memory" ] || [ -w "$CGROUP_ROOT_FS" ] || die "no cgroups: $CGROUP_ROOT_FS is not writable (a container without --privileged?)"

# Address plan vs. this machine: none of our ranges may overlap a route or address here (an earlier
# run's own, on ll-host, aside).
ip2int() { local IFS=.; read -r a b c d <<<"$1"; echo $(((a << 24) + (b << 16) + (c << 8) + d)); }
overlaps() { # overlaps CIDR CIDR
  local a=${1%/*} am=${1#*/} b=${2%/*} bm=${2#*/} m
  [ "$am" = "$1" ] && am=32
  [ "$bm" = "$2" ] && bm=32
  m=$((am < bm ? am : bm))
  local mask=$(( (0xffffffff << (32 - m)) & 0xffffffff ))
  [ $(( $(ip2int "$a") & mask )) -eq $(( $(ip2int "$b") & mask )) ]
}
while read -r dst; do
  case "$dst" in default|"") continue ;; esac
  for ours in "$NODE_NET" "$POD_NET" "$SERVICE_NET"; do
    overlaps "$dst" "$ours" && die "$ours (this cluster's) overlaps $dst on this machine ($(ip -4 route show table all | grep -F "$dst" | head -n1)): choose other ranges with LOADLAB_NODE_NET_PREFIX, LOADLAB_POD_NET_PREFIX, LOADLAB_SERVICE_NET"
  done
done < <( { ip -4 route show table all | grep -v " dev $HOST_VETH" |
             awk '$1 != "local" && $1 != "broadcast" && $1 != "unreachable" {print $1}'
           ip -4 -o addr show | awk -v own="$HOST_VETH" '$2 != own {print $4}'; } | sort -u)

# --- leftovers of an earlier run ------------------------------------------------------------------
if [ -d "$STATE" ] || [ -n "$(our_netns)" ] || [ -n "$(cg_all_pids)" ] || ip link show "$HOST_VETH" >/dev/null 2>&1; then
  say "cleaning up what an earlier run left (processes, namespaces, mounts, $STATE)"
  teardown
fi

# From here on, a failure or Ctrl-C removes everything this run started.
on_exit() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "${UP_DONE:-0}" = 1 ] && [ "$foreground" = 0 ]; then exit "$rc"; fi
  if [ "$rc" != 0 ] && [ "${LOADLAB_KEEP_FAILED:-0}" = 1 ]; then
    warn "LOADLAB_KEEP_FAILED=1: leaving the failed cluster in place for a look (logs in $STATE/logs); scripts/local-cluster/down.sh removes it"
    exit "$rc"
  fi
  if [ "$rc" = 130 ]; then
    say "removing what this run started"
  elif [ "$rc" != 0 ]; then
    warn "start-up failed: removing what it started (logs kept in $LC_CACHE/last-run-logs)"
  fi
  say "tearing down"
  teardown || true
  say "down"
  exit "$rc"
}
trap on_exit EXIT
trap 'warn "interrupted"; exit 130' INT TERM

mkdir -p "$STATE"/{pki,logs,pids,nodes}
PKI="$STATE/pki"

# --- certificates (one CA, ECDSA P-256) -----------------------------------------------------------------
t=$SECONDS
ssl() { openssl "$@" 2>/dev/null; }
ssl ecparam -name prime256v1 -genkey -noout -out "$PKI/ca.key"
ssl req -x509 -new -key "$PKI/ca.key" -subj "/CN=loadlab-local-cluster-ca" -days 3650 -out "$PKI/ca.crt" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
# cert NAME SUBJECT USAGE [SAN]: NAME.key + NAME.crt signed by the CA.
cert() {
  local name=$1 subject=$2 usage=$3 san=${4:-}
  ssl ecparam -name prime256v1 -genkey -noout -out "$PKI/$name.key"
  ssl req -new -key "$PKI/$name.key" -subj "$subject" -out "$PKI/$name.csr"
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$usage"
    if [ -n "$san" ]; then echo "subjectAltName=$san"; fi
  } >"$PKI/$name.ext"
  ssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial -days 365 \
    -extfile "$PKI/$name.ext" -out "$PKI/$name.crt"
  rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}
cert apiserver "/CN=kube-apiserver" serverAuth \
  "IP:$API_IP,IP:$KUBERNETES_SVC_IP,IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$CLUSTER_DOMAIN"
cert apiserver-kubelet-client "/CN=kube-apiserver-kubelet-client" clientAuth
cert admin "/O=system:masters/CN=loadlab-admin" clientAuth
cert controller-manager "/CN=system:kube-controller-manager" clientAuth
cert scheduler "/CN=system:kube-scheduler" clientAuth
cert kube-proxy "/CN=system:kube-proxy" clientAuth
cert kube-router "/CN=system:kube-router" clientAuth
for entry in "${NODES[@]}"; do
  n=$(node_field "$entry" 0)
  cert "kubelet-$n" "/O=system:nodes/CN=system:node:$n" clientAuth
done
# The front proxy (aggregated APIs; and controller-manager's and scheduler's delegated authentication
# expect its CA in kube-system/extension-apiserver-authentication).
ssl ecparam -name prime256v1 -genkey -noout -out "$PKI/front-proxy-ca.key"
ssl req -x509 -new -key "$PKI/front-proxy-ca.key" -subj "/CN=loadlab-local-cluster-front-proxy-ca" -days 3650 \
  -out "$PKI/front-proxy-ca.crt" -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
ssl ecparam -name prime256v1 -genkey -noout -out "$PKI/front-proxy-client.key"
ssl req -new -key "$PKI/front-proxy-client.key" -subj "/CN=front-proxy-client" -out "$PKI/front-proxy-client.csr"
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' >"$PKI/front-proxy-client.ext"
ssl x509 -req -in "$PKI/front-proxy-client.csr" -CA "$PKI/front-proxy-ca.crt" -CAkey "$PKI/front-proxy-ca.key" -CAcreateserial \
  -days 365 -extfile "$PKI/front-proxy-client.ext" -out "$PKI/front-proxy-client.crt"
rm -f "$PKI/front-proxy-client.csr" "$PKI/front-proxy-client.ext"
ssl ecparam -name prime256v1 -genkey -noout -out "$PKI/sa.key"
ssl ec -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub"
chmod 600 "$PKI"/*.key
# kubeconfig FILE NAME: a kubeconfig for the identity NAME.crt/NAME.key.
kubeconfig() {
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: loadlab-local
    cluster:
      server: https://$API_IP:$API_PORT
      certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
users:
  - name: $2
    user:
      client-certificate-data: $(base64 -w0 "$PKI/$2.crt")
      client-key-data: $(base64 -w0 "$PKI/$2.key")
contexts:
  - name: loadlab-local
    context:
      cluster: loadlab-local
      user: $2
current-context: loadlab-local
EOF
  chmod 600 "$1"
}
kubeconfig "$KUBECONFIG_PATH" admin
for id in controller-manager scheduler kube-proxy kube-router; do kubeconfig "$PKI/$id.kubeconfig" "$id"; done
for entry in "${NODES[@]}"; do n=$(node_field "$entry" 0); kubeconfig "$PKI/kubelet-$n.kubeconfig" "kubelet-$n"; done
say "certificates and kubeconfigs in $PKI ($(elapsed "$t"))"
k() { kubectl --kubeconfig "$KUBECONFIG_PATH" "$@"; }
# For the long waits: kubectl exits normally on Ctrl-C, and bash then goes on as if the child had
# handled it (the INT trap never runs). Run apart from the terminal's process group instead, so
# Ctrl-C reaches only this shell, whose `wait` returns at once.
k_wait() {
  local rc=0
  setsid kubectl --kubeconfig "$KUBECONFIG_PATH" "$@" &
  wait $! || rc=$?
  if [ "$rc" -gt 128 ]; then warn "interrupted"; exit 130; fi
  return "$rc"
}

# The kubelet sets these machine-wide sysctls; down.sh puts the values back.
for key in "${HOST_SYSCTLS[@]}"; do
  printf '%s %s\n' "$key" "$(sysctl -n "$key" 2>/dev/null || echo)" 
done | awk 'NF == 2' >"$STATE/host-sysctls"

# --- network ------------------------------------------------------------------------------------------
t=$SECONDS
ip netns add "$NETNS_WIRE"
ip -n "$NETNS_WIRE" link set lo up
ip -n "$NETNS_WIRE" link add "$BRIDGE" type bridge
ip -n "$NETNS_WIRE" link set "$BRIDGE" up
ip link add "$HOST_VETH" type veth peer name host netns "$NETNS_WIRE"
sysctl -q -w "net.ipv6.conf.$HOST_VETH.disable_ipv6=1" >/dev/null 2>&1 || true
ip addr add "$API_IP/24" dev "$HOST_VETH"
ip link set "$HOST_VETH" up
ip -n "$NETNS_WIRE" link set host master "$BRIDGE" up
for entry in "${NODES[@]}"; do
  n=$(node_field "$entry" 0); sfx=$(node_field "$entry" 1); idx=$(node_field "$entry" 2)
  ip netns add "$n"
  ip link add "n$sfx" netns "$NETNS_WIRE" type veth peer name eth0 netns "$n"
  ip -n "$NETNS_WIRE" link set "n$sfx" master "$BRIDGE" up
  ip -n "$n" link set lo up
  ip -n "$n" addr add "$NET_PREFIX.$sfx/24" dev eth0
  ip -n "$n" link set eth0 up
  # Inside the node only: forward between its pods and the wire; bridged pod traffic goes through
  # iptables (Services on the same node, NetworkPolicies).
  netns_exec "$n" sysctl -q -w net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1 >/dev/null
  # The host reaches pods through their node (the API server answers pods, proxies to them).
  ip route add "$POD_PREFIX.$idx.0/24" via "$NET_PREFIX.$sfx" dev "$HOST_VETH"
done
for entry in "${NODES[@]}"; do
  n=$(node_field "$entry" 0)
  for other in "${NODES[@]}"; do
    [ "$other" = "$entry" ] && continue
    ip -n "$n" route add "$POD_PREFIX.$(node_field "$other" 2).0/24" via "$NET_PREFIX.$(node_field "$other" 1)"
  done
  # Services: kube-proxy rewrites the destination; a route only lets the node's own processes send.
  ip -n "$n" route add "$SERVICE_NET" dev eth0
done
say "network: wire $NODE_NET (API server $API_IP on $HOST_VETH), pods $POD_NET, services $SERVICE_NET ($(elapsed "$t"))"

# --- control plane (host processes) ------------------------------------------------------------------------
t=$SECONDS
cg_create control-plane
mkdir -p "$STATE/etcd"
start_daemon etcd control-plane - "$ETCD_BIN" --name default --data-dir "$STATE/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "default=http://127.0.0.1:$ETCD_PEER_PORT" --unsafe-no-fsync --log-level warn
start_daemon kube-apiserver control-plane - "$APISERVER_BIN" \
  --advertise-address "$API_IP" --bind-address "$API_IP" --secure-port "$API_PORT" \
  --etcd-servers "http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --service-cluster-ip-range "$SERVICE_NET" \
  --client-ca-file "$PKI/ca.crt" --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
  --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
  --kubelet-preferred-address-types InternalIP \
  --service-account-issuer "https://kubernetes.default.svc.$CLUSTER_DOMAIN" \
  --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
  --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
  --requestheader-client-ca-file "$PKI/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
  --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
  --requestheader-extra-headers-prefix X-Remote-Extra- \
  --proxy-client-cert-file "$PKI/front-proxy-client.crt" --proxy-client-key-file "$PKI/front-proxy-client.key" \
  --anonymous-auth=false --allow-privileged=true --profiling=false
wait_job() { # wait_job PID WHAT LOG: wait for a background job; fail with its log's end
  local rc=0
  wait "$1" || rc=$?
  if [ "$rc" -gt 128 ]; then warn "interrupted"; exit 130; fi
  [ "$rc" = 0 ] && return 0
  tail -n 20 "$3" >&2
  die "$2 failed (log: $3)"
}
wait_for() { # wait_for WHAT SECONDS DAEMON|- cmd...: poll cmd until it succeeds
  local what=$1 limit=$2 daemon=$3 waited=0; shift 3
  until "$@" >/dev/null 2>&1; do
    if [ "$daemon" != - ]; then check_daemon "$daemon" || die "$what: $daemon is not running"; fi
    [ "$waited" -lt $((limit * 2)) ] || die "timed out after ${limit}s waiting for $what (logs in $STATE/logs)"
    sleep 0.5; waited=$((waited + 1))
  done
}
wait_for "the API server" 60 kube-apiserver k get --raw /readyz
k apply -f "$LC_DIR/manifests/cluster-rbac.yaml" >/dev/null
start_daemon kube-controller-manager control-plane - "$CONTROLLER_MANAGER_BIN" \
  --kubeconfig "$PKI/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$PKI/controller-manager.kubeconfig" --authorization-kubeconfig "$PKI/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port 10357 \
  --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
  --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
  --use-service-account-credentials --allocate-node-cidrs=false --service-cluster-ip-range "$SERVICE_NET" \
  --leader-elect=false
start_daemon kube-scheduler control-plane - "$SCHEDULER_BIN" \
  --kubeconfig "$PKI/scheduler.kubeconfig" \
  --authentication-kubeconfig "$PKI/scheduler.kubeconfig" --authorization-kubeconfig "$PKI/scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port 10359 --leader-elect=false
say "control plane: etcd $ETCD_VERSION, kube-apiserver, kube-controller-manager, kube-scheduler $KUBE_VERSION ($(elapsed "$t"))"

# --- add-ons (pods; applied now, they start as soon as nodes are there) -----------------------------
t=$SECONDS
render() {
  sed -e "s|@CLUSTER_DOMAIN@|$CLUSTER_DOMAIN|g" -e "s|@DNS_SVC_IP@|$DNS_SVC_IP|g" \
    -e "s|@IMG_COREDNS@|$IMG_COREDNS|g" \
    -e "s|@IMG_PROMETHEUS_OPERATOR@|$IMG_PROMETHEUS_OPERATOR|g" -e "s|@IMG_CONFIG_RELOADER@|$IMG_CONFIG_RELOADER|g" \
    -e "s|@IMG_PROMETHEUS@|$IMG_PROMETHEUS|g" -e "s|@PROMETHEUS_VERSION@|$PROMETHEUS_VERSION|g" "$1"
}
# Storage: no provisioner runs here. Each worker node gets VOLUMES_PER_NODE PersistentVolumes of
# the StorageClass `standard` (hostPath directories under the node's own /var/lib, pinned to the
# node), which claims of that class (or of none: it is the default) bind to when their pod is
# scheduled. What a claim gets is what a provisioner of node-local storage (kind's
# local-path-provisioner, for one) would give: a directory on the pod's node; only the reclaim
# differs (Retain: a released volume is not reused until the next start). Capacity is nominal.
static_volumes() {
  local entry n role i
  for entry in "${NODES[@]}"; do
    n=$(node_field "$entry" 0); role=$(node_field "$entry" 3)
    [ "$role" = - ] && continue
    for i in $(seq 1 "$VOLUMES_PER_NODE"); do
      cat <<EOF
---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: $n-vol-$i
  labels: {loadlab.dev/static-volume: "true", loadlab.dev/node: $n}
spec:
  storageClassName: standard
  capacity: {storage: $VOLUME_CAPACITY}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  hostPath: {path: /var/lib/loadlab-volumes/vol-$i, type: Directory}
  nodeAffinity:
    required:
      nodeSelectorTerms:
        - matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [$n]}]
EOF
    done
  done
}
# In the background while the nodes start (the large CRDs take a few seconds).
(
  set -e
  render "$LC_DIR/manifests/coredns.yaml" | k apply -f -
  render "$LC_DIR/manifests/storage.yaml" | k apply -f -
  static_volumes | k apply -f -
  # The CRDs are too large for client-side apply's annotation.
  k apply --server-side --force-conflicts -f "$PROMETHEUS_OPERATOR_MANIFESTS/crd/"
  k apply -f "$PROMETHEUS_OPERATOR_MANIFESTS/rbac/"
  k wait --for condition=Established --timeout 60s crd/prometheuses.monitoring.coreos.com crd/podmonitors.monitoring.coreos.com
  render "$LC_DIR/manifests/monitoring.yaml" | k apply -f -
) >"$STATE/logs/add-ons.log" 2>&1 </dev/null &
addons_pid=$!
addons_started=$SECONDS

# --- nodes --------------------------------------------------------------------------------------------------
t=$SECONDS
printf '# No nameservers: pods with dnsPolicy Default resolve nothing outside the cluster.\n' >"$STATE/resolv.conf"
for entry in "${NODES[@]}"; do
  n=$(node_field "$entry" 0); sfx=$(node_field "$entry" 1); idx=$(node_field "$entry" 2)
  role=$(node_field "$entry" 3); taint=$(node_field "$entry" 4)
  dir="$STATE/nodes/$n"
  mkdir -p "$dir"/{kubelet,cni,volumes,log/pods,log/containers,cni-conf} "$NODE_IMAGE_STORE/$n"
  if [ "$role" != - ]; then
    for i in $(seq 1 "$VOLUMES_PER_NODE"); do mkdir -m 0777 "$dir/volumes/vol-$i"; done
  fi
  # Two configurations of the node's containerd: without the CRI plugin (to empty the image store
  # of a previous run's containers and import images, before any kubelet can see it), then with it.
  containerd_config() {
    cat <<EOF
version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
disabled_plugins = [$1"io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "/run/containerd/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "docker.io/$IMG_PAUSE"
  # No process may lower its oom_score_adj on these machines, even as root: without this, runc
  # fails every pod sandbox ("can't get final child's PID from pipe: EOF").
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN_DIR"
    conf_dir = "$dir/cni-conf"
EOF
  }
  containerd_config '"io.containerd.grpc.v1.cri", ' >"$dir/containerd-images.toml"
  containerd_config "" >"$dir/containerd.toml"
  # Pods: a cni0 bridge inside the node, addresses from the node's /24, no masquerade.
  # Written to the directory containerd reads only once kube-proxy has programmed the Services
  # (see below): until then the node is NotReady and gets no pods, which would otherwise start
  # before the kubernetes Service works and fail to reach the API server.
  cat >"$dir/10-loadlab.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "loadlab",
  "plugins": [
    {
      "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_PREFIX.$idx.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  taints_yaml=""
  if [ "$taint" != - ]; then
    tkey=${taint%%=*}; rest=${taint#*=}; tvalue=${rest%%:*}; teffect=${rest#*:}
    taints_yaml="registerWithTaints:
  - {key: \"$tkey\", value: \"$tvalue\", effect: $teffect}"
  fi
  cat >"$dir/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$PKI/ca.crt"}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
# cgroup v1 with the cgroupfs driver (no systemd here); 1.33 still allows v1 when asked.
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP_PARENT/nodes/$n
failCgroupV1: false
failSwapOn: false
clusterDNS: ["$DNS_SVC_IP"]
clusterDomain: $CLUSTER_DOMAIN
resolvConf: "$STATE/resolv.conf"
readOnlyPort: 0
rotateCertificates: false
serializeImagePulls: false
# A pod's Secret and ConfigMap volumes are rewritten at its periodic sync (default every minute):
# prometheus-operator's generated configuration reaches Prometheus that much sooner after a
# PodMonitor changes. A handful of pods per node keeps the extra syncs cheap.
syncFrequency: 10s
evictionHard: {memory.available: 100Mi, nodefs.available: 5%, imagefs.available: 5%}
# Never garbage-collect images: none can be pulled again here.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
$taints_yaml
EOF
  # The node's own mount namespace: its /run, /var/lib and /var/log are its own (tmpfs, with the
  # node's directories bound in), /sys shows its network namespace, and / is shared inside (as a
  # kubelet expects) without touching the host's propagation. Pinned by a file, so it outlives
  # this shell; down.sh unpins it and every mount in it goes away.
  if [ ! -d "$NS_DIR" ] || ! grep -q " $NS_DIR " /proc/self/mountinfo; then
    mkdir -p "$NS_DIR"
    mount --bind "$NS_DIR" "$NS_DIR"
    mount --make-private "$NS_DIR"
  fi
  touch "$(node_mntns "$n")"
  # shellcheck disable=SC2016
  NODE_DIR="$dir" IMAGE_STORE="$NODE_IMAGE_STORE/$n" nsenter --net="/run/netns/$n" unshare --mount="$(node_mntns "$n")" --propagation private sh -euc '
    mount -t tmpfs -o mode=755 tmpfs /run
    mkdir /run/cgroup-move
    mount --rbind /sys/fs/cgroup /run/cgroup-move
    mount -t sysfs sysfs /sys
    mount --move /run/cgroup-move /sys/fs/cgroup
    rmdir /run/cgroup-move
    mkdir -p /run/containerd /run/netns
    mount -t tmpfs -o mode=755 tmpfs /var/lib
    mount -t tmpfs -o mode=755 tmpfs /var/log
    for d in kubelet containerd cni loadlab-volumes; do mkdir /var/lib/$d; done
    mount --bind "$NODE_DIR/kubelet" /var/lib/kubelet
    mount --bind "$IMAGE_STORE" /var/lib/containerd
    mount --bind "$NODE_DIR/cni" /var/lib/cni
    mount --bind "$NODE_DIR/volumes" /var/lib/loadlab-volumes
    mkdir /var/log/pods /var/log/containers
    mount --bind "$NODE_DIR/log/pods" /var/log/pods
    mount --bind "$NODE_DIR/log/containers" /var/log/containers
    mount --make-rshared /
  '
  cg_create "nodes/$n"
  cg_create "nodes/$n/system"
done
say "nodes: network and mount namespaces ready ($(elapsed "$t"))"

# Images: each node's store keeps what it imported before (stamped with the image's inputs hash);
# import what is missing or changed, remove what the node no longer holds. All nodes in parallel.
t=$SECONDS
ctr_n() { local n=$1; shift; node_exec "$n" ctr --address /run/containerd/containerd.sock -n k8s.io "$@"; }
prepare_images() { # prepare_images NODE: runs with the CRI-less containerd
  local n=$1 img imported=0 kept=0 stale stamp_dir
  stamp_dir="$NODE_IMAGE_STORE/$n/loadlab-imported"
  mkdir -p "$stamp_dir"
  # A killed run leaves its containers in the store: remove them (and their snapshots).
  stale=$(ctr_n "$n" containers ls -q)
  if [ -n "$stale" ]; then
    # shellcheck disable=SC2086
    ctr_n "$n" containers rm $stale >/dev/null
  fi
  local have wanted
  have=$(ctr_n "$n" images ls -q)
  wanted=$(node_images "$n" | sed 's|^|docker.io/|')
  for img in $(node_images "$n"); do
    local stamp
    stamp="$stamp_dir/$(printf '%s' "$img" | tr '/:' '__')"
    if grep -qxF "docker.io/$img" <<<"$have" && [ "$(cat "$stamp" 2>/dev/null)" = "$(image_inputs "$img")" ]; then
      kept=$((kept + 1)); continue
    fi
    ctr_n "$n" images import --snapshotter overlayfs "$(image_archive "$img")" >/dev/null
    image_inputs "$img" >"$stamp"
    imported=$((imported + 1))
  done
  for img in $have; do
    grep -qxF "$img" <<<"$wanted" || ctr_n "$n" images rm "$img" >/dev/null
  done
  echo "$imported imported, $kept kept"
}
prep_pids=()
for entry in "${NODES[@]}"; do
  n=$(node_field "$entry" 0)
  (
    set -e
    start_daemon "containerd-images-$n" "nodes/$n/system" "$n" containerd --config "$STATE/nodes/$n/containerd-images.toml" --log-level warn
    wait_for "containerd (images) on $n" 30 "containerd-images-$n" ctr_n "$n" version
    result=$(prepare_images "$n")
    pid=$(cat "$STATE/pids/containerd-images-$n")
    kill -TERM "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    rm -f "$STATE/pids/containerd-images-$n"
    # The CRI plugin's own records of earlier pods (their hosts files, logs dirs) go too.
    rm -rf "$NODE_IMAGE_STORE/$n/io.containerd.grpc.v1.cri"
    echo "$result"
  ) >"$STATE/logs/images-$n.log" 2>&1 &
  prep_pids+=($!)
done
summary=()
for i in "${!prep_pids[@]}"; do
  n=$(node_field "${NODES[$i]}" 0)
  wait_job "${prep_pids[$i]}" "preparing the images of $n" "$STATE/logs/images-$n.log"
  summary+=("$n: $(tail -n1 "$STATE/logs/images-$n.log")")
done
joined=$(printf '%s; ' "${summary[@]}")
say "images: ${joined%; } ($(elapsed "$t"))"

t=$SECONDS
for entry in "${NODES[@]}"; do
  n=$(node_field "$entry" 0)
  start_daemon "containerd-$n" "nodes/$n/system" "$n" containerd --config "$STATE/nodes/$n/containerd.toml" --log-level warn
done
for entry in "${NODES[@]}"; do
  n=$(node_field "$entry" 0)
  wait_for "containerd on $n" 30 "containerd-$n" ctr_n "$n" version
done
say "nodes: containerd (CRI) up ($(elapsed "$t"))"

t=$SECONDS
for entry in "${NODES[@]}"; do
  n=$(node_field "$entry" 0); sfx=$(node_field "$entry" 1); role=$(node_field "$entry" 3)
  labels=""
  [ "$role" != - ] && labels="--node-labels=loadlab.dev/role=$role"
  # shellcheck disable=SC2086
  start_daemon "kubelet-$n" "nodes/$n/system" "$n" "$KUBELET_BIN" \
    --config "$STATE/nodes/$n/kubelet.yaml" --kubeconfig "$PKI/kubelet-$n.kubeconfig" \
    --hostname-override "$n" --node-ip "$NET_PREFIX.$sfx" $labels
done
for entry in "${NODES[@]}"; do
  n=$(node_field "$entry" 0)
  wait_for "node $n to register" 60 "kubelet-$n" k get node "$n"
done
# What kind's kubeadm does as an admin: the control-plane role label (a kubelet may not set
# node-role.kubernetes.io/*), and each node's pod range (written statically into its CNI config).
for entry in "${NODES[@]}"; do
  n=$(node_field "$entry" 0); idx=$(node_field "$entry" 2); taint=$(node_field "$entry" 4)
  case "$taint" in node-role.kubernetes.io/control-plane*) k label node "$n" node-role.kubernetes.io/control-plane= >/dev/null ;; esac
  k patch node "$n" --type merge -p "{\"spec\":{\"podCIDR\":\"$POD_PREFIX.$idx.0/24\",\"podCIDRs\":[\"$POD_PREFIX.$idx.0/24\"]}}" >/dev/null
done
for entry in "${NODES[@]}"; do
  n=$(node_field "$entry" 0)
  cat >"$STATE/nodes/$n/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: "$PKI/kube-proxy.kubeconfig"
hostnameOverride: $n
mode: iptables
clusterCIDR: $POD_NET
detectLocalMode: ClusterCIDR
# Leave the machine-wide conntrack settings alone (0 = do not change).
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
iptables:
  localhostNodePorts: false
nodePortAddresses: [primary]
EOF
  start_daemon "kube-proxy-$n" "nodes/$n/system" "$n" "$KUBE_PROXY_BIN" --config "$STATE/nodes/$n/kube-proxy.yaml"
  start_daemon "kube-router-$n" "nodes/$n/system" "$n" "$KUBE_ROUTER_BIN" \
    --kubeconfig "$PKI/kube-router.kubeconfig" --hostname-override "$n" \
    --run-firewall=true --run-router=false --run-service-proxy=false --enable-cni=false \
    --service-cluster-ip-range "$SERVICE_NET" --metrics-port 0
done
service_rules_ready() { netns_exec "$1" iptables -t nat -S KUBE-SERVICES 2>/dev/null | grep -q 'default/kubernetes:https'; }
for entry in "${NODES[@]}"; do
  n=$(node_field "$entry" 0)
  wait_for "kube-proxy on $n to program the Services" 60 "kube-proxy-$n" service_rules_ready "$n"
  # Written, not moved: containerd 1.6 reloads its CNI configuration on a write to the directory,
  # and ignores a file that merely appears (fsnotify Create).
  cat "$STATE/nodes/$n/10-loadlab.conflist" >"$STATE/nodes/$n/cni-conf/10-loadlab.conflist"
done
say "nodes: kubelets registered, kube-proxy and kube-router started, pod network configured ($(elapsed "$t"))"

wait_job "$addons_pid" "applying the add-ons" "$STATE/logs/add-ons.log"
say "add-ons applied: CoreDNS, StorageClass standard with $VOLUMES_PER_NODE static volumes per worker node, prometheus-operator + Prometheus $PROMETHEUS_VERSION ($(elapsed "$addons_started"))"

# --- ready? -----------------------------------------------------------------------------------------------
t=$SECONDS
k_wait wait --for condition=Ready --timeout 120s node --all >/dev/null || die "not every node became Ready: $(k get nodes --no-headers 2>&1 | tr '\n' ';')"
say "nodes Ready: $(k get nodes --no-headers -o custom-columns=N:.metadata.name | tr '\n' ' ')($(elapsed "$t"))"
k_wait -n kube-system rollout status deploy/coredns --timeout 120s >/dev/null || die "CoreDNS did not become available: $(k -n kube-system get pods -l k8s-app=kube-dns --no-headers 2>&1)"
# CoreDNS answers: resolve the API's Service name through the DNS Service, from a node (a resolver
# pointed at the cluster DNS in a throwaway mount namespace; getent is glibc's own resolver).
printf 'nameserver %s\noptions timeout:1 attempts:1\n' "$DNS_SVC_IP" >"$STATE/resolv.conf.cluster"
dns_answers() {
  local first; first=$(node_field "${NODES[1]}" 0)
  nsenter --net="/run/netns/$first" unshare --mount sh -c \
    "mount --bind '$STATE/resolv.conf.cluster' /etc/resolv.conf && getent hosts kubernetes.default.svc.$CLUSTER_DOMAIN" |
    grep -q "^$KUBERNETES_SVC_IP "
}
wait_for "CoreDNS to answer kubernetes.default.svc.$CLUSTER_DOMAIN" 60 - dns_answers
say "CoreDNS answers: kubernetes.default.svc.$CLUSTER_DOMAIN is $KUBERNETES_SVC_IP ($(elapsed "$t"))"
cluster_ready_after=$(elapsed "$start_all")
k_wait -n monitoring rollout status deploy/prometheus-operator --timeout 120s >/dev/null || die "prometheus-operator did not become available"
wait_for "the Prometheus pod" 120 - k -n monitoring get pod prometheus-loadlab-0
k_wait -n monitoring wait --for condition=Ready --timeout 180s pod/prometheus-loadlab-0 >/dev/null ||
  die "Prometheus did not become ready: $(k -n monitoring describe pod prometheus-loadlab-0 | tail -n 15)"
say "prometheus-operator and Prometheus ready ($(elapsed "$t"))"

# --- done ---------------------------------------------------------------------------------------------------
# cgroup v1's total_rss: anonymous memory, the binaries' pages (shared, evictable) not counted.
mem_mib=$(awk '/^total_rss / {print int($2 / 1048576)}' "$CGROUP_ROOT_FS/memory/$CGROUP_PARENT/memory.stat" 2>/dev/null || true)
UP_DONE=1
say "cluster up in $cluster_ready_after (nodes Ready, CoreDNS answering), add-ons ready in $(elapsed "$start_all"); memory: ${mem_mib:-?} MiB (anonymous memory of every process and container in the cluster's cgroups)"
k get nodes -o wide --no-headers | awk '{printf "up:   %-24s %-6s %s\n", $1, $2, $6}'
cat <<EOF
up: kubeconfig: $KUBECONFIG_PATH
up:   export KUBECONFIG=$KUBECONFIG_PATH
up:   kubectl get nodes -L loadlab.dev/role
up:   bash scripts/local-cluster/smoke.sh      # prove it works
up:   bash scripts/local-cluster/down.sh       # remove everything
up: logs: $STATE/logs
EOF
if [ "$foreground" = 1 ]; then
  say "running in the foreground: Ctrl-C tears the cluster down"
  trap 'exit 0' INT TERM
  while sleep 5; do
    for f in "$STATE"/pids/*; do
      name=$(basename "$f")
      daemon_alive "$name" || { warn "$name exited (see $STATE/logs/$name.log)"; rm -f "$f"; }
    done
  done
fi
