/**
 * The wasm convolution kernels of the reference DCGAN step (batch 64), stock XNNPACK against Gantry's FMA
 * convolution (`packages/engine/src/wasm-simd`), in one process, calls alternating: min wall ms per call and GFLOP/s,
 * and the largest difference between the two results relative to the result's size. Also, on one thread, the same
 * assembled kernel with relaxed SIMD's fused multiply-add against f32x4.mul + f32x4.add, which is what the FMA buys.
 *
 *   npx tsx --conditions=@gantry/source scripts/wasm-fma-conv.ts [--threads 2] [--reps 20]
 */
import { Command } from 'commander';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '@gantry/engine';
import { withRunner } from '../packages/engine/src/kernel-runner.js';
import type { MultiplyAdd } from '../packages/engine/src/wasm-simd/conv-module.js';
import {
  SimdConv,
  activeSimdConv,
  callingThreadOnly,
  convShape,
  instantiateConvModule,
  setActiveSimdConv,
  type EmscriptenWasm,
} from '../packages/engine/src/wasm-simd/simd-conv.js';

const opts = new Command()
  .option('--threads <n>', 'wasm threads', '2')
  .option('--reps <n>', 'timed calls per kernel and variant', '20')
  .parse()
  .opts<{ threads: string; reps: string }>();
const reps = Number(opts.reps);

await useBackend('wasm', { quiet: true, threads: Number(opts.threads) });
const fma = activeSimdConv();
if (fma == null) throw new Error('the FMA convolution did not start (no relaxed SIMD in this Node?)');

/** A one-thread convolution on the same heap, from a module assembled with `multiplyAdd`. */
function singleThread(multiplyAdd: MultiplyAdd): SimdConv {
  const wasm = fma!.wasm as EmscriptenWasm;
  const { exports } = instantiateConvModule(wasm, multiplyAdd)!;
  return new SimdConv(wasm, exports, callingThreadOnly(exports));
}
const oneThread = { fma: singleThread('fma'), 'mul-add': singleThread('mul-add') };

interface Signature {
  name: string;
  x: [number, number, number, number];
  filter: [number, number, number, number];
  attrs: tf.Conv2DAttrs;
  callsPerStep: string;
}

/** The step's large convolutions as the engine runs them (the conv gradients are forward convolutions: conv-kernels.ts). */
const SIGNATURES: Signature[] = [
  {
    name: 'forward 14×14×64 → 7×7×128, k4 s2',
    x: [64, 14, 14, 64],
    filter: [4, 4, 64, 128],
    attrs: { strides: 2, pad: 'same', dataFormat: 'NHWC', dilations: 1 },
    callsPerStep: '6 WGAN-GP / 4 non-saturating',
  },
  {
    name: 'input-gradient phase 7×7×128 → 7×7×64, k2 s1',
    x: [64, 7, 7, 128],
    filter: [2, 2, 128, 64],
    attrs: { strides: 1, pad: 'same', dataFormat: 'NHWC', dilations: 1 },
    callsPerStep: '24 / 20 (4 per input gradient)',
  },
  {
    name: 'filter gradient (x as [Ci,H,W,B], dy as filter, dilation 2)',
    x: [64, 14, 14, 64],
    filter: [7, 7, 64, 128],
    attrs: {
      strides: 1,
      pad: [
        [0, 0],
        [1, 1],
        [1, 1],
        [0, 0],
      ],
      dataFormat: 'NHWC',
      dilations: 2,
    },
    callsPerStep: '4 / 3',
  },
];

const random = (shape: number[]) => tf.randomUniform(shape, -1, 1, 'float32', 7);

console.log(`wasm, ${fma.splitter.threads} thread(s); min wall ms per call over ${reps} calls each, variants alternating`);
console.log('| kernel | calls per step | XNNPACK | FMA conv | speed-up | max diff / max | 1 thread: FMA | 1 thread: mul + add |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
for (const sig of SIGNATURES) {
  const x = random(sig.x) as tf.Tensor4D;
  const filter = random(sig.filter) as tf.Tensor4D;
  const shape = convShape(x, filter, sig.attrs)!;
  const flops = 2 * shape.B * shape.OH * shape.OW * shape.KH * shape.KW * shape.Ci * shape.Co;
  const viaKernel = () => tf.conv2d(x, filter, sig.attrs.strides, sig.attrs.pad as 'same', 'NHWC', sig.attrs.dilations);
  const direct = (conv: SimdConv) => () =>
    tf.engine().makeTensorFromTensorInfo(withRunner(tf.backend(), 'wasm', (r) => conv.run(r, shape, x, filter)));
  const variants: Record<string, () => tf.Tensor> = {
    stock: () => {
      setActiveSimdConv(null);
      try {
        return viaKernel();
      } finally {
        setActiveSimdConv(fma);
      }
    },
    fma: viaKernel,
    fma1: direct(oneThread.fma),
    mulAdd1: direct(oneThread['mul-add']),
  };
  const best: Record<string, number> = {};
  for (let rep = 0; rep < reps + 2; rep++) {
    for (const [key, run] of Object.entries(variants)) {
      const t0 = performance.now();
      const y = run();
      y.dataSync();
      const ms = performance.now() - t0;
      y.dispose();
      if (rep >= 2) best[key] = Math.min(best[key] ?? Infinity, ms);
    }
  }
  const [a, b] = [variants.stock(), variants.fma()];
  const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] / tf.max(tf.abs(a)).dataSync()[0]);
  tf.dispose([a, b, x, filter]);
  const cell = (key: string) => `${best[key].toFixed(2)} (${(flops / best[key] / 1e6).toFixed(1)} GFLOP/s)`;
  console.log(
    `| ${sig.name} | ${sig.callsPerStep} | ${cell('stock')} | ${cell('fma')} | ${(best.stock / best.fma).toFixed(2)}× | ${diff.toExponential(1)} | ${cell('fma1')} | ${cell('mulAdd1')} |`,
  );
}
oneThread.fma.dispose();
oneThread['mul-add'].dispose();
process.exit(0);
