#!/usr/bin/env bash
# proxy-ab.sh — A/B of two meshlens builds as a sidecar pair (benches/proxy-pair.sh), with the
# nginx mTLS pair of the shared harness as the yardstick, measured per proxy process:
# system calls, context switches and CPU time per request (`perf stat`), which do not depend
# on how busy the machine is, plus oha's corrected p50/p99 at a fixed rate.
#
#   ROUNDS=3 RATE=1000 DUR=10s SAT_DUR=5s bash benches/proxy-ab.sh OLD_BIN NEW_BIN
#
# Each round starts every target afresh in a rotated order (direct, nginx, A, B), warms it up
# for 1 s, then measures `oha -q $RATE -c 32 -z $DUR --latency-correction` (the harness's
# fixed-rate point) and `wrk -t1 -c32 -d$SAT_DUR` (saturation), each with one `perf stat` per
# proxy process. Everything listens on 127.0.0.1 ports 28080-28083 and 28443-28445; every
# process started is killed at exit. One TSV line per measurement on stdout:
#   round target load side requests syscalls/req cs/req cpu_us/req p50_us p99_us sys%
# (side: client, server or pair; p50/p99 only on the pair line of a fixed-rate run; sys%: the
# kernel's share of the side's CPU time, from /proc, only per side).
set -euo pipefail

OLD=$(realpath "$1")
NEW=$(realpath "$2")
ROUNDS=${ROUNDS:-3}
RATE=${RATE:-1000}
DUR=${DUR:-10s}
SAT_DUR=${SAT_DUR:-5s}
HERE=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d "${TMPDIR:-/tmp}/proxy-ab.XXXXXX")
PGIDS=()

cleanup() {
  local g
  for g in "${PGIDS[@]}"; do kill -TERM -- "-$g" 2>/dev/null || true; done
  rm -rf "$W"
}
trap cleanup EXIT INT TERM

BODY=$(head -c 1024 /dev/zero | tr '\0' 'x')
(
  cd "$W"
  openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
  openssl req -x509 -new -key ca.key -sha256 -days 2 -subj /CN=ab-ca \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign -out ca.crt 2>/dev/null
  for n in server client; do
    if [ $n = server ]; then san=DNS:localhost; eku=serverAuth; else san=DNS:client.mesh.local; eku=clientAuth; fi
    openssl ecparam -name prime256v1 -genkey -noout -out $n.key 2>/dev/null
    openssl req -new -key $n.key -subj /CN=$n -out $n.csr 2>/dev/null
    printf 'basicConstraints=critical,CA:FALSE\nextendedKeyUsage=%s\nsubjectAltName=%s\n' $eku $san >$n.ext
    openssl x509 -req -in $n.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile $n.ext -out $n.crt 2>/dev/null
  done
)
NGX="worker_processes 1; events { worker_connections 8192; } pid PIDFILE;
http { access_log off; keepalive_requests 10000000; keepalive_timeout 300s;
  client_body_temp_path $W; proxy_temp_path $W; fastcgi_temp_path $W; uwsgi_temp_path $W; scgi_temp_path $W;"
cat >"$W/up.conf" <<EOF
${NGX/PIDFILE/$W/up.pid}
  server { listen 127.0.0.1:28080; location / { default_type text/plain; return 200 "$BODY"; } } }
EOF
cat >"$W/client.conf" <<EOF
${NGX/PIDFILE/$W/client.pid}
  upstream mesh { server 127.0.0.1:28443; keepalive 128; }
  server { listen 127.0.0.1:28081; location / {
    proxy_pass https://mesh; proxy_http_version 1.1; proxy_set_header Connection "";
    proxy_ssl_protocols TLSv1.3; proxy_ssl_certificate $W/client.crt; proxy_ssl_certificate_key $W/client.key;
    proxy_ssl_trusted_certificate $W/ca.crt; proxy_ssl_verify on; proxy_ssl_name localhost;
    proxy_ssl_server_name on; proxy_ssl_session_reuse on; } } }
