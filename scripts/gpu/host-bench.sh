#!/usr/bin/env bash
# Host-side cost of one training step with Dawn's null backend (no GPU work at all: every dispatch is recorded,
# validated and submitted, nothing runs), for stock tfjs-backend-webgpu and Gantry's fixes added one at a time.
# Runs anywhere (no GPU, no Vulkan): bash scripts/gpu/build.sh && bash scripts/gpu/host-bench.sh > host.jsonl
set -u
cd "$(dirname "$0")/../.."
mkdir -p .gpu/node_modules/webgpu/dist/linux-x64
[ -e .gpu/node_modules/webgpu/dist/linux-x64/dawn.node ] || xz -dc .gpu/dawn.node.xz > .gpu/node_modules/webgpu/dist/linux-x64/dawn.node
BATCHES=${BATCHES:-64,1024}
STEPS=${STEPS:-20}
run() { # label args...
  local label=$1
  shift
  ${NODE:-node} .gpu/bench.mjs --dawn backend=null --fallback --batches "$BATCHES" --steps "$STEPS" --warmup "${WARMUP:-5}" "$@" 2>/dev/null \
    | grep '"step"' | sed "s/^{/{\"label\":\"$label\",/"
}
run stock --variant stock
run +upload --variant gantry --skip layouts,filterGrad,adam,gradients,rng
run +gradients --variant gantry --skip layouts,filterGrad,adam,rng
run +adam --variant gantry --skip layouts,filterGrad,rng
run +layouts --variant gantry --skip filterGrad,rng
run +gpu-rng --variant gantry --gpu-rng
