#!/usr/bin/env bash
# The cluster loadlab runs experiments on: `npm run cluster:up` / `npm run cluster:down`.
#
#   scripts/cluster.sh up [--provider=kind|local] [--dry-run]
#       kind (default): create the kind cluster (kind-config.yaml), install kube-prometheus-stack
#         and grafana/k6-operator at pinned versions, build and load our images;
#       local: the one-host cluster of scripts/local-cluster/ (no Docker; needs root): build what
#         is missing (build.sh, images.sh: cached after the first time), start it (up.sh) and
#         install k6-operator's TestRun CRD (k6-operator itself is not run there);
#       then, on either: the database Secret, charts/loadlab/, wait until ready, print the next
#       commands.
#   scripts/cluster.sh install [--provider=kind|local] [--dry-run]
#       only the last part, into the provider's running cluster.
#   scripts/cluster.sh down [--provider=kind|local] [--dry-run]   delete the cluster
#
# Idempotent: a second `up` reuses the cluster, upgrades the releases in place, keeps the database
# Secret. --dry-run prints every command instead of running it (and only warns about missing
# tools). kind needs docker, kind, helm and kubectl; it cannot run on the CI machines (no Docker
# engine): there the local provider runs, and the tests (cdk8s/test/cluster.test.ts) install
# loadlab with `install --provider=local`. LOADLAB_CLUSTER names the kind cluster (default loadlab).
#
# On the local cluster, charts/loadlab/ is applied unchanged but for two images that cannot exist
# here: PostgreSQL (loadlab/postgres) stands in for TimescaleDB, whose image cannot be pulled and
# which has no Debian package, and Debian's postgres_exporter for the chart's (both images accept
# the chart's arguments: see scripts/local-cluster/images/).
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned: the versions of the CRDs the tests read from ../shared/vendor/ (a test checks these
# against cdk8s/src/settings.ts).
K6_OPERATOR_VERSION=v1.6.0
KUBE_PROMETHEUS_STACK_VERSION=88.0.0

CLUSTER="${LOADLAB_CLUSTER:-loadlab}"
CONTEXT="kind-$CLUSTER"
SYSTEM_NS=loadlab-system
EXPERIMENTS_NS=loadlab
MONITORING_NS=monitoring
SECRET=loadlab-database
# The role the operator connects as (settings.ts DATABASE_SECRET.adminUser).
DB_ADMIN=loadlab_admin
# cdk8s/src/charts/operator.ts OPERATOR_APISERVER_POLICY, settings.ts PORTS (a test compares them).
OPERATOR_APISERVER_POLICY=loadlab-operator-apiserver
APISERVER_PORTS="443 6443"
PROMETHEUS_PORT=9090

usage() { printf 'usage: %s up|install|down [--provider=kind|local] [--dry-run]\n' "$0" >&2; exit 2; }
command_name="${1:-}"
[ -n "$command_name" ] || usage
shift
dry=0
provider=kind
for arg in "$@"; do
  case "$arg" in
    --dry-run) dry=1 ;;
    --provider=kind|--provider=local) provider=${arg#--provider=} ;;
    *) usage ;;
  esac
done

# The local cluster's names and paths (its kubeconfig, the stand-in images), and its lock.
if [ "$provider" = local ]; then
  # shellcheck source=scripts/local-cluster/lib.sh
  source scripts/local-cluster/lib.sh
  LOCAL_LOCK="${TMPDIR:-/tmp}/loadlab-local-cluster.lock"
  K=(kubectl --kubeconfig "$KUBECONFIG_PATH")
else
  K=(kubectl --context "$CONTEXT")
fi
# (after lib.sh: these are this script's own)
say() { printf 'cluster: %s\n' "$*"; }
die() { printf 'cluster: error: %s\n' "$*" >&2; exit 1; }
# Runs a command, or prints it in dry mode.
run() {
  if [ "$dry" = 1 ]; then printf '+ %s\n' "$*"; else "$@"; fi
}

