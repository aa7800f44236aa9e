#!/usr/bin/env bash
# Proves the local cluster works, against the running cluster (scripts/local-cluster/up.sh first):
#   1. every node Ready, with kind-config.yaml's loadlab.dev/role labels and taints
#   2. PostgreSQL (loadlab/postgres) on a PersistentVolumeClaim bound to one of up.sh's static volumes
#   3. the API (loadlab/api:dev) against it: non-root, read-only root filesystem, Ready
#   4. the API's Service reached by ClusterIP and by DNS name from a pod on another node; the
#      machine's gateway and outside address unreachable from a pod (traffic stays on the machine)
#   5. NetworkPolicy: with default-deny in the API's namespace, a pod in another namespace is
#      blocked while one in an allowed namespace passes (and both passed before the policy)
#   6. PodMonitors for the API and postgres_exporter (a sidecar of PostgreSQL) become Prometheus
#      scrape targets (prometheus-operator) that report up
#   7. a Deployment deleted with --cascade=background: the controller-manager's garbage collector
#      removes its ReplicaSet and pods
# Leaves nothing behind (its namespaces are deleted at the end, and at the start if a run was cut).
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
LOG_PREFIX=smoke
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
[ -f "$KUBECONFIG_PATH" ] || die "no cluster: $KUBECONFIG_PATH is missing (run scripts/local-cluster/up.sh)"
k() { kubectl --kubeconfig "$KUBECONFIG_PATH" "$@"; }
k get --raw /readyz >/dev/null 2>&1 || die "the API server at https://$API_IP:$API_PORT does not answer (run scripts/local-cluster/up.sh)"

NS=loadlab-smoke              # the API and its database
NS_DENIED=loadlab-smoke-other # a namespace the policy does not admit
NS_ALLOWED=loadlab-smoke-ok   # a namespace the policy admits
start=$SECONDS
pass() { printf 'smoke: ok   %s\n' "$*"; }
fail() { printf 'smoke: FAIL %s\n' "$*" >&2; exit 1; }
cleanup() { k delete namespace "$NS" "$NS_DENIED" "$NS_ALLOWED" --ignore-not-found --wait=false >/dev/null 2>&1 || true; }
for ns in "$NS" "$NS_DENIED" "$NS_ALLOWED"; do
  if k get namespace "$ns" >/dev/null 2>&1; then
    say "waiting for namespace $ns (an earlier run's) to be deleted"
    k delete namespace "$ns" --ignore-not-found --wait=true --timeout 180s >/dev/null
  fi
done
trap cleanup EXIT

# --- 1. nodes ---------------------------------------------------------------------------------------
k get nodes -L loadlab.dev/role -o wide | sed 's/^/smoke:   /'
for entry in "${NODES[@]}"; do
  n=$(node_field "$entry" 0); role=$(node_field "$entry" 3); taint=$(node_field "$entry" 4)
  ready=$(k get node "$n" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')
  [ "$ready" = True ] || fail "node $n is not Ready ($ready)"
  if [ "$role" != - ]; then
    got=$(k get node "$n" -o jsonpath='{.metadata.labels.loadlab\.dev/role}')
    [ "$got" = "$role" ] || fail "node $n: label loadlab.dev/role is '$got', expected '$role'"
  fi
  taints=$(k get node "$n" -o jsonpath='{range .spec.taints[*]}{.key}={.value}:{.effect}{" "}{end}')
  if [ "$taint" != - ]; then
    case " $taints" in *" $taint "*) ;; *) fail "node $n: taints are '$taints', expected $taint" ;; esac
  fi
  pass "node $n Ready, role ${role/-/control-plane}, taints: ${taints:-none}"
done

# --- 2 and 3. PostgreSQL on a PVC, the API against it -----------------------------------------------------
password=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
token_secret=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
restricted_container='
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            runAsNonRoot: true
            capabilities: {drop: [ALL]}'
k apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Namespace
metadata: {name: $NS}
---
apiVersion: v1
kind: Namespace
metadata: {name: $NS_DENIED}
---
apiVersion: v1
kind: Namespace
metadata: {name: $NS_ALLOWED, labels: {loadlab.dev/smoke: allowed}}
---
apiVersion: v1
kind: Secret
metadata: {name: database, namespace: $NS}
stringData:
  password: "$password"
  url: "postgres://postgres:$password@postgres.$NS.svc.$CLUSTER_DOMAIN:5432/loadlab"
  token-secret: "$token_secret"
  exporter-dsn: "postgresql://postgres:$password@127.0.0.1:5432/loadlab?sslmode=disable"
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: postgres-data, namespace: $NS}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: postgres, namespace: $NS}
spec:
  replicas: 1
  strategy: {type: Recreate}
  selector: {matchLabels: {app: postgres}}
  template:
    metadata: {labels: {app: postgres}}
    spec:
      nodeSelector: {loadlab.dev/role: sut}
      securityContext: {runAsUser: 70, runAsGroup: 70, fsGroup: 70, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: postgres
          image: $IMG_POSTGRES
          imagePullPolicy: Never
          args: [-c, max_connections=50, -c, shared_buffers=64MB]
          env:
            - {name: POSTGRES_USER, value: postgres}
            - {name: POSTGRES_DB, value: loadlab}
            - {name: PGDATA, value: /var/lib/postgresql/data/pgdata}
            - name: POSTGRES_PASSWORD
              valueFrom: {secretKeyRef: {name: database, key: password}}
          ports: [{name: postgres, containerPort: 5432}]
          readinessProbe:
            exec: {command: [pg_isready, -U, postgres, -h, 127.0.0.1]}
            periodSeconds: 2
$restricted_container
          volumeMounts:
            - {name: data, mountPath: /var/lib/postgresql/data}
            - {name: run, mountPath: /var/run/postgresql}
            - {name: tmp, mountPath: /tmp}
        - name: postgres-exporter
          image: $IMG_POSTGRES_EXPORTER
          imagePullPolicy: Never
          env:
            - name: DATA_SOURCE_NAME
              valueFrom: {secretKeyRef: {name: database, key: exporter-dsn}}
          ports: [{name: metrics, containerPort: 9187}]
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            runAsNonRoot: true
            runAsUser: 65534
            capabilities: {drop: [ALL]}
      volumes:
        - name: data
          persistentVolumeClaim: {claimName: postgres-data}
        - {name: run, emptyDir: {}}
        - {name: tmp, emptyDir: {}}
---
apiVersion: v1
kind: Service
metadata: {name: postgres, namespace: $NS}
spec:
  selector: {app: postgres}
  ports: [{name: postgres, port: 5432, targetPort: postgres}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: $NS}
spec:
  replicas: 1
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      nodeSelector: {loadlab.dev/role: sut}
      securityContext: {runAsUser: 1000, runAsGroup: 1000, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: api
          image: $IMG_API
          imagePullPolicy: Never
          env:
            - name: DATABASE_URL
              valueFrom: {secretKeyRef: {name: database, key: url}}
            - name: TOKEN_SECRET
              valueFrom: {secretKeyRef: {name: database, key: token-secret}}
          ports: [{name: http, containerPort: 3000}]
          readinessProbe:
            httpGet: {path: /readyz, port: http}
            periodSeconds: 2
$restricted_container
          volumeMounts:
            - {name: tmp, mountPath: /tmp}
      volumes:
        - {name: tmp, emptyDir: {}}
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: $NS}
spec:
  selector: {app: api}
  ports: [{name: http, port: 80, targetPort: http}]
EOF
t=$SECONDS
k -n "$NS" rollout status deploy/postgres --timeout 180s >/dev/null ||
  fail "PostgreSQL did not become ready: $(k -n "$NS" get pods -l app=postgres --no-headers; k -n "$NS" logs deploy/postgres --tail 20 2>&1)"
pvc=$(k -n "$NS" get pvc postgres-data -o jsonpath='{.status.phase} {.spec.volumeName} {.spec.storageClassName}')
[ "${pvc%% *}" = Bound ] || fail "PVC postgres-data is not Bound: $pvc"
pv=$(echo "$pvc" | cut -d' ' -f2)
pass "PVC postgres-data Bound to $pv (StorageClass $(echo "$pvc" | cut -d' ' -f3), a static volume on $(k get pv "$pv" -o jsonpath='{.spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values[0]}'))"
pass "PostgreSQL ($IMG_POSTGRES) ready on $(k -n "$NS" get pods -l app=postgres -o jsonpath='{.items[0].spec.nodeName}') as uid 70 in $(elapsed "$t")"

t=$SECONDS
k -n "$NS" rollout status deploy/api --timeout 180s >/dev/null ||
  fail "the API did not become ready: $(k -n "$NS" get pods -l app=api --no-headers; k -n "$NS" logs deploy/api --tail 20 2>&1)"
api_pod=$(k -n "$NS" get pods -l app=api -o jsonpath='{.items[0].metadata.name}')
ids=$(k -n "$NS" exec "$api_pod" -- id 2>/dev/null)
case "$ids" in uid=1000*) ;; *) fail "the API runs as '$ids', expected uid 1000" ;; esac
if k -n "$NS" exec "$api_pod" -- touch /app/written 2>/dev/null; then fail "the API's root filesystem is writable"; fi
rofs=$(k -n "$NS" exec "$api_pod" -- sh -c 'touch /app/written 2>&1 || true' 2>/dev/null)
pass "API ($IMG_API) Ready on $(k -n "$NS" get pod "$api_pod" -o jsonpath='{.spec.nodeName}') in $(elapsed "$t"): $ids; writing / fails: ${rofs#touch: }"

