import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// Registers the cpu backend these tests compare with, also when a filter (-t) skips the tests that would load it.
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { withSeed, type Trainer } from '@gantry/core';
import { NATIVE_TOLERANCE, SETUP_HINT, compareWithCpu, useBackend } from '@gantry/engine';
import { gradientPenalty } from '@gantry/loss-wgan';
import { hookHandler, linearCritic, lossContext } from '@gantry/core/testing';
import { relativeError } from '../../engine/test/kernels-reference.js';
import { wganGpTrainer } from './reference-trainer.js';

/** `.ci/run` sets GANTRY_REQUIRE_NATIVE=1 after `gantry setup tensorflow`: there a missing build fails, not skips. */
const required = process.env.GANTRY_REQUIRE_NATIVE === '1';
const native = await useBackend('tensorflow', { quiet: true }).then(
  () => null,
  (err: Error) => err.message,
);
if (native != null && required) throw new Error(`GANTRY_REQUIRE_NATIVE=1 but ${native}`);
if (native != null) console.warn(`tensorflow backend tests skipped: ${native} (${SETUP_HINT})`);

/** f's outputs on the tensorflow backend and on cpu (same seeds, so the same inputs). */
async function onTensorflowAndCpu(f: () => tf.Tensor[]): Promise<[Float32Array[], Float32Array[]]> {
  const out: Float32Array[][] = [];
  for (const backend of ['tensorflow', 'cpu']) {
    await tf.setBackend(backend);
    const ts = tf.tidy(f);
    out.push(ts.map((t) => t.dataSync() as Float32Array));
    tf.dispose(ts);
  }
  await tf.setBackend('tensorflow');
  return [out[0], out[1]];
}

const seeded = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 1, 'float32', seed);

/** onTensorflowAndCpu, with the TensorFlow ops and uploads of both runs recorded. */
async function onTensorflowAndCpuRecorded(f: () => tf.Tensor[]) {
  const calls = recordNativeCalls();
  try {
    const [native, cpu] = await onTensorflowAndCpu(f);
    return { native, cpu, calls };
  } finally {
    calls.stop();
  }
}

/** Names of the TensorFlow ops the tensorflow backend runs and the number of tensors it uploads, until stop(). */
function recordNativeCalls(): { ops: string[]; uploads: number; stop(): void } {
  type Binding = { executeOp(name: string, ...rest: unknown[]): unknown; createTensor(...args: unknown[]): unknown };
  const backend = tf.backend() as unknown as { binding: Binding };
  const binding = backend.binding;
  const calls = { ops: [] as string[], uploads: 0, stop: () => void (backend.binding = binding) };
  backend.binding = Object.create(binding, {
    executeOp: { value: (name: string, ...rest: unknown[]) => (calls.ops.push(name), binding.executeOp(name, ...rest)) },
    createTensor: { value: (...args: unknown[]) => (calls.uploads++, binding.createTensor(...args)) },
  }) as Binding;
  return calls;
}

async function trainRecording(t: Trainer): Promise<number[][]> {
  const trace: number[][] = [];
  t.on('step:end', ({ scalars }) => void trace.push([scalars.d_loss, scalars.g_loss]));
  await t.train();
  return trace;
}

