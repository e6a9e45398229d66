#!/usr/bin/env bash
# CPU seconds (user + system, from /proc) and wall seconds per training step between two logged steps, so recipes can
# be compared on a loaded machine. Linux only. Starts `gantry train ARGS... --steps TO+5` at nice 19 and stops it at TO.
#
#   scripts/cpu-per-step.sh FROM TO mnist-cgan --backend tensorflow
#   GANTRY_WASM_THREADS=1 scripts/cpu-per-step.sh 10 40 mnist-cgan --backend wasm
set -euo pipefail
from=$1 to=$2
shift 2
out=$(mktemp -d)
cd "$(dirname "$0")/.."
nice -n 19 node --import tsx --conditions=@gantry/source packages/cli/src/bin.ts train "$@" --steps $((to + 5)) \
  --out "$out/run" --quiet --sample-every 100000 --checkpoint-every 100000 > "$out/log" 2>&1 &
pid=$!
cpu() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
wait_step() { until grep -q "\"step\":$1," "$out/run/metrics.jsonl" 2>/dev/null; do kill -0 "$pid" || { cat "$out/log"; exit 1; }; sleep 0.5; done; }
wait_step "$from"
a=$(cpu) t1=$(date +%s.%N)
wait_step "$to"
b=$(cpu) t2=$(date +%s.%N)
kill "$pid"
wait "$pid" || true
ticks=$(getconf CLK_TCK)
python3 -c "print('%.3f CPU-s/step, %.3f wall-s/step over steps $from-$to' % (($b - $a) / $ticks / ($to - $from), ($t2 - $t1) / ($to - $from)))"
uptime
rm -rf "$out"