# --- 4. Service by ClusterIP and by DNS, from another node ---------------------------------------------------
api_ip=$(k -n "$NS" get svc api -o jsonpath='{.spec.clusterIP}')
# client NAMESPACE NAME: a pod on the load node that runs `node` (for fetch) and stays up.
client() {
  k apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: $2, namespace: $1, labels: {app: client}}
spec:
  nodeSelector: {loadlab.dev/role: load}
  tolerations: [{key: loadlab.dev/role, operator: Equal, value: load, effect: NoSchedule}]
  securityContext: {runAsUser: 1000, runAsGroup: 1000, seccompProfile: {type: RuntimeDefault}}
  terminationGracePeriodSeconds: 0
  containers:
    - name: client
      image: $IMG_NODE
      imagePullPolicy: Never
      command: [sleep, infinity]
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        runAsNonRoot: true
        capabilities: {drop: [ALL]}
EOF
}
client "$NS_DENIED" client
client "$NS_ALLOWED" client
k -n "$NS_DENIED" wait --for condition=Ready pod/client --timeout 120s >/dev/null || fail "client pod in $NS_DENIED did not start"
k -n "$NS_ALLOWED" wait --for condition=Ready pod/client --timeout 120s >/dev/null || fail "client pod in $NS_ALLOWED did not start"
# fetch_from NAMESPACE URL: "<status>" or "error: ..." after at most 3 s.
fetch_from() {
  k -n "$1" exec client -- node -e '
    fetch(process.argv[1], {signal: AbortSignal.timeout(3000)})
      .then(r => console.log(r.status)).catch(e => console.log("error: " + (e.cause?.code ?? e.name)))' "$2"
}
got=$(fetch_from "$NS_DENIED" "http://$api_ip/readyz")
[ "$got" = 200 ] || fail "GET http://$api_ip/readyz (ClusterIP) from $NS_DENIED: $got"
pass "Service api: ClusterIP $api_ip answers 200 from a pod on $(k -n "$NS_DENIED" get pod client -o jsonpath='{.spec.nodeName}')"
name="api.$NS.svc.$CLUSTER_DOMAIN"
resolved=$(k -n "$NS_DENIED" exec client -- getent hosts "$name" | awk '{print $1}')
[ "$resolved" = "$api_ip" ] || fail "DNS: $name resolved to '$resolved', expected $api_ip"
got=$(fetch_from "$NS_DENIED" "http://api.$NS/readyz")
[ "$got" = 200 ] || fail "GET http://api.$NS/readyz (DNS) from $NS_DENIED: $got"
pass "DNS: $name is $api_ip; http://api.$NS/readyz answers 200 (search path)"

# Nothing leaves the machine: the host's gateway and the host's own outside address are unreachable
# from a pod (no node has a route beyond the cluster's ranges; nothing masquerades).
gateway=$(ip -4 route show default | awk '{print $3; exit}')
host_ip=$(ip -4 route get "${gateway:-192.0.2.1}" 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "src") {print $(i + 1); exit}}')
for target in $gateway $host_ip; do
  got=$(fetch_from "$NS_DENIED" "http://$target/")
  case "$got" in "error: ENETUNREACH"|"error: EHOSTUNREACH") ;; *) fail "a pod reached $target, outside the cluster: $got" ;; esac
done
pass "egress stays inside: from a pod, the machine's gateway ${gateway:-(none)} and its address ${host_ip:-(none)} are unreachable ($got)"

# --- 5. NetworkPolicy ---------------------------------------------------------------------------------------------
k apply -f - >/dev/null <<EOF
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: $NS}
spec:
  podSelector: {}
  policyTypes: [Ingress]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api-from-allowed-namespaces, namespace: $NS}
spec:
  podSelector: {matchLabels: {app: api}}
  policyTypes: [Ingress]
  ingress:
    - from: [{namespaceSelector: {matchLabels: {loadlab.dev/smoke: allowed}}}]
      ports: [{port: 3000, protocol: TCP}]
    - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}}]
      ports: [{port: 3000, protocol: TCP}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: postgres-from-api, namespace: $NS}
spec:
  podSelector: {matchLabels: {app: postgres}}
  policyTypes: [Ingress]
  ingress:
    - from: [{podSelector: {matchLabels: {app: api}}}]
      ports: [{port: 5432, protocol: TCP}]
    - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}}]
      ports: [{port: 9187, protocol: TCP}]
EOF
# kube-router applies policies asynchronously: wait until the denied namespace is blocked.
denied=""
for _ in $(seq 1 30); do
  denied=$(fetch_from "$NS_DENIED" "http://$api_ip/readyz")
  case "$denied" in error:*) break ;; esac
  sleep 1