require_tools() {
  local missing=() tool
  for tool in "$@"; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  local how="install them: docker (https://docs.docker.com/engine/install/), kind (go install sigs.k8s.io/kind@latest), helm (https://helm.sh/docs/intro/install/), kubectl (https://kubernetes.io/docs/tasks/tools/)"
  if [ "$dry" = 1 ]; then
    say "warning: missing ${missing[*]} (a real run stops here); $how"
  else
    die "missing ${missing[*]}: $how"
  fi
}

cluster_exists() {
  [ "$dry" = 0 ] && kind get clusters 2>/dev/null | grep -qx "$CLUSTER"
}

random_hex() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }

# --- the local cluster: one per machine -----------------------------------------------------------------
# A lock file says who uses it (the format of sandbox/src/cluster.ts, which the tests take): line 1
# "<pid> <start time>" (pid 0: brought up here, by hand, until `down`), line 2 who.
local_lock_holder() { # prints the holder when a live test run holds the lock
  [ -f "$LOCAL_LOCK" ] || return 1
  local pid ticks who
  { read -r pid ticks; read -r who; } <"$LOCAL_LOCK" || true
  [ "${pid:-0}" != 0 ] || return 1
  local now
  now=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f20) || return 1
  [ -n "$now" ] && [ "$now" = "$ticks" ] || return 1
  printf '%s (pid %s)' "$who" "$pid"
}
local_cluster_answers() {
  [ -f "$KUBECONFIG_PATH" ] && kubectl --kubeconfig "$KUBECONFIG_PATH" get --raw /readyz >/dev/null 2>&1
}
local_up() {
  [ "$dry" = 1 ] || need_root "the local cluster creates network namespaces, cgroups and mounts"
  local holder
  if holder=$(local_lock_holder); then die "the local cluster is in use by $holder: only one can run on a machine; wait until it is done"; fi
  if [ "$dry" = 0 ] && local_cluster_answers; then
    say "the local cluster is up: reusing it"
  else
    say "building what the local cluster needs (cached after the first time: scripts/local-cluster/build.sh, images.sh)"
    run bash scripts/local-cluster/build.sh
    run bash scripts/local-cluster/images.sh
    say "starting the local cluster (scripts/local-cluster/up.sh)"
    run bash scripts/local-cluster/up.sh
  fi
  if [ "$dry" = 0 ]; then printf '0 \nnpm run cluster:up -- --provider=local on %s\n' "$(date -u +%FT%TZ)" >"$LOCAL_LOCK"; fi
}
local_down() {
  [ "$dry" = 1 ] || need_root "removing the local cluster removes network namespaces, cgroups and mounts"
  local holder
  if holder=$(local_lock_holder); then die "the local cluster is in use by $holder: it removes the cluster itself when it is done"; fi
  run bash scripts/local-cluster/down.sh
  if [ "$dry" = 0 ]; then rm -f "$LOCAL_LOCK"; fi
}

# --- loadlab into the provider's cluster -----------------------------------------------------------------
# charts/loadlab/ as one stream, as this provider runs it: on the local cluster every image the same
# but the two that cannot exist there (see the header); on both, the chart's stand-in for the
# operator's egress to the API server (its ports, any address) left out: control_plane_policies
# names the cluster's own addresses instead, so no apply ever widens it, not even for a moment.
chart_documents() {
  local f
  for f in charts/loadlab/*.yaml; do
    printf -- '---\n'
    if [ "$provider" = local ]; then
      sed -E -e "s#(image: )timescale/timescaledb:[^[:space:]]+#\1$IMG_POSTGRES#" \
        -e "s#(image: )quay\.io/prometheuscommunity/postgres-exporter:[^[:space:]]+#\1$IMG_POSTGRES_EXPORTER#" "$f"
    else
      cat "$f"
    fi
  done | awk -v name="$OPERATOR_APISERVER_POLICY" '
    function flush() { if (!drop) printf "%s", doc; doc = ""; drop = 0 }
    /^---$/ { flush(); doc = "---\n"; next }
    { doc = doc $0 "\n"; if ($0 == "  name: " name) drop = 1 }
    END { flush() }'
}

# The API server's addresses as pods reach it: the kubernetes Service's cluster IPs and its
# endpoints (before and after kube-proxy's translation: where a NetworkPolicy plugin looks differs),
# or LOADLAB_CONTROL_PLANE_CIDRS (comma-separated CIDRs) where the source of the API server's own
# connections (its service proxy to Prometheus) is another address, e.g. behind a load balancer.
control_plane_cidrs() {
  local list
  if [ -n "${LOADLAB_CONTROL_PLANE_CIDRS:-}" ]; then
    list=${LOADLAB_CONTROL_PLANE_CIDRS//,/ }
  elif [ "$dry" = 1 ]; then
    printf '<the kubernetes Service and endpoint addresses>/32\n'
    return
  else
    list="$("${K[@]}" -n default get service kubernetes -o jsonpath='{.spec.clusterIPs[*]}') $("${K[@]}" -n default get endpointslices -l kubernetes.io/service-name=kubernetes -o jsonpath='{.items[*].endpoints[*].addresses[*]}')"
  fi
  local entry
  for entry in $list; do
    case "$entry" in
      */*) ;;
      *:*) entry="$entry/128" ;;
      *) entry="$entry/32" ;;
    esac
    [[ "$entry" =~ ^([0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}|[0-9a-fA-F:]+/[0-9]{1,3})$ ]] ||
      die "LOADLAB_CONTROL_PLANE_CIDRS: '$entry' is not a CIDR such as 10.0.0.1/32 or fd00::1/128"
    printf '%s\n' "$entry"
  done | sort -u
}

