/**
 * Checks Gantry's webgpu kernels against the cpu backend on random inputs (relative error in the 2-norm) and one
 * training step of the reference models against the cpu backend. Runs where a WebGPU adapter exists (the GPU
 * machine, or a software Vulkan here with --fallback). One JSON line per case; exit code 1 if any case fails.
 *
 *   node .gpu/check.mjs [--fallback] [--quick]
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-layers';
import { registerNestedGradientFixes } from '@gantry/core';
import { initWebGpu, randomNormalFast, registerOffTapeLeakyReluGradient } from '@gantry/engine';
import { upsample2x } from '../../packages/progressive/src/images.js';
import { makeRig, type BenchLoss } from './models.js';

const fallback = process.argv.includes('--fallback');
const quick = process.argv.includes('--quick');
const stepsOnly = process.argv.includes('--steps-only');
const rngOnly = process.argv.includes('--rng-only');

function rand(n: number, seed: number): Float32Array {
  // Deterministic values in [-1, 1) (xorshift), so both backends see the same inputs.
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = ((s >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

async function onBackend(name: string, f: () => tf.Tensor): Promise<Float32Array> {
  await tf.setBackend(name);
  const t = f();
  const v = (await t.data()) as Float32Array;
  t.dispose();
  return v;
}

/** Relative error of `f` computed on webgpu against the same computation on cpu (`f` builds its own inputs). */
async function webgpuVsCpu(f: () => tf.Tensor): Promise<number> {
  const gpu = await onBackend('webgpu', () => tf.tidy(f));
  const cpu = await onBackend('cpu', () => tf.tidy(f));
  return relErr(gpu, cpu);
}

