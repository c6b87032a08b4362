#!/usr/bin/env bash
# proxy-pair.sh — a meshlens client-side and server-side sidecar pair for the mesh-overhead
# harness (../shared/bench/mesh_overhead.sh), started from its BENCH_* environment:
#
#   load generator -> :$BENCH_OUR_CLIENT_PORT (client-side outbound, plain HTTP)
#     -> mTLS, HTTP/2 -> :$BENCH_OUR_SERVER_PORT (server-side inbound: policy, Avro audit)
#     -> $BENCH_UPSTREAM
#
# Both proxies run with one worker thread (like the harness's peers and linkerd2-proxy) and
# stay in this process group, as the harness requires. The harness's own certificates name
# `localhost`; meshlens identities are Linkerd names, so this script makes a Linkerd-style
# trust anchor, issuer and two workload certificates (ECDSA P-256, like the harness's) with
# `meshlens identity`. Policy: a Server on the upstream port, authorized only for the client
# identity by an AuthorizationPolicy; a SchemaContract in audit mode on that Server, so every
# response body is inspected off the request path.
#
# Usage (from the repository root, after `cargo build --release --no-default-features`):
#   OUR_PROXY_START='exec bash benches/proxy-pair.sh' \
#   OUR_CLIENT_URL=http://127.0.0.1:18083/ bash ../shared/bench/mesh_overhead.sh
set -euo pipefail

BIN=${MESHLENS_BIN:-./target/release/meshlens}
UPSTREAM=${BENCH_UPSTREAM:-127.0.0.1:18080}
CLIENT_PORT=${BENCH_OUR_CLIENT_PORT:-18083}
SERVER_PORT=${BENCH_OUR_SERVER_PORT:-18445}
UP_HOST=${UPSTREAM%:*}
UP_PORT=${UPSTREAM##*:}
DIR=$(mktemp -d "${BENCH_PKI_DIR:-${TMPDIR:-/tmp}}/meshlens-pair.XXXXXX")

"$BIN" identity init --dir "$DIR/ca" >/dev/null
"$BIN" identity issue --dir "$DIR/ca" --sa client --ns bench --out "$DIR/client" >/dev/null
"$BIN" identity issue --dir "$DIR/ca" --sa server --ns bench --out "$DIR/server" >/dev/null
CLIENT_ID=client.bench.serviceaccount.identity.linkerd.cluster.local
SERVER_ID=server.bench.serviceaccount.identity.linkerd.cluster.local
SCHEMA='{"type":"record","name":"Order","namespace":"bench","fields":[{"name":"id","type":"string"},{"name":"amount","type":"long"}]}'

mkdir -p "$DIR/policy"
cat >"$DIR/policy/server.yaml" <<YAML
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: server-http, namespace: bench}
spec:
  podSelector: {matchLabels: {app: server}}
  port: http
  proxyProtocol: HTTP/1
---
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: {name: client-only, namespace: bench}
spec:
  identities: ["$CLIENT_ID"]
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: client-calls-server, namespace: bench}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: server-http}
  requiredAuthenticationRefs:
  - {group: policy.linkerd.io, kind: MeshTLSAuthentication, name: client-only}
---
apiVersion: policy.meshlens.io/v1alpha1
kind: SchemaContract
metadata: {name: orders, namespace: bench}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: server-http}
  mode: audit
  subjects:
  - subject: bench.orders-value
    producers: {serviceAccounts: [{name: server}]}
    readerSchema: '$SCHEMA'
YAML

cat >"$DIR/server.yaml" <<YAML
workload:
  {namespace: bench, name: server, serviceAccount: server, labels: {app: server},
   ports: [{name: http, port: $UP_PORT}]}
identity: {trustAnchors: ca/trust-anchor.crt, cert: server.crt, key: server.key}
inbound: {listen: "127.0.0.1:$SERVER_PORT", appHost: "$UP_HOST", port: $UP_PORT}
outbound: {listen: "127.0.0.1:0"}
admin: {listen: "127.0.0.1:0"}
policy: {dir: policy}
YAML

cat >"$DIR/client.yaml" <<YAML
workload: {namespace: bench, name: client, serviceAccount: client}
identity: {trustAnchors: ca/trust-anchor.crt, cert: client.crt, key: client.key}
inbound: {listen: "127.0.0.1:0", port: 1}
outbound: {listen: "127.0.0.1:$CLIENT_PORT"}
admin: {listen: "127.0.0.1:0"}
destinations:
- authorities: ["127.0.0.1:$CLIENT_PORT", "localhost:$CLIENT_PORT"]
  address: "127.0.0.1:$SERVER_PORT"
  identity: $SERVER_ID
YAML

"$BIN" proxy --config "$DIR/server.yaml" --threads 1 >"$DIR/server.log" 2>&1 &
"$BIN" proxy --config "$DIR/client.yaml" --threads 1 >"$DIR/client.log" 2>&1 &
wait