# The two policies only an installation can write: the operator's egress to the API server and
# Prometheus' ingress from it (the service proxy `loadlab report` reads through), by address.
control_plane_policies() {
  local cidrs cidr port peers="" ports=""
  cidrs=$(control_plane_cidrs) || exit 1
  [ -n "$cidrs" ] || die "found no address of the API server (the kubernetes Service in default); set LOADLAB_CONTROL_PLANE_CIDRS"
  for cidr in $cidrs; do peers+="        - ipBlock: {cidr: \"$cidr\"}"$'\n'; done
  for port in $APISERVER_PORTS; do ports+="        - {protocol: TCP, port: $port}"$'\n'; done
  cat <<EOF
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: $OPERATOR_APISERVER_POLICY
  namespace: $SYSTEM_NS
  labels: {app.kubernetes.io/part-of: loadlab, app.kubernetes.io/component: operator}
spec:
  podSelector: {matchLabels: {app.kubernetes.io/component: operator}}
  policyTypes: [Egress]
  egress:
    - to:
${peers}      ports:
${ports}---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: prometheus-from-control-plane
  namespace: $MONITORING_NS
  labels: {app.kubernetes.io/part-of: loadlab}
spec:
  podSelector: {matchLabels: {app.kubernetes.io/name: prometheus}}
  policyTypes: [Ingress]
  ingress:
    - from:
${peers}      ports:
        - {protocol: TCP, port: $PROMETHEUS_PORT}
EOF
}