function relErr(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    if (!Number.isFinite(a[i])) return Infinity;
    num += d * d;
    den += b[i] * b[i];
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

let failures = 0;
function report(record: Record<string, unknown>, err: number, tol: number): void {
  const ok = err <= tol;
  if (!ok) failures++;
  process.stdout.write(JSON.stringify({ kind: 'check', ...record, rel_err: err, ok }) + '\n');
}

interface ConvCase {
  b: number;
  h: number;
  w: number;
  ci: number;
  co: number;
  k: number;
  s: number;
  pad: 'same' | 'valid';
}

/**
 * One convolution gradient kernel on webgpu against cpu: the filter gradient from (x, dy), or the input gradient from
 * (dy, filter). dy is drawn from seed + 1, the other operand from seed.
 */
async function checkConvGrad(kernel: typeof tf.Conv2DBackpropFilter | typeof tf.Conv2DBackpropInput, c: ConvCase, seed: number): Promise<void> {
  const info = tf.backend_util.computeConv2DInfo([c.b, c.h, c.w, c.ci], [c.k, c.k, c.ci, c.co], c.s, 1, c.pad);
  const xShape: [number, number, number, number] = [c.b, c.h, c.w, c.ci];
  const filterShape: [number, number, number, number] = [c.k, c.k, c.ci, c.co];
  const dyShape: [number, number, number, number] = [c.b, info.outHeight, info.outWidth, c.co];
  const forFilter = kernel === tf.Conv2DBackpropFilter;
  const otherShape = forFilter ? xShape : filterShape;
  const otherValues = rand(tf.util.sizeFromShape(otherShape), seed);
  const dyValues = rand(tf.util.sizeFromShape(dyShape), seed + 1);
  const common = { strides: c.s, pad: c.pad, dataFormat: 'NHWC' };
  const run = () => {
    const dy = tf.tensor4d(dyValues, dyShape);
    const other = tf.tensor4d(otherValues, otherShape);
    const [inputs, attrs] = forFilter
      ? [{ x: other, dy }, { ...common, filterShape }]
      : [{ dy, filter: other }, { ...common, inputShape: xShape }];
    return tf.engine().runKernel(kernel, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
  };
  report({ kernel, ...c }, await webgpuVsCpu(run), 1e-4);
}

/**
 * What mnist-progressive needed on the GPU: AddN over more inputs than the per-stage storage-buffer limit (chunked),
 * the gradient of a rank-5 mean (minibatch stddev's shape; Tile of rank >= 5 would run on the CPU) and the
 * nearest-neighbour upsampling of real images, each against the CPU.
 */
async function checkProgressiveOps(): Promise<void> {
  const parts = Array.from({ length: 40 }, (_, i) => rand(6 * 5, 500 + i));
  const addN = () => tf.addN(parts.map((v) => tf.tensor2d(v, [6, 5])));
  report({ kernel: 'AddN', inputs: parts.length }, await webgpuVsCpu(addN), 1e-6);
  const shape = [4, 8, 4, 4, 3];
  const xv = rand(tf.util.sizeFromShape(shape), 900);
  const cv = rand(xv.length, 901);
  const meanGrad = () => tf.grad((x: tf.Tensor) => tf.sum(tf.square(tf.mean(tf.mul(x, tf.tensor(cv, shape)), 0))))(tf.tensor(xv, shape));
  report({ kernel: 'MeanGrad', shape }, await webgpuVsCpu(meanGrad), 1e-5);
  const img = rand(2 * 8 * 8 * 1, 902);
  const up = () => upsample2x(tf.tensor4d(img, [2, 8, 8, 1]));
  report({ kernel: 'upsample2x' }, await webgpuVsCpu(up), 0);
}

/** Moments of the GPU normal generator, and reproducibility by seed. */
async function checkRandomNormal(): Promise<void> {
  await tf.setBackend('webgpu');
  const n = 1 << 18;
  const draw = async (seed: number) => {
    const t = randomNormalFast([n], 0.5, 2, seed);
    const v = (await t.data()) as Float32Array;
    t.dispose();
    return v;
  };
  const a = await draw(42);
  const b = await draw(42);
  const c = await draw(43);
  let m1 = 0;
  let m2 = 0;
  let m4 = 0;
  for (const x of a) {
    const z = (x - 0.5) / 2;
    m1 += z;
    m2 += z * z;
    m4 += z ** 4;
  }
  m1 /= n;
  m2 /= n;
  m4 /= n;
  let same = 0;
  let differentSeedSame = 0;
  for (let i = 0; i < n; i++) {
    if (a[i] === b[i]) same++;
    if (a[i] === c[i]) differentSeedSame++;
  }
  // Standard errors at n = 2^18: mean 0.002, variance 0.003, 4th moment 0.02.
  const err = Math.max(Math.abs(m1) / 0.01, Math.abs(m2 - 1) / 0.015, Math.abs(m4 - 3) / 0.1, same === n ? 0 : 2, differentSeedSame > n / 1000 ? 2 : 0);
  report({ kernel: 'GantryRandomNormal', mean: m1, variance: m2, fourth_moment: m4, reproducible: same === n }, err, 1);
}

/** Two training steps of the reference models from the same weights and noise: webgpu against cpu. */
async function checkSteps(loss: BenchLoss): Promise<void> {
  const runOn = async (backend: string, init?: Float32Array[]) => {
    await tf.setBackend(backend);
    const rig = makeRig(loss, 4, { seed: 1234 });
    const weights = [...rig.G.weights, ...rig.D.weights];
    if (init) weights.forEach((w, i) => w.write(tf.tensor(init[i], w.shape as number[])));
    const start = await Promise.all(weights.map(async (w) => (await w.read().data()) as Float32Array));
    const losses: number[] = [];
    for (let i = 0; i < 2; i++) {
      const l = rig.step();
      losses.push((await l.data())[0]);
      l.dispose();
    }
    const end = await Promise.all(weights.map(async (w) => (await w.read().data()) as Float32Array));
    rig.dispose();
    return { start, end, losses };
  };
  const cpu = await runOn('cpu');
  const gpu = await runOn('webgpu', cpu.start);
  // Compare the updates (end - start) of all weights together: the weights themselves hardly move in two steps, and
  // the bias before batchnorm has a zero gradient whose rounding noise Adam scales up to full-size steps.
  let num = 0;
  let den = 0;
  cpu.end.forEach((w, i) => {
    w.forEach((v, j) => {
      const du = v - cpu.start[i][j];
      num += (gpu.end[i][j] - cpu.start[i][j] - du) ** 2;
      den += du * du;
    });
  });
  const worst = Math.sqrt(num / den);
  const lossErr = Math.max(...cpu.losses.map((l, i) => Math.abs(gpu.losses[i] - l) / Math.max(Math.abs(l), 1e-6)));
  report({ kernel: `step:${loss}`, losses_cpu: cpu.losses, losses_gpu: gpu.losses }, Math.max(worst, lossErr), 2e-3);
}

async function main(): Promise<void> {
  const info = await initWebGpu({ allowFallbackAdapter: fallback });
  process.stdout.write(JSON.stringify({ kind: 'init', ...info }) + '\n');
  const cases: ConvCase[] = [
    // The reference models' layers (D conv1, D conv2, G convT1/convT2 as filter gradients), then odd shapes.
    { b: 3, h: 28, w: 28, ci: 1, co: 64, k: 4, s: 2, pad: 'same' },
    { b: 3, h: 14, w: 14, ci: 64, co: 128, k: 4, s: 2, pad: 'same' },
    { b: 2, h: 14, w: 14, ci: 64, co: 128, k: 4, s: 2, pad: 'same' },
    { b: 1, h: 9, w: 7, ci: 5, co: 3, k: 3, s: 1, pad: 'same' },
    { b: 2, h: 11, w: 13, ci: 7, co: 70, k: 5, s: 3, pad: 'valid' },
    { b: 4, h: 8, w: 8, ci: 3, co: 1, k: 2, s: 2, pad: 'valid' },
    { b: 2, h: 10, w: 6, ci: 66, co: 65, k: 1, s: 1, pad: 'same' },
  ];
  let seed = 11;
  const chosen = stepsOnly || rngOnly ? [] : quick ? cases.slice(0, 3) : cases;
  for (const c of chosen) await checkConvGrad(tf.Conv2DBackpropFilter, c, (seed += 7));
  for (const c of chosen) await checkConvGrad(tf.Conv2DBackpropInput, c, (seed += 7));
  await checkRandomNormal();
  if (!rngOnly) await checkProgressiveOps();
  registerNestedGradientFixes();
  registerOffTapeLeakyReluGradient();
  if (!rngOnly) for (const loss of ['nonsat', 'wgangp'] as const) await checkSteps(loss);
  process.stdout.write(JSON.stringify({ kind: 'check-summary', failures }) + '\n');
}

main().then(
  () => process.exit(failures > 0 ? 1 : 0),
  (err) => {
    process.stdout.write(JSON.stringify({ kind: 'fatal', error: String(err instanceof Error ? err.stack : err) }) + '\n');
    process.exit(2);
  },
);
