# The running cluster's plumbing, shared by up.sh and down.sh (sourced, not run): cgroups, network
# namespaces, node mount namespaces, daemons, and the tear-down that also clears what a killed run
# left behind. Everything this cluster creates on the host is found by name:
#   processes     every one runs in a cgroup under /sys/fs/cgroup/<controller>/loadlab/ (the node
#                 daemons, their containerd shims and every container included)
#   netns         /run/netns/loadlab-* (the wire and one per node); iptables rules, ipsets, veths,
#                 bridges and routes of the nodes live inside them and go with them
#   host side     the veth ll-host (the API server's address) and its routes
#   mounts        only in the nodes' own mount namespaces, pinned by files in $STATE/ns (a private
#                 bind mount); unpinning them unmounts everything a node mounted
#   sysctls       the kubelet sets a few global ones: saved before, restored after
# shellcheck shell=bash disable=SC2034

CGROUP_ROOT_FS=/sys/fs/cgroup
HOST_SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes)

# --- cgroups (v1 hierarchies and the unified one, whichever are mounted) ----------------------------
cgroup_hierarchies() {
  local d
  for d in "$CGROUP_ROOT_FS"/*/; do
    d=${d%/}
    [ -f "$d/cgroup.procs" ] && printf '%s\n' "$d"
  done
  # A pure cgroup v2 machine: /sys/fs/cgroup itself.
  if [ -f "$CGROUP_ROOT_FS/cgroup.procs" ]; then printf '%s\n' "$CGROUP_ROOT_FS"; fi
}
# cg_create REL: create /loadlab/REL in every hierarchy (cpuset needs cpus and mems to take tasks).
cg_create() {
  local rel=$1 h parent part path
  while read -r h; do
    path=$h
    for part in $CGROUP_PARENT ${rel//\// }; do
      parent=$path; path="$path/$part"
      if [ ! -d "$path" ]; then
        mkdir "$path"
        if [ -f "$path/cpuset.cpus" ]; then
          cat "$parent/cpuset.cpus" >"$path/cpuset.cpus"
          cat "$parent/cpuset.mems" >"$path/cpuset.mems"
        fi
      fi
    done
  done < <(cgroup_hierarchies)
}
cg_enter() { # cg_enter REL PID
  local h
  while read -r h; do
    echo "$2" >"$h/$CGROUP_PARENT/$1/cgroup.procs"
  done < <(cgroup_hierarchies)
}
# Every process in any cgroup under /loadlab. Every process of the cluster is in every hierarchy
# (cg_enter joins them all, children inherit, runc places containers in all), so one suffices.
cg_all_pids() {
  local h
  for h in "$CGROUP_ROOT_FS/pids" "$CGROUP_ROOT_FS/memory" "$CGROUP_ROOT_FS"; do
    [ -f "$h/cgroup.procs" ] || continue
    [ -d "$h/$CGROUP_PARENT" ] && find "$h/$CGROUP_PARENT" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -un
    return 0
  done
}
cg_remove_all() {
  local h
  while read -r h; do
    [ -d "$h/$CGROUP_PARENT" ] || continue
    # Deepest first; a cgroup directory is removed with rmdir, never rm -r.
    find "$h/$CGROUP_PARENT" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done < <(cgroup_hierarchies)
}

# --- network namespaces ---------------------------------------------------------------------------
netns_exec() { local ns=$1; shift; nsenter --net="/run/netns/$ns" -- "$@"; }
our_netns() { ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^loadlab-' || true; }

# --- node mount namespaces --------------------------------------------------------------------------
NS_DIR="$STATE/ns"
node_mntns() { printf '%s/%s.mnt' "$NS_DIR" "$1"; }
# node_exec NODE cmd...: run in the node's network and mount namespaces (its containerd, kubelet,
# kube-proxy, kube-router and anything that talks to them run like this).
node_exec() { local n=$1; shift; nsenter --net="/run/netns/$n" --mount="$(node_mntns "$n")" -- "$@"; }

# --- daemons ----------------------------------------------------------------------------------------
# start_daemon NAME CGROUP NODE|- cmd...: NAME's output goes to $STATE/logs/NAME.log, its pid to
# $STATE/pids/NAME; it runs in its own session (Ctrl-C on the terminal does not reach it) inside the
# cgroup /loadlab/CGROUP and, with a NODE, in that node's network and mount namespaces.
start_daemon() {
  local name=$1 cg=$2 node=$3; shift 3
  mkdir -p "$STATE/logs" "$STATE/pids"
  (
    cg_enter "$cg" "$BASHPID"
    if [ "$node" = - ]; then exec setsid "$@"; fi
    exec setsid nsenter --net="/run/netns/$node" --mount="$(node_mntns "$node")" -- "$@"
  ) >"$STATE/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$STATE/pids/$name"
  disown $!   # its end is down.sh's business, not this shell's (no "Killed" job notices)
}
daemon_alive() { local pid; pid=$(cat "$STATE/pids/$1" 2>/dev/null) && kill -0 "$pid" 2>/dev/null; }
# Fails with the daemon's last log lines when it is not running.
check_daemon() {
  daemon_alive "$1" && return 0
  printf '%s: error: %s exited; the end of %s:\n' "${LOG_PREFIX:-local-cluster}" "$1" "$STATE/logs/$1.log" >&2
  tail -n 25 "$STATE/logs/$1.log" >&2 || true
  return 1
}

# --- tear-down ----------------------------------------------------------------------------------------
# Idempotent, and works from what is on the machine, not from what a run remembers: it is also how
# up.sh clears the leftovers of a killed run.
teardown() {
  local found=0 pids pid n alive f mnt

  # 1. Processes: everything in the cluster's cgroups (control plane, node daemons, shims and every
  #    container), plus the recorded pids in case one never reached its cgroup. SIGTERM first and
  #    up to 2 s for it (nothing here needs a clean stop: the state is thrown away, and containerd's
  #    image store is transactional), then SIGKILL what is left (frozen first, so nothing forks).
  pids=$(cg_all_pids)
  for f in "$STATE"/pids/*; do [ -f "$f" ] && pids+=$'\n'$(cat "$f"); done
  pids=$(printf '%s\n' "$pids" | grep -E '^[0-9]+$' | sort -un || true)
  if [ -n "$pids" ]; then
    found=1
    say "stopping $(printf '%s\n' "$pids" | wc -l) processes"
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    for _ in $(seq 1 10); do
      alive=0
      for pid in $(cg_all_pids); do kill -0 "$pid" 2>/dev/null && { alive=1; break; }; done
      [ "$alive" = 0 ] && break
      sleep 0.2
    done
    local freezer="$CGROUP_ROOT_FS/freezer/$CGROUP_PARENT"
    for _ in 1 2 3 4 5; do
      pids=$(cg_all_pids)
      [ -z "$pids" ] && break
      if [ -f "$freezer/freezer.state" ]; then echo FROZEN >"$freezer/freezer.state" 2>/dev/null || true; fi
      # shellcheck disable=SC2086
      kill -KILL $pids 2>/dev/null || true
      if [ -f "$freezer/freezer.state" ]; then echo THAWED >"$freezer/freezer.state" 2>/dev/null || true; fi
      sleep 0.3
    done
    for f in "$STATE"/pids/*; do
      if [ -f "$f" ]; then kill -KILL "$(cat "$f")" 2>/dev/null || true; fi
    done
  fi
  pids=$(cg_all_pids)
  [ -z "$pids" ] || warn "processes still in the cluster's cgroups: $(echo "$pids" | tr '\n' ' ')"
  cg_remove_all

  # 2. Mount namespaces: unpinning them unmounts what the nodes mounted (tmpfs, binds, overlays).
  if [ -d "$NS_DIR" ]; then
    for f in "$NS_DIR"/*.mnt; do
      [ -e "$f" ] || continue
      found=1
      umount "$f" 2>/dev/null || umount -l "$f" 2>/dev/null || true
    done
    if grep -q " $NS_DIR " /proc/self/mountinfo; then umount "$NS_DIR" 2>/dev/null || umount -l "$NS_DIR"; fi
  fi
  # Anything else of ours still mounted in the host's namespace (nothing should be).
  while read -r mnt; do
    found=1
    warn "unmounting leftover $mnt"
    umount -l "$mnt" 2>/dev/null || true
  done < <(awk -v s="$STATE/" 'index($5, s) == 1 {print $5}' /proc/self/mountinfo | sort -r)

  # 3. Network: deleting a namespace deletes its veths, bridges, routes, iptables rules and ipsets.
  for n in $(our_netns); do
    found=1
    ip netns delete "$n" 2>/dev/null || warn "could not delete network namespace $n"
  done
  if ip link show "$HOST_VETH" >/dev/null 2>&1; then found=1; ip link delete "$HOST_VETH" 2>/dev/null || true; fi

  # 4. The global sysctls the kubelet changed.
  if [ -f "$STATE/host-sysctls" ]; then
    local k v
    while read -r k v; do
      if [ -n "$k" ]; then sysctl -q -w "$k=$v" >/dev/null 2>&1 || true; fi
    done <"$STATE/host-sysctls"
    rm -f "$STATE/host-sysctls"
  fi

  # 5. Files: node directories (container layers, volumes, etcd data). The last run's logs are kept
  #    next to the state for a post-mortem.
  if [ -d "$STATE" ]; then
    found=1
    if [ -d "$STATE/logs" ]; then
      rm -rf "$LC_CACHE/last-run-logs"
      mkdir -p "$LC_CACHE"
      mv "$STATE/logs" "$LC_CACHE/last-run-logs"
    fi
    rm -rf "$STATE"
  fi
  [ "$found" = 1 ]   # true when there was something to remove
}