install_loadlab() {
  if [ "$provider" = local ]; then
    # k6-operator's TestRun CRD, which the operator writes: read from the vendored copy by path
    # when there is one (this workplace's ../shared/vendor), else from its release.
    local crd="${LOADLAB_VENDOR_DIR:-../shared/vendor}/k6-operator-$K6_OPERATOR_VERSION/k6.io_testruns.yaml"
    [ -f "$crd" ] || crd="https://raw.githubusercontent.com/grafana/k6-operator/$K6_OPERATOR_VERSION/config/crd/bases/k6.io_testruns.yaml"
    say "installing k6-operator $K6_OPERATOR_VERSION's TestRun CRD (k6-operator itself does not run on the local cluster)"
    run "${K[@]}" apply --server-side --force-conflicts -f "$crd"
  fi

  say "the database Secret (a random password, made once, never in charts/)"
  if [ "$dry" = 0 ] && "${K[@]}" -n "$SYSTEM_NS" get secret "$SECRET" >/dev/null 2>&1; then
    say "secret $SYSTEM_NS/$SECRET exists: keeping it"
  else
    local password admin_password secret_key
    password=$(random_hex)
    admin_password=$(random_hex)
    secret_key=$(random_hex)$(random_hex)
    if [ "$dry" = 1 ]; then password='<random>'; admin_password='<random>'; secret_key='<random>'; fi
    if [ "$dry" = 1 ] || ! "${K[@]}" get namespace "$SYSTEM_NS" >/dev/null 2>&1; then
      run "${K[@]}" create namespace "$SYSTEM_NS"
    fi
    # password: the database's superuser (the database container and its exporter only);
    # url: the operator's admin, $DB_ADMIN, which may create roles but is no superuser.
    run "${K[@]}" -n "$SYSTEM_NS" create secret generic "$SECRET" \
      --from-literal=password="$password" \
      --from-literal=admin-password="$admin_password" \
      --from-literal=url="postgres://$DB_ADMIN:$admin_password@timescaledb.$SYSTEM_NS.svc:5432/loadlab" \
      --from-literal=secret-key="$secret_key"
  fi

  say "applying charts/ (CRD, operator, API defaults, TimescaleDB, monitoring, dashboards)"
  if [ "$provider" = local ]; then
    say "  with PostgreSQL ($IMG_POSTGRES) standing in for TimescaleDB and $IMG_POSTGRES_EXPORTER for the chart's postgres_exporter"
  fi
  local policies
  policies=$(control_plane_policies) || exit 1
  say "  the operator's egress to the API server and Prometheus' ingress from it: $(control_plane_cidrs | paste -sd' ')"
  if [ "$dry" = 1 ]; then
    run "${K[@]}" apply --server-side --force-conflicts -f - "<(charts/loadlab/ but $OPERATOR_APISERVER_POLICY, then:)"
    printf '%s\n' "$policies"
  else
    { chart_documents; printf '%s\n' "$policies"; } | "${K[@]}" apply --server-side --force-conflicts -f -
  fi
  if [ "$provider" = kind ]; then
    # Restart the operator so it runs the image just loaded (the tag stays :dev).
    run "${K[@]}" -n "$SYSTEM_NS" rollout restart deployment/loadlab-operator
  fi
  say "waiting for TimescaleDB and the operator"
  run "${K[@]}" -n "$SYSTEM_NS" rollout status statefulset/timescaledb --timeout 10m
  database_admin
  run "${K[@]}" -n "$SYSTEM_NS" rollout status deployment/loadlab-operator --timeout 5m
}

# The operator's database admin: LOGIN CREATEROLE and CREATE on the database (for the experiments'
# schemas and its own fence), no superuser; made or brought up to date at every install, with the
# password the Secret holds (the statement goes in on stdin, not on a command line).
database_admin() {
  say "the operator's database admin $DB_ADMIN (CREATEROLE, not a superuser)"
  if [ "$dry" = 1 ]; then
    run "${K[@]}" -n "$SYSTEM_NS" exec -i timescaledb-0 -c timescaledb -- psql -U postgres -d loadlab -v ON_ERROR_STOP=1 "<<< CREATE/ALTER ROLE $DB_ADMIN LOGIN CREATEROLE NOSUPERUSER; GRANT CREATE ON DATABASE loadlab"
    return
  fi
  local admin_password
  admin_password=$("${K[@]}" -n "$SYSTEM_NS" get secret "$SECRET" -o jsonpath='{.data.admin-password}' | base64 -d)
  if [ -z "$admin_password" ]; then
    say "warning: secret $SYSTEM_NS/$SECRET has no admin-password (made by an older install): the operator stays the superuser its url names; delete the Secret and install again to change that"
    return
  fi
  "${K[@]}" -n "$SYSTEM_NS" exec -i timescaledb-0 -c timescaledb -- psql -q -U postgres -d loadlab -v ON_ERROR_STOP=1 <<SQL
SELECT 'CREATE ROLE $DB_ADMIN' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$DB_ADMIN') \\gexec
ALTER ROLE $DB_ADMIN WITH LOGIN CREATEROLE NOSUPERUSER NOCREATEDB PASSWORD '$admin_password';
GRANT CREATE ON DATABASE loadlab TO $DB_ADMIN;
SQL
}

