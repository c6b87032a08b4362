#!/usr/bin/env bash
# The README's sidecar walkthrough in one script: identities, an app, two sidecars, calls.
set -euo pipefail
cd "$(dirname "$0")"
MESHLENS=${MESHLENS:-meshlens}
[ -d ca ] || "$MESHLENS" identity init --dir ca
for sa in web orders; do
  [ -f $sa.crt ] || "$MESHLENS" identity issue --dir ca --sa $sa --ns shop --out $sa
done
trap 'kill $(jobs -p) 2>/dev/null' EXIT
python3 -m http.server 8080 --bind 127.0.0.1 >/dev/null 2>&1 &
"$MESHLENS" proxy --config orders.yaml &
"$MESHLENS" proxy --config web.yaml &
sleep 1
curl -s -o /dev/null -w 'GET  -> %{http_code}\n' -H 'Host: orders.shop:8080' http://127.0.0.2:4140/
curl -s -o /dev/null -w 'POST -> %{http_code} %header{l5d-proxy-error}\n' -X POST -H 'Host: orders.shop:8080' http://127.0.0.2:4140/
curl -s http://127.0.0.3:4191/metrics | grep '^request_total'
