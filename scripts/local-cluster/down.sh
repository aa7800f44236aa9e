#!/usr/bin/env bash
# Removes the local cluster and everything it made on this machine: its processes (control plane,
# node daemons, every container), the nodes' mount namespaces and with them every mount, the
# network namespaces (and with them the bridges, veths, routes, iptables rules and ipsets), the
# host's veth, the state directory; and restores the sysctls the kubelets changed. Works after a
# killed run too, and does nothing when nothing is there. The last run's logs are kept in
# ${LOADLAB_CACHE:-~/.cache/loadlab}/local-cluster/last-run-logs.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
LOG_PREFIX=down
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=runtime.sh
source "$LC_DIR/runtime.sh"
need_root "it removes network namespaces, cgroups and mounts"
start=$SECONDS
if teardown; then
  say "removed the local cluster in $(elapsed "$start")"
else
  say "nothing to remove"
fi
