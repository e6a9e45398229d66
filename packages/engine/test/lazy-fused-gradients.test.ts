// Registers the cpu backend these tests compare with, also when a filter (-t) skips the tests that would load it.
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '../src/index.js';
import { registerLazyFusedGradients } from '../src/lazy-fused-gradients.js';

afterAll(async () => {
  await tf.setBackend('cpu');
});

function seeded(shape: number[], seed: number): tf.Tensor {
  return tf.randomUniform(shape, -1, 1, 'float32', seed);
}

/** Gradients of sum(op(inputs) · w) with respect to `inputs`, and the kernels the backward pass ran. */
function gradientsAndKernels(op: (...xs: tf.Tensor[]) => tf.Tensor, inputs: tf.Tensor[], w: tf.Tensor) {
  const names: string[] = [];
  let grads: tf.Tensor[] = [];
  return tf
    .profile(() => {
      grads = tf.grads((...xs: tf.Tensor[]) => tf.sum(tf.mul(op(...xs), w)))(inputs);
    })
    .then((info) => {
      names.push(...info.kernels.map((k) => k.name));
      return { grads, names };
    });
}

async function bitsOf(t: tf.Tensor): Promise<Uint32Array> {
  return new Uint32Array((await t.data<'float32'>()).slice().buffer);
}

interface ConvCase {
  x: number[];
  filter: number[];
  strides: number | [number, number];
  pad: 'same' | 'valid' | number;
}

const CONV_CASES: ConvCase[] = [
  { x: [3, 9, 9, 2], filter: [3, 3, 2, 4], strides: 2, pad: 'same' },
  { x: [2, 8, 7, 3], filter: [4, 4, 3, 5], strides: [2, 1], pad: 'valid' },
  { x: [2, 6, 5, 1], filter: [3, 2, 1, 3], strides: 1, pad: 'same' },
];

describe.each(['cpu', 'wasm'] as const)('lazy fused-op gradients on %s', (backend) => {
  beforeAll(async () => {
    await useBackend(backend, { quiet: true, threads: 1 });
  });

  it.each(CONV_CASES)('fused conv2d $x * $filter (strides $strides, pad $pad): the gradients of tf.conv2d + add, bit for bit', async (c) => {
    const x = seeded(c.x, 1);
    const filter = seeded(c.filter, 2);
    const bias = seeded([c.filter[3]], 3);
    const y = tf.conv2d(x as tf.Tensor4D, filter as tf.Tensor4D, c.strides, c.pad);
    const w = seeded(y.shape, 4);
    const fused = await gradientsAndKernels(
      (xx, ff, bb) => tf.fused.conv2d({ x: xx as tf.Tensor4D, filter: ff as tf.Tensor4D, strides: c.strides, pad: c.pad, bias: bb }),
      [x, filter, bias],
      w,
    );
    // The reference: the unfused ops' registered gradients (Conv2D's and Add's), which run the same kernels.
    const plain = await gradientsAndKernels(
      (xx, ff, bb) => tf.add(tf.conv2d(xx as tf.Tensor4D, ff as tf.Tensor4D, c.strides, c.pad), bb),
      [x, filter, bias],
      w,
    );
    expect(fused.names).toContain('FusedConv2D');
    for (let i = 0; i < 3; i++) {
      expect(fused.grads[i].shape).toEqual([x, filter, bias][i].shape);
      expect(await bitsOf(fused.grads[i])).toEqual(await bitsOf(plain.grads[i]));
    }
    tf.dispose([x, filter, bias, y, w, ...fused.grads, ...plain.grads]);
  });

  it('computes only the gradients the tape asks for (no input gradient for a filter-only gradient)', async () => {
    const x = seeded([2, 8, 8, 3], 5);
    const filter = seeded([3, 3, 3, 4], 6);
    const bias = seeded([4], 7);
    const w = seeded([2, 4, 4, 4], 8);
    const conv = (ff: tf.Tensor, bb: tf.Tensor) =>
      tf.fused.conv2d({ x: x as tf.Tensor4D, filter: ff as tf.Tensor4D, strides: 2, pad: 'same', bias: bb });
    const onlyWeights = await gradientsAndKernels(conv, [filter, bias], w);
    expect(onlyWeights.names).toContain('Conv2DBackpropFilter');
    expect(onlyWeights.names).not.toContain('Conv2DBackpropInput');
    const onlyInput = await gradientsAndKernels(
      (xx) => tf.fused.conv2d({ x: xx as tf.Tensor4D, filter: filter as tf.Tensor4D, strides: 2, pad: 'same', bias }),
      [x],
      w,
    );
    expect(onlyInput.names).toContain('Conv2DBackpropInput');
    expect(onlyInput.names).not.toContain('Conv2DBackpropFilter');
    tf.dispose([x, filter, bias, w, ...onlyWeights.grads, ...onlyInput.grads]);
  });

  it.each([
    [false, false],
    [false, true],
    [true, false],
    [true, true],
  ])('fused matMul (transposeA %s, transposeB %s): the gradients of tf.matMul + add, bit for bit; only those asked for', async (ta, tb) => {
    const [m, k, n] = [5, 7, 3];
    const a = seeded(ta ? [k, m] : [m, k], 9);
    const b = seeded(tb ? [n, k] : [k, n], 10);
    const bias = seeded([n], 11);
    const w = seeded([m, n], 12);
    const fused = await gradientsAndKernels((aa, bb, cc) => tf.fused.matMul({ a: aa, b: bb, transposeA: ta, transposeB: tb, bias: cc }), [a, b, bias], w);
    const plain = await gradientsAndKernels((aa, bb, cc) => tf.add(tf.matMul(aa, bb, ta, tb), cc), [a, b, bias], w);
    expect(fused.names).toContain('_FusedMatMul');
    for (let i = 0; i < 3; i++) expect(await bitsOf(fused.grads[i])).toEqual(await bitsOf(plain.grads[i]));
    // With respect to the bias only: no matrix product in the backward pass.
    const biasOnly = await gradientsAndKernels((cc) => tf.fused.matMul({ a, b, transposeA: ta, transposeB: tb, bias: cc }), [bias], w);
    expect(biasOnly.names.filter((name) => name === 'BatchMatMul' || name === '_FusedMatMul')).toEqual(['_FusedMatMul']);
    expect(await bitsOf(biasOnly.grads[0])).toEqual(await bitsOf(plain.grads[2]));
    tf.dispose([a, b, bias, w, ...fused.grads, ...plain.grads, ...biasOnly.grads]);
  });

  it('leaks no tensors', () => {
    const x = seeded([2, 6, 6, 2], 13);
    const filter = seeded([3, 3, 2, 2], 14);
    const bias = seeded([2], 15);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      const g = tf.grads((ff: tf.Tensor, bb: tf.Tensor) =>
        tf.sum(tf.fused.conv2d({ x: x as tf.Tensor4D, filter: ff as tf.Tensor4D, strides: 1, pad: 'same', bias: bb })),
      )([filter, bias]);
      tf.dispose(g);
    }
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, filter, bias]);
  });
});

