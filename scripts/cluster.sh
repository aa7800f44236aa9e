#!/usr/bin/env bash
# The kind cluster loadlab runs experiments on: `npm run cluster:up` / `npm run cluster:down`.
#
#   scripts/cluster.sh up [--dry-run]     create the cluster (kind-config.yaml), install
#                                         kube-prometheus-stack and grafana/k6-operator at pinned
#                                         versions, build and load our images, apply charts/, wait
#                                         until ready, print the next commands
#   scripts/cluster.sh down [--dry-run]   delete the cluster
#
# Idempotent: a second `up` reuses the cluster, upgrades the releases in place, keeps the database
# Secret. --dry-run prints every command instead of running it (and only warns about missing
# tools). Needs docker, kind, helm and kubectl; cannot run on the CI machines (no Docker engine).
# LOADLAB_CLUSTER names the cluster (default loadlab).
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

usage() { printf 'usage: %s up|down [--dry-run]\n' "$0" >&2; exit 2; }
command_name="${1:-}"
[ -n "$command_name" ] || usage
shift
dry=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) dry=1 ;;
    *) usage ;;
  esac
done

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

up() {
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
  local k=(kubectl --context "$CONTEXT")

  say "installing kube-prometheus-stack $KUBE_PROMETHEUS_STACK_VERSION (Prometheus with the remote-write receiver, Grafana)"
  run helm repo add prometheus-community https://prometheus-community.github.io/helm-charts --force-update
  run helm upgrade --install monitoring prometheus-community/kube-prometheus-stack \
    --kube-context "$CONTEXT" --namespace "$MONITORING_NS" --create-namespace \
    --version "$KUBE_PROMETHEUS_STACK_VERSION" --values charts/values/kube-prometheus-stack.yaml --wait --timeout 15m

  say "installing grafana/k6-operator $K6_OPERATOR_VERSION"
  run "${k[@]}" apply --server-side --force-conflicts \
    -f "https://raw.githubusercontent.com/grafana/k6-operator/$K6_OPERATOR_VERSION/bundle.yaml"
  # Its controller is control, not load: off the system under test's node.
  run "${k[@]}" -n k6-operator-system patch deployment k6-operator-controller-manager --type merge -p \
    '{"spec":{"template":{"spec":{"nodeSelector":{"loadlab.dev/role":"monitoring"},"tolerations":[{"key":"loadlab.dev/role","operator":"Equal","value":"monitoring","effect":"NoSchedule"}]}}}}'
  run "${k[@]}" -n k6-operator-system rollout status deployment/k6-operator-controller-manager --timeout 5m

  say "building the images (loadlab/api:dev, loadlab/operator:dev) and loading them into the cluster"
  run docker build -f api/Dockerfile -t loadlab/api:dev .
  run docker build -f operator/Dockerfile -t loadlab/operator:dev .
  run kind load docker-image loadlab/api:dev loadlab/operator:dev --name "$CLUSTER"

  say "the database Secret (a random password, made once, never in charts/)"
  if [ "$dry" = 0 ] && "${k[@]}" -n "$SYSTEM_NS" get secret "$SECRET" >/dev/null 2>&1; then
    say "secret $SYSTEM_NS/$SECRET exists: keeping it"
  else
    local password secret_key
    password=$(random_hex)
    secret_key=$(random_hex)$(random_hex)
    if [ "$dry" = 1 ]; then password='<random>'; secret_key='<random>'; fi
    if [ "$dry" = 1 ] || ! "${k[@]}" get namespace "$SYSTEM_NS" >/dev/null 2>&1; then
      run "${k[@]}" create namespace "$SYSTEM_NS"
    fi
    run "${k[@]}" -n "$SYSTEM_NS" create secret generic "$SECRET" \
      --from-literal=password="$password" \
      --from-literal=url="postgres://postgres:$password@timescaledb.$SYSTEM_NS.svc:5432/loadlab" \
      --from-literal=secret-key="$secret_key"
  fi

  say "applying charts/ (CRD, operator, API defaults, TimescaleDB, monitoring, dashboards)"
  run "${k[@]}" apply --server-side --force-conflicts -f charts/loadlab/
  # Restart the operator so it runs the image just loaded (the tag stays :dev).
  run "${k[@]}" -n "$SYSTEM_NS" rollout restart deployment/loadlab-operator
  say "waiting for TimescaleDB and the operator"
  run "${k[@]}" -n "$SYSTEM_NS" rollout status statefulset/timescaledb --timeout 10m
  run "${k[@]}" -n "$SYSTEM_NS" rollout status deployment/loadlab-operator --timeout 5m
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

down() {
  require_tools kind
  if [ "$dry" = 0 ] && ! kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
    say "no kind cluster $CLUSTER: nothing to delete"
    return 0
  fi
  run kind delete cluster --name "$CLUSTER"
}

case "$command_name" in
  up) up ;;
  down) down ;;
  *) usage ;;
esac