EOF
cat >"$W/server.conf" <<EOF
${NGX/PIDFILE/$W/server.pid}
  upstream app { server 127.0.0.1:28080; keepalive 128; }
  server { listen 127.0.0.1:28443 ssl; ssl_protocols TLSv1.3;
    ssl_certificate $W/server.crt; ssl_certificate_key $W/server.key;
    ssl_client_certificate $W/ca.crt; ssl_verify_client on;
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
EOF

start() { # name cmd... (own process group, remembered for cleanup)
  local name=$1
  shift
  setsid "$@" >"$W/$name.log" 2>&1 </dev/null &
  PGIDS+=("$!")
  LAST=$!
}
wait_ok() {
  local i
  for i in $(seq 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" || true)" = 200 ] && return 0
    sleep 0.1
  done
  echo "not ready: $1" >&2
  return 1
}
stop() { kill -TERM -- "-$1" 2>/dev/null || true; sleep 0.5; }

start up nginx -p "$W" -e "$W/up.err" -c "$W/up.conf" -g 'daemon off;'
UP=$LAST
wait_ok http://127.0.0.1:28080/

# Starts a target; sets URL, PG and SIDES ("client:<pids> server:<pids>", pids comma-joined).
up() {
  case $1 in
    direct)
      URL=http://127.0.0.1:28080/ PG= SIDES="server:$(pgrep -d, -g "$UP")"
      return
      ;;
    nginx)
      start ngx_s nginx -p "$W" -e "$W/s.err" -c "$W/server.conf" -g 'daemon off;'
      local s=$LAST
      start ngx_c nginx -p "$W" -e "$W/c.err" -c "$W/client.conf" -g 'daemon off;'
      PG="$s $LAST" URL=http://127.0.0.1:28081/
      wait_ok "$URL"
      # The workers' command lines no longer name the config: take each process group.
      SIDES="client:$(pgrep -d, -g "$LAST") server:$(pgrep -d, -g "$s")"
      ;;
    A | B)
      local bin=$OLD
      [ "$1" = B ] && bin=$NEW
      start "pair_$1" env MESHLENS_BIN="$bin" BENCH_UPSTREAM=127.0.0.1:28080 BENCH_OUR_CLIENT_PORT=28083 \
        BENCH_OUR_SERVER_PORT=28445 BENCH_PKI_DIR="$W" bash "$HERE/proxy-pair.sh"
      PG=$LAST URL=http://127.0.0.1:28083/
      wait_ok "$URL"
      SIDES="client:$(pgrep -d, -f "^$bin proxy --config $W/meshlens-pair.*/client.yaml") server:$(pgrep -d, -f "^$bin proxy --config $W/meshlens-pair.*/server.yaml")"
      ;;
  esac
}

# user and system CPU ticks of comma-joined pids -> "utime stime"
ticks() { local p u=0 k=0 f; for p in ${1//,/ }; do f=($(sed 's/.*) //' "/proc/$p/stat")); u=$((u + f[11])); k=$((k + f[12])); done; echo "$u $k"; }
# perf stat of one side -> "syscalls cs task_clock_ms"
stat_start() { perf stat -x, -e raw_syscalls:sys_enter,context-switches,task-clock -p "$2" -o "$W/perf.$1" & }
stat_line() { awk -F, '/sys_enter/ {s=$1} /context-switches/ {c=$1} /task-clock/ {t=$1} END {print s, c, t}' "$W/perf.$1"; }

measure() { # round target load
  local side perf_pids=() reqs p50=- p99=- sums="0 0 0" s c t u k
  declare -A before
  for side in $SIDES; do
    stat_start "${side%%:*}" "${side#*:}"
    perf_pids+=($!)
    before[${side%%:*}]=$(ticks "${side#*:}")
  done
  sleep 0.2
  if [ "$3" = rate ]; then
    oha -q "$RATE" -c 32 -z "$DUR" -w --latency-correction --no-tui --output-format json "$URL" >"$W/oha.json"
    read -r reqs p50 p99 < <(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
n = sum(d["statusCodeDistribution"].values())
p = d["latencyPercentiles"]
print(n, round(p["p50"] * 1e6), round(p["p99"] * 1e6))' "$W/oha.json")
  else
    reqs=$(wrk -t1 -c32 -d"$SAT_DUR" "$URL" | awk '/requests in/ {print $1}')
  fi
  kill -INT "${perf_pids[@]}"
  wait "${perf_pids[@]}" 2>/dev/null || true
  for side in $SIDES; do
    read -r s c t < <(stat_line "${side%%:*}")
    read -r u k < <(echo "$(ticks "${side#*:}") ${before[${side%%:*}]}" | awk '{print $1 - $3, $2 - $4}')
    sums=$(echo "$sums $s $c $t" | awk '{print $1 + $4, $2 + $5, $3 + $6}')
    echo "$s $c $t $u $k" | awk -v r="$1" -v g="$2" -v l="$3" -v sd="${side%%:*}" -v n="$reqs" \
      '{printf "%s\t%s\t%s\t%s\t%d\t%.2f\t%.3f\t%.1f\t-\t-\t%d\n", r, g, l, sd, n, $1 / n, $2 / n, $3 * 1000 / n, 100 * $5 / ($4 + $5 + 0.001)}'
  done
  echo "$sums" | awk -v r="$1" -v g="$2" -v l="$3" -v n="$reqs" -v p50="$p50" -v p99="$p99" \
    '{printf "%s\t%s\t%s\tpair\t%d\t%.2f\t%.3f\t%.1f\t%s\t%s\t-\n", r, g, l, n, $1 / n, $2 / n, $3 * 1000 / n, p50, p99}'
}

printf 'round\ttarget\tload\tside\trequests\tsyscalls/req\tcs/req\tcpu_us/req\tp50_us\tp99_us\tsys%%\n'
targets=(direct nginx A B)
for r in $(seq "$ROUNDS"); do
  for i in 0 1 2 3; do
    t=${targets[$(((i + r - 1) % 4))]}
    up "$t"
    oha -z 1s -c 32 --no-tui "$URL" >/dev/null 2>&1 || true
    measure "$r" "$t" rate
    measure "$r" "$t" max
    [ -n "$PG" ] && for g in $PG; do stop "$g"; done
  done
done