describe('a fused kernel registered after registerLazyFusedGradients', () => {
  it('fails its gradient with one line naming the fix, and works again once registered', async () => {
    await useBackend('cpu', { quiet: true });
    const kernel = tf.getKernel(tf.FusedConv2D, 'cpu')!;
    tf.unregisterKernel(tf.FusedConv2D, 'cpu');
    // A kernel registered later (a new backend's, another library's), not wrapped: conv + bias from cpu's kernels.
    tf.registerKernel({
      kernelName: tf.FusedConv2D,
      backendName: 'cpu',
      kernelFunc: ({ inputs, attrs, backend }) => {
        const conv = tf.getKernel(tf.Conv2D, 'cpu')!.kernelFunc({ inputs: { x: inputs.x!, filter: inputs.filter! }, attrs, backend }) as tf.TensorInfo;
        const out = tf.getKernel(tf.Add, 'cpu')!.kernelFunc({ inputs: { a: conv, b: inputs.bias! }, attrs: {}, backend }) as tf.TensorInfo;
        (backend as tf.KernelBackend).disposeData(conv.dataId);
        return out;
      },
    });
    const x = seeded([1, 4, 4, 1], 16);
    const filter = seeded([2, 2, 1, 1], 17);
    const bias = seeded([1], 18);
    const loss = (ff: tf.Tensor) => tf.sum(tf.fused.conv2d({ x: x as tf.Tensor4D, filter: ff as tf.Tensor4D, strides: 1, pad: 'same', bias }));
    expect(() => tf.grad(loss)(filter)).toThrow(/no attributes recorded for the FusedConv2D kernel on backend "cpu"; call registerLazyFusedGradients\(\)/);
    registerLazyFusedGradients();
    const g = tf.grad(loss)(filter);
    expect(g.shape).toEqual([2, 2, 1, 1]);
    tf.dispose([x, filter, bias, g]);
    tf.unregisterKernel(tf.FusedConv2D, 'cpu');
    tf.registerKernel(kernel);
  });
});