kind_up() {
  require_tools docker kind helm kubectl
  if [ "$dry" = 0 ]; then
    docker info >/dev/null 2>&1 || die "docker is installed but its daemon is not reachable: start Docker and try again"
  fi

  if cluster_exists; then
    say "cluster $CLUSTER exists: reusing it"
  else
    say "creating kind cluster $CLUSTER (1 control plane, workers for sut, load and monitoring)"
    run kind create cluster --name "$CLUSTER" --config kind-config.yaml --wait 120s
  fi

  say "installing kube-prometheus-stack $KUBE_PROMETHEUS_STACK_VERSION (Prometheus with the remote-write receiver, Grafana)"
  run helm repo add prometheus-community https://prometheus-community.github.io/helm-charts --force-update
  run helm upgrade --install monitoring prometheus-community/kube-prometheus-stack \
    --kube-context "$CONTEXT" --namespace "$MONITORING_NS" --create-namespace \
    --version "$KUBE_PROMETHEUS_STACK_VERSION" --values charts/values/kube-prometheus-stack.yaml --wait --timeout 15m

  say "installing grafana/k6-operator $K6_OPERATOR_VERSION"
  run "${K[@]}" apply --server-side --force-conflicts \
    -f "https://raw.githubusercontent.com/grafana/k6-operator/$K6_OPERATOR_VERSION/bundle.yaml"
  # Its controller is control, not load: off the system under test's node.
  run "${K[@]}" -n k6-operator-system patch deployment k6-operator-controller-manager --type merge -p \
    '{"spec":{"template":{"spec":{"nodeSelector":{"loadlab.dev/role":"monitoring"},"tolerations":[{"key":"loadlab.dev/role","operator":"Equal","value":"monitoring","effect":"NoSchedule"}]}}}}'
  run "${K[@]}" -n k6-operator-system rollout status deployment/k6-operator-controller-manager --timeout 5m

  say "building the images (loadlab/api:dev, loadlab/operator:dev) and loading them into the cluster"
  run docker build -f api/Dockerfile -t loadlab/api:dev .
  run docker build -f operator/Dockerfile -t loadlab/operator:dev .
  run kind load docker-image loadlab/api:dev loadlab/operator:dev --name "$CLUSTER"
}

next_steps() {
  if [ "$provider" = local ]; then
    run "${K[@]}" config set-context --current --namespace "$EXPERIMENTS_NS"
    cat <<EOF

loadlab is up on the local cluster (kubeconfig $KUBECONFIG_PATH, namespace $EXPERIMENTS_NS).
PostgreSQL stands in for TimescaleDB; k6-operator does not run here, so an experiment is
provisioned (its API runs against the database) and waits for its TestRun.
Next:
  export KUBECONFIG=$KUBECONFIG_PATH
  kubectl apply -f experiments/smoke.yaml
  kubectl get loadexperiments -w
  npm run cluster:down -- --provider=local    # remove the cluster
EOF
    return
  fi
  run kubectl config set-context "$CONTEXT" --namespace "$EXPERIMENTS_NS"
  cat <<EOF

loadlab is up on kind cluster $CLUSTER (context $CONTEXT, namespace $EXPERIMENTS_NS).
Next:
  kubectl apply -f experiments/seed-20k.yaml
  kubectl get loadexperiments -w          # phase, fleet, RPS, p95, errors, breaking point, bottleneck
  kubectl describe loadexperiment seed-20k
  kubectl -n $MONITORING_NS port-forward svc/monitoring-grafana 3000:80
    then open http://localhost:3000 (the status' grafanaUrl preselects the run), login admin /
    \$(kubectl -n $MONITORING_NS get secret monitoring-grafana -o jsonpath='{.data.admin-password}' | base64 -d)
  npm run cluster:down                    # delete the cluster
EOF
}

kind_down() {
  require_tools kind
  if [ "$dry" = 0 ] && ! kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
    say "no kind cluster $CLUSTER: nothing to delete"
    return 0
  fi
  run kind delete cluster --name "$CLUSTER"
}

case "$command_name:$provider" in
  up:kind) kind_up; install_loadlab; next_steps ;;
  up:local) local_up; install_loadlab; next_steps ;;
  install:kind) require_tools kubectl; install_loadlab ;;
  install:local) install_loadlab ;;
  down:kind) kind_down ;;
  down:local) local_down ;;
  *) usage ;;
esac
