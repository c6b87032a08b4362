#!/usr/bin/env bash
# window-frames.sh — frame times of the real window (an X display, Mesa's llvmpipe), with the
# cases run in turn for several rounds so that a shared machine's drift hits each alike.
#
#   Xvfb :93 -screen 0 1280x800x24 -nolisten tcp &
#   DISPLAY=:93 bash benches/window-frames.sh 3 30 \
#     "graph||target/release/examples/graph_scale 500 5000" \
#     "tap||target/release/examples/graph_scale 500 5000 tap" \
#     "demo||target/release/meshlens"
#
# Each case is "label|VAR=value ...|command" (the variables may be empty). A case runs for
# SECONDS with MESHLENS_FRAME_LOG=1 and HOME in a scratch directory (no saved state); the
# pointer is moved to the window's corner so no tooltip shows. Every 300 frames the frame log
# prints two p50/p99/max triples (frame time and interval; builds before session 9 printed
# eframe's CPU time and the wall time between frames instead); the first window, which holds
# the start, is dropped. Per window this records both pairs and the process's CPU time per
# frame (all threads, from /proc). At the end, per label: medians over its windows, and in how
# many windows each p99 was at most 16 ms. Raw lines go to $OUT (default: a temporary file).
set -euo pipefail

ROUNDS=$1
SECONDS_PER_RUN=$2
shift 2
OUT=${OUT:-$(mktemp "${TMPDIR:-/tmp}/window-frames.XXXXXX")}
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/window-frames-home.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT
: >"$OUT"

ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null; }

# One run: prints "p50 p99 p50 p99 cpu_ms_per_frame" per 300-frame window after the first.
run() {
  local envs=$1 cmd=$2 pid last="" now line
  (sleep 1.5 && xdotool mousemove 10000 10000 2>/dev/null || true) &
  coproc APP { env HOME="$SCRATCH" MESHLENS_FRAME_LOG=1 $envs timeout "$SECONDS_PER_RUN" $cmd 2>&1; }
  sleep 0.5
  pid=$(pgrep -n -f "^$(echo "$cmd" | cut -d' ' -f1)" || true)
  while read -r line <&"${APP[0]}"; do
    case "$line" in
      *"frame-log:"*frames*)
        now=$(ticks "$pid")
        if [ -n "$last" ] && [ -n "$now" ]; then
          echo "$line" | grep -oE '[0-9]+\.[0-9]+' | tr '\n' ' ' |
            awk -v t="$now" -v l="$last" -v hz="$(getconf CLK_TCK)" \
              '{printf "%s %s %s %s %.2f\n", $1, $2, $4, $5, (t - l) * 1000 / hz / 300}'
        fi
        last=$now
        ;;
      *"frame-log: first frame"*) last=$(ticks "$pid") ;;
    esac
  done
}

for _ in $(seq "$ROUNDS"); do
  for case in "$@"; do
    IFS='|' read -r label envs cmd <<<"$case"
    run "$envs" "$cmd" | sed "s/^/$label /" >>"$OUT"
  done
done

python3 - "$OUT" <<'PY'
import statistics, sys
by = {}
for line in open(sys.argv[1]):
    label, *v = line.split()
    by.setdefault(label, []).append([float(x) for x in v])
print("label      windows  frame p50  frame p99 (<=16)   interval p50  interval p99 (<=16)  cpu/frame")
for label, rows in by.items():
    c = list(zip(*rows))
    med = [statistics.median(x) for x in c]
    ok = lambda k: sum(x <= 16 for x in c[k])
    n = len(rows)
    print(f"{label:<10} {n:>7}  {med[0]:>8.2f}  {med[1]:>8.2f} ({ok(1)}/{n})"
          f"  {med[2]:>12.2f}  {med[3]:>11.2f} ({ok(3)}/{n})  {med[4]:>8.2f} ms")
print(f"raw: {sys.argv[1]}")
PY