done
case "$denied" in error:*) ;; *) fail "NetworkPolicy: $NS_DENIED still reaches the API ($denied)" ;; esac
allowed=$(fetch_from "$NS_ALLOWED" "http://$api_ip/readyz")
[ "$allowed" = 200 ] || fail "NetworkPolicy: $NS_ALLOWED (allowed) gets '$allowed' from the API"
pass "NetworkPolicy default-deny: from $NS_DENIED '$denied', from $NS_ALLOWED (admitted) $allowed; the API still reaches PostgreSQL: $(k -n "$NS" exec "$api_pod" -- node -e 'fetch("http://127.0.0.1:3000/readyz").then(r=>console.log(r.status))')"

ready=$(k -n "$NS" get pod "$api_pod" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')
[ "$ready" = True ] || fail "NetworkPolicy: the API pod is no longer Ready behind default-deny (kubelet probes blocked?)"

# --- 6. PodMonitors become Prometheus scrape targets -------------------------------------------------------------
# Named per run: the job label (<namespace>/<PodMonitor>) then exists only in the configuration
# the operator generates now, not in one a previous run left in Prometheus.
run_id=$(date +%s)
k apply -f - >/dev/null <<EOF
apiVersion: monitoring.coreos.com/v1
kind: PodMonitor
metadata: {name: api-$run_id, namespace: $NS}
spec:
  selector: {matchLabels: {app: api}}
  podMetricsEndpoints: [{port: http, path: /metrics, interval: 5s}]
---
apiVersion: monitoring.coreos.com/v1
kind: PodMonitor
metadata: {name: postgres-$run_id, namespace: $NS}
spec:
  selector: {matchLabels: {app: postgres}}
  podMetricsEndpoints: [{port: metrics, interval: 5s}]
EOF
prom="/api/v1/namespaces/monitoring/services/prometheus-operated:web/proxy/api/v1"
# query EXPR: the first sample's value (through the API server's service proxy).
query() { k get --raw "$prom/query?query=$1" | sed -n 's/.*"value":\[[0-9.]*,"\([^"]*\)"\].*/\1/p'; }
t=$SECONDS
api_up="" pg_up=""
for _ in $(seq 1 90); do
  api_up=$(query "up%7Bjob%3D%22$NS%2Fapi-$run_id%22%2Cpod%3D%22$api_pod%22%7D")
  pg_up=$(query "pg_up%7Bjob%3D%22$NS%2Fpostgres-$run_id%22%7D")
  [ "$api_up" = 1 ] && [ "$pg_up" = 1 ] && break
  sleep 2
done
[ "$api_up" = 1 ] || fail "Prometheus: no healthy scrape of the API's PodMonitor after $(elapsed "$t") (up=$api_up): $(k get --raw "$prom/targets?state=active" | head -c 600)"
[ "$pg_up" = 1 ] || fail "Prometheus: postgres_exporter's pg_up is '$pg_up' after $(elapsed "$t")"
pass "PodMonitors became scrape targets in $(elapsed "$t"): up{job=\"$NS/api-$run_id\",pod=\"$api_pod\"} = 1, pg_up{job=\"$NS/postgres-$run_id\"} = 1 (postgres_exporter), through NetworkPolicy from namespace monitoring"

# --- 7. garbage collection ----------------------------------------------------------------------------------------
k apply -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: gc-demo, namespace: $NS, labels: {app: gc-demo}}
spec:
  replicas: 2
  selector: {matchLabels: {app: gc-demo}}
  template:
    metadata: {labels: {app: gc-demo}}
    spec:
      nodeSelector: {loadlab.dev/role: sut}
      containers: [{name: pause, image: $IMG_PAUSE, imagePullPolicy: Never}]
EOF
k -n "$NS" rollout status deploy/gc-demo --timeout 120s >/dev/null || fail "gc-demo did not roll out"
rs=$(k -n "$NS" get rs -l app=gc-demo -o jsonpath='{.items[*].metadata.name}')
pods=$(k -n "$NS" get pods -l app=gc-demo -o jsonpath='{.items[*].metadata.name}')
t=$SECONDS
k -n "$NS" delete deployment gc-demo --cascade=background >/dev/null
left=""
for _ in $(seq 1 60); do
  left=$(k -n "$NS" get rs,pods -l app=gc-demo --no-headers 2>/dev/null | wc -l)
  [ "$left" = 0 ] && break
  sleep 1
done
[ "$left" = 0 ] || fail "garbage collection: $left ReplicaSets/pods of the deleted Deployment remain"
pass "garbage collector: Deployment deleted with --cascade=background; ReplicaSet $rs and pods $pods gone in $(elapsed "$t")"

say "all checks passed in $(elapsed "$start") (deleting the smoke namespaces)"
