#!/usr/bin/env bash
# Load test of `meshlens registry serve`: GET /schemas/ids/{id} with wrk over loopback.
# Needs wrk (apt-get install -y wrk) and curl, and a release build:
#   cargo build --release && bash benches/registry_load.sh
# Registers 100 schemas in a temporary directory, then runs three 15-second wrk passes: one
# id, ids 1..100 in turn, and two wrk threads. Stops the server and removes the directory.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-target/release/meshlens}
PORT=${PORT:-18081}
DURATION=${DURATION:-15s}
URL="http://127.0.0.1:$PORT"
DIR=$(mktemp -d)
OUT=$(mktemp)
LUA=$(mktemp --suffix=.lua)
"$BIN" registry serve --dir "$DIR/registry" --listen "127.0.0.1:$PORT" >"$OUT" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$DIR" "$OUT" "$LUA"' EXIT
for _ in $(seq 50); do grep -q "^listening on" "$OUT" && break; sleep 0.1; done

for i in $(seq 1 100); do
  schema="{\"type\":\"record\",\"name\":\"R$i\",\"namespace\":\"bench\",\"fields\":[{\"name\":\"id\",\"type\":\"string\"},{\"name\":\"amount\",\"type\":{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":10,\"scale\":2}},{\"name\":\"at\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}}]}"
  body=$(printf '{"schema":%s}' "$(printf '%s' "$schema" | sed 's/"/\\"/g; s/^/"/; s/$/"/')")
  curl -sf -o /dev/null -X POST -H 'Content-Type: application/vnd.schemaregistry.v1+json' \
    -d "$body" "$URL/subjects/topic-$i-value/versions"
done
echo "response for id 42: $(curl -sf "$URL/schemas/ids/42" | wc -c) bytes"

cat >"$LUA" <<'LUA'
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", "/schemas/ids/" .. (counter % 100 + 1))
end
LUA

echo "--- one id, 1 wrk thread, 32 connections"
wrk -t1 -c32 -d"$DURATION" --latency "$URL/schemas/ids/42"
echo "--- ids 1..100 in turn, 1 wrk thread, 32 connections"
wrk -t1 -c32 -d"$DURATION" --latency -s "$LUA" "$URL"
echo "--- one id, 2 wrk threads, 64 connections"
wrk -t2 -c64 -d"$DURATION" "$URL/schemas/ids/42"