describe.skipIf(native != null)('tensorflow backend (gantry setup tensorflow)', () => {
  it('setup checks: matmul, conv filter gradient, second-order gradient equal cpu', async () => {
    for (const check of await compareWithCpu()) expect(check.relativeError, check.name).toBeLessThanOrEqual(NATIVE_TOLERANCE);
  });

  it('kernel gradients of the reference layers equal the cpu backend (conv, transposed conv, dense, batchnorm, leaky ReLU)', async () => {
    const cases: Record<string, () => tf.Tensor[]> = {
      'conv2d k4 s2 same: dx, dw': () =>
        tf.grads((x: tf.Tensor, w: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, 'same'), seeded([3, 7, 7, 16], 3))))([
          seeded([3, 14, 14, 8], 1),
          seeded([4, 4, 8, 16], 2),
        ]),
      'conv2dTranspose k4 s2 same: dx, dw': () =>
        tf.grads((x: tf.Tensor, w: tf.Tensor) =>
          tf.sum(tf.mul(tf.conv2dTranspose(x as tf.Tensor4D, w as tf.Tensor4D, [3, 14, 14, 8], 2, 'same'), seeded([3, 14, 14, 8], 6))),
        )([seeded([3, 7, 7, 16], 4), seeded([4, 4, 8, 16], 5)]),
      'matMul with transposes: da, db': () =>
        tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D, true, false))))([
          seeded([20, 12], 7),
          seeded([20, 9], 8),
        ]),
      'batchnorm (training mode) and leaky ReLU: dx, dγ, dβ': () => {
        const layer = withSeed(9, () => tfl.layers.batchNormalization({ inputShape: [5, 5, 6] }));
        layer.build([null, 5, 5, 6]);
        const weights = layer.trainableWeights.map((w) => w.read());
        const grads = tf.grads((x: tf.Tensor) =>
          tf.sum(tf.mul(tf.leakyRelu(layer.apply(x, { training: true }) as tf.Tensor, 0.2), seeded([4, 5, 5, 6], 11))),
        )([seeded([4, 5, 5, 6], 10)]);
        const { grads: wGrads } = tf.variableGrads(
          () => tf.sum(tf.mul(layer.apply(seeded([4, 5, 5, 6], 10), { training: true }) as tf.Tensor, seeded([4, 5, 5, 6], 11))) as tf.Scalar,
          weights as tf.Variable[],
        );
        return [...grads, ...Object.values(wGrads)];
      },
    };
    for (const [name, f] of Object.entries(cases)) {
      const [native, cpu] = await onTensorflowAndCpu(f);
      expect(native.length, name).toBe(cpu.length);
      native.forEach((n, i) => expect(relativeError(n, cpu[i]), `${name} [${i}]`).toBeLessThanOrEqual(NATIVE_TOLERANCE));
    }
  });

  it('a conv input gradient with few image channels runs as a matrix product + scatter and equals the cpu backend', async () => {
    // [image shape, filter shape, stride, padding]: the reference models' 1-channel layers, odd sizes, VALID with rows
    // the filter never reaches, a kernel three strides wide, and 4 channels (the most this path takes).
    const geometries: [[number, number, number, number], [number, number, number, number], number, 'same' | 'valid'][] = [
      [[4, 28, 28, 1], [4, 4, 1, 64], 2, 'same'],
      [[3, 27, 25, 3], [4, 4, 3, 5], 2, 'same'],
      [[3, 29, 28, 2], [4, 4, 2, 5], 2, 'valid'],
      [[2, 29, 30, 1], [6, 6, 1, 4], 2, 'same'],
      [[2, 29, 30, 1], [3, 3, 1, 4], 3, 'valid'],
      [[2, 16, 16, 4], [2, 2, 4, 7], 2, 'same'],
    ];
    const calls = recordNativeCalls();
    const { ops } = calls;
    try {
      for (const [image, filter, stride, pad] of geometries) {
        const name = `${image} ${filter} s${stride} ${pad}`;
        const dyShape = tf.conv2d(tf.zeros(image) as tf.Tensor4D, tf.zeros(filter) as tf.Tensor4D, stride, pad).shape;
        ops.length = 0;
        const [native, cpu] = await onTensorflowAndCpu(() => [
          tf.conv2dTranspose(seeded(dyShape, 1) as tf.Tensor4D, seeded(filter, 2) as tf.Tensor4D, image, stride, pad),
        ]);
        expect(ops, name).toContain('MatMul');
        expect(ops, name).not.toContain('Conv2DBackpropInput');
        expect(relativeError(native[0], cpu[0]), name).toBeLessThanOrEqual(1e-6);
      }
      // Eight image channels: TensorFlow's own op.
      ops.length = 0;
      tf.dispose(tf.conv2dTranspose(tf.zeros([1, 7, 7, 4]) as tf.Tensor4D, tf.zeros([4, 4, 8, 4]) as tf.Tensor4D, [1, 14, 14, 8], 2, 'same'));
      expect(ops).toContain('Conv2DBackpropInput');
    } finally {
      calls.stop();
    }
  });

  it('a leaky-ReLU gradient no tape records is one LeakyReluGrad op, equal to cpu bit for bit; a nested one keeps the taped product', async () => {
    const x = () => tf.mul(seeded([2, 5, 5, 3], 12), tf.tensor1d([1, 0, -1])); // positives, negatives and zeros
    const dy = () => seeded([2, 5, 5, 3], 13);
    const firstOrder = () => [tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.leakyRelu(v, 0.2), dy())))(x())];
    const first = await onTensorflowAndCpuRecorded(firstOrder);
    const calls = first.calls;
    let [native, cpu] = [first.native, first.cpu];
    expect(calls.ops.filter((op) => op === 'LeakyReluGrad')).toHaveLength(1);
    expect(calls.ops).not.toContain('OnesLike'); // Step's first op
    expect(Array.from(native[0])).toEqual(Array.from(cpu[0]));

    // Differentiated again (the gradient penalty's case): the factor stays off the tape, the product on it.
    const nested = () => [
      tf.grad((w: tf.Tensor) => tf.sum(tf.square(tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.leakyRelu(tf.mul(v, w), 0.2), dy())))(x()))))(
        seeded([3], 14),
      ),
    ];
    const nestedCalls = recordNativeCalls();
    try {
      [native, cpu] = await onTensorflowAndCpu(nested);
    } finally {
      nestedCalls.stop();
    }
    expect(nestedCalls.ops).toContain('OnesLike');
    expect(relativeError(native[0], cpu[0])).toBeLessThanOrEqual(1e-6);
  });

  it.each([
    ['images, [4, 5, 6, 7]', [4, 5, 6, 7]],
    ['dense units, [8, 7] (as [8, 1, 1, 7])', [8, 7]],
  ])("tfjs-layers' batchnorm in training mode runs as FusedBatchNormV3/GradV3, equal to cpu: output, dx, dγ, dβ, moving statistics, nested gradients (%s)", async (_, shape) => {
    // A layer per backend from the same seed (momentum 0.8, so the calls move the moving statistics visibly); an
    // offset x so the mean matters. Returns y, the gradients of Σ(y·dy) and the moving statistics after three calls.
    const layerOutputs = (grad: (layer: tfl.layers.Layer, x: tf.Tensor, gamma: tf.Variable) => tf.Tensor[]) => () => {
      const layer = withSeed(15, () => tfl.layers.batchNormalization({ momentum: 0.8, epsilon: 1e-3, inputShape: shape.slice(1) }));
      layer.build([null, ...shape.slice(1)]);
      const [gamma, beta] = layer.trainableWeights.map((w) => w.read() as tf.Variable);
      gamma.assign(seeded([7], 16));
      beta.assign(seeded([7], 17));
      const x = tf.add(seeded(shape, 18), 3);
      const out = [...grad(layer, x, gamma), ...layer.nonTrainableWeights.map((w) => w.read().clone())];
      layer.weights.forEach((w) => w.dispose());
      return out;
    };
    const dy = () => seeded(shape, 19);
    const firstOrder = layerOutputs((layer, x) => {
      const y = layer.apply(x, { training: true }) as tf.Tensor;
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(layer.apply(x, { training: true }) as tf.Tensor, dy())) as tf.Scalar);
      const [dx] = tf.grads((v: tf.Tensor) => tf.sum(tf.mul(layer.apply(v, { training: true }) as tf.Tensor, dy())))([x]);
      return [y, value, dx, ...Object.values(grads)];
    });
    const first = await onTensorflowAndCpuRecorded(firstOrder);
    const calls = first.calls;
    let [native, cpu] = [first.native, first.cpu];
    expect(calls.ops.filter((op) => op === 'FusedBatchNormV3')).toHaveLength(3);
    expect(calls.ops.filter((op) => op === 'FusedBatchNormGradV3')).toHaveLength(2);
    expect(calls.ops).not.toContain('FusedBatchNorm'); // tfjs's inference-form kernel
    expect(native.length).toBe(7); // y, loss, dx, dγ, dβ, moving mean, moving variance (three calls each)
    native.forEach((n, i) => expect(relativeError(n, cpu[i]), `output ${i}`).toBeLessThanOrEqual(1e-5));

    // A gradient penalty through batchnorm: ∂/∂(x, γ) ‖∇ₓ Σ(y·dy)‖², which needs μ(x), σ²(x) on the tape.
    const nested = layerOutputs((layer, x, gamma) =>
      tf.grads((v: tf.Tensor, g: tf.Tensor) => {
        gamma.assign(g);
        const inner = tf.grad((u: tf.Tensor) => tf.sum(tf.mul(layer.apply(u, { training: true }) as tf.Tensor, dy())))(v);
        return tf.sum(tf.square(inner));
      })([x, gamma]),
    );
    const nestedCalls = recordNativeCalls();
    try {
      [native, cpu] = await onTensorflowAndCpu(nested);
    } finally {
      nestedCalls.stop();
    }
    expect(nestedCalls.ops).toContain('FusedBatchNormV3');
    expect(nestedCalls.ops).not.toContain('FusedBatchNormGradV3');
    native.forEach((n, i) => expect(relativeError(n, cpu[i]), `nested output ${i}`).toBeLessThanOrEqual(1e-4));

    // Nothing stays behind: run the first-order case again and count.
    const before = tf.memory().numTensors;
    tf.dispose(tf.tidy(firstOrder));
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a ReLU gradient no tape records is one LeakyReluGrad op (α 0), equal to cpu bit for bit', async () => {
    const x = () => tf.mul(seeded([4, 7], 15), tf.tensor1d([1, 0, -1, 2, -2, 0.5, 1])); // positives, negatives and zeros
    const dy = () => seeded([4, 7], 16);
    const calls = recordNativeCalls();
    let native: Float32Array[];
    let cpu: Float32Array[];
    try {
      [native, cpu] = await onTensorflowAndCpu(() => [tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.relu(v), dy())))(x())]);
    } finally {
      calls.stop();
    }
    expect(calls.ops.filter((op) => op === 'LeakyReluGrad')).toHaveLength(1);
    expect(calls.ops).not.toContain('OnesLike');
    expect(Array.from(native[0])).toEqual(Array.from(cpu[0]));
    expect(native[0].some((v) => v === 0) && native[0].some((v) => v !== 0)).toBe(true);
  });

  it('an unchanged Reshape or Cast shares the TensorFlow tensor; a changed one still runs, with the same values', () => {
    const backend = tf.backend() as unknown as { numDataIds(): number };
    const x = tf.tensor2d([1, -2, 3, -4, 5, -6], [2, 3]);
    const before = backend.numDataIds();
    const same = tf.reshape(x, [2, 3]);
    const sameDtype = tf.cast(x, 'float32');
    expect(backend.numDataIds()).toBe(before);
    const changed = tf.reshape(x, [3, 2]);
    const toInt = tf.cast(x, 'int32');
    expect(backend.numDataIds()).toBe(before + 2);
    expect(changed.shape).toEqual([3, 2]);
    expect(Array.from(toInt.dataSync())).toEqual([1, -2, 3, -4, 5, -6]);
    // The shared tensor outlives the one it came from.
    x.dispose();
    expect(Array.from(same.dataSync())).toEqual([1, -2, 3, -4, 5, -6]);
    expect(Array.from(sameDtype.dataSync())).toEqual([1, -2, 3, -4, 5, -6]);
    tf.dispose([same, sameDtype, changed, toInt]);
    expect(backend.numDataIds()).toBe(before - 1);
  });

  it('a changed Reshape uploads its shape once per distinct shape, for float32, int32 and bool, with -1 resolved', () => {
    const calls = recordNativeCalls();
    let shapes: tf.Tensor[] = [];
    try {
      const f = tf.tensor2d([1, -2, 3, -4, 5, -6], [2, 3]);
      const i = tf.tensor1d([7, 8, 9, 10], 'int32');
      const b = tf.tensor1d([true, false, false, true], 'bool');
      shapes = [tf.reshape(f, [1, 3, 2, 1]), tf.reshape(f, [6, -1, 1]), tf.reshape(f, [1, 3, 2, 1]), tf.reshape(i, [1, 2, 2, 1]), tf.reshape(b, [1, 2, 2, 1])];
      tf.dispose([f, i, b]);
    } finally {
      calls.stop();
    }
    expect(calls.ops).toEqual(['Reshape', 'Reshape', 'Reshape', 'Reshape', 'Reshape']);
    // The three inputs, then one shape each for [1, 3, 2, 1] (used twice), [6, -1, 1] and [1, 2, 2, 1] (int32 and bool).
    expect(calls.uploads).toBe(3 + 3);
    expect(shapes.map((t) => t.shape)).toEqual([[1, 3, 2, 1], [6, 1, 1], [1, 3, 2, 1], [1, 2, 2, 1], [1, 2, 2, 1]]);
    expect(shapes.map((t) => t.dtype)).toEqual(['float32', 'float32', 'float32', 'int32', 'bool']);
    expect(Array.from(shapes[1].dataSync())).toEqual([1, -2, 3, -4, 5, -6]);
    expect(Array.from(shapes[3].dataSync())).toEqual([7, 8, 9, 10]);
    expect(Array.from(shapes[4].dataSync())).toEqual([1, 0, 0, 1]);
    tf.dispose(shapes);
  });

  it('gradient penalty of a linear critic: λ(‖w‖ − 1)² and ∂GP/∂w = 2λ(‖w‖ − 1)·w/‖w‖', () => {
    const w = [1.5, 2, 0, 0];
    const critic = linearCritic([2, 2, 1], w);
    const { ctx } = lossContext({
      discriminator: critic,
      real: tf.randomUniform([6, 2, 2, 1], -1, 1, 'float32', 1),
      fake: tf.randomUniform([6, 2, 2, 1], -1, 1, 'float32', 2),
    });
    const vars = critic.trainableWeights.map((v) => v.read() as tf.Variable);
    const { value, grads } = tf.variableGrads(() => hookHandler<(c: typeof ctx) => tf.Scalar>(gradientPenalty({ lambda: 10 }), 'lossTerms')(ctx), vars);
    const n = Math.hypot(...w);
    expect(value.dataSync()[0]).toBeCloseTo(10 * (n - 1) ** 2, 4);
    const dw = grads[vars[0].name].dataSync();
    w.forEach((wi, i) => expect(dw[i]).toBeCloseTo((2 * 10 * (n - 1) * wi) / n, 4));
    tf.dispose([value, ...Object.values(grads)]);
    critic.dispose();
  });

  it('one WGAN-GP training step of the reference DCGAN equals wasm (losses to 1e-5, every weight to 1e-6)', async () => {
    const results: { losses: number[]; weights: Float32Array[] }[] = [];
    for (const backend of ['wasm', 'tensorflow'] as const) {
      await useBackend(backend, { quiet: true, threads: 1 });
      // SGD: a weight moves by lr × its gradient, so the weights compare the backends' gradients. Adam's first step
      // moves every weight by ±lr whatever the size of its gradient, so a gradient at rounding level whose sign differs
      // between backends moved a weight by 2·lr (1.1e-4 of the generator's scale with seed 3's draws). Measured with SGD:
      // losses 5.5e-7, generator 7.5e-9, discriminator 8.4e-8.
      const t = wganGpTrainer({ optimizers: { generator: tf.train.sgd(0.01), discriminator: tf.train.sgd(0.01) } });
      const [losses] = await trainRecording(t);
      // Per model, all weights as one vector, relative to the model's scale.
      const weights = [t.generator, t.discriminator].map((m) => Float32Array.from(m.getWeights().flatMap((x) => Array.from(x.dataSync()))));
      results.push({ losses, weights });
      t.generator.dispose();
      t.discriminator.dispose();
    }
    const [wasm, native] = results;
    expect(relativeError(native.losses, wasm.losses)).toBeLessThanOrEqual(1e-5);
    native.weights.forEach((w, i) => expect(relativeError(w, wasm.weights[i]), i === 0 ? 'generator' : 'discriminator').toBeLessThanOrEqual(1e-6));
  });

  it('resumes exactly: losses after restore equal the uninterrupted run, bit for bit', async () => {
    await useBackend('tensorflow', { quiet: true });
    const full = await trainRecording(wganGpTrainer({ steps: 4 }));
    const dir = await mkdtemp(join(tmpdir(), 'gantry-tf-'));
    await wganGpTrainer({ steps: 2, checkpoint: { dir, every: 2 } }).train();
    const resumed = wganGpTrainer({ steps: 4 });
    await resumed.restore(dir);
    expect(resumed.step).toBe(2);
    expect(await trainRecording(resumed)).toEqual(full.slice(2));
  });

  it('leaks no tensors: tf.memory().numTensors is flat from step 2 on', async () => {
    await useBackend('tensorflow', { quiet: true });
    const t = wganGpTrainer({ steps: 6 });
    const counts: number[] = [];
    t.on('step:end', () => void counts.push(tf.memory().numTensors));
    await t.train();
    expect(counts).toHaveLength(6);
    expect(new Set(counts.slice(1)).size).toBe(1);
  });
});
