import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { definePlugin, withSeed, type DataSource } from '@gantry/core';
import type { FidPluginOptions } from '@gantry/fid';
import { conditionalGenerator, projectionDiscriminator } from '../src/experiments/mnist-cgan.js';
import { evalFid, type ExperimentContext } from '../src/experiments/types.js';

const onehot = (classes: number[]) => tf.cast(tf.oneHot(tf.tensor1d(classes, 'int32'), 10), 'float32');

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('mnist-cgan models', () => {
  it('projection discriminator: D(x, y) = ψ(φ(x)) + ⟨E·onehot(y), φ(x)⟩', () => {
    const d = withSeed(1, () => projectionDiscriminator());
    const features = tfl.model({ inputs: d.inputs[0], outputs: d.getLayer('d_flatten').output as tfl.SymbolicTensor });
    const x = tf.randomUniform([2, 28, 28, 1], -1, 1, 'float32', 3);
    const labels = onehot([3, 7]);
    const logits = Array.from((d.predict([x, labels]) as tf.Tensor).dataSync());
    const phi = features.predict(x) as tf.Tensor2D;
    const [psiKernel, psiBias] = d.getLayer('d_psi').getWeights();
    const [embedding] = d.getLayer('d_embed').getWeights();
    const expected = tf.tidy(() => {
      const psi = tf.add(tf.matMul(phi, psiKernel), psiBias);
      const projected = tf.sum(tf.mul(tf.matMul(labels, embedding), phi), 1, true);
      return Array.from(tf.add(psi, projected).dataSync());
    });
    logits.forEach((l, i) => expect(l).toBeCloseTo(expected[i], 3));
    // Only the projection depends on the class.
    const other = Array.from((d.predict([x, onehot([0, 0])]) as tf.Tensor).dataSync());
    const rows = tf.tidy(() => Array.from(tf.sum(tf.mul(tf.sub(tf.gather(embedding, [3, 7]), tf.gather(embedding, [0, 0])), phi), 1).dataSync()));
    logits.forEach((l, i) => expect(l - other[i]).toBeCloseTo(rows[i], 3));
  });

  it('conditional generator: [z, onehot] → 28×28×1 in (−1, 1); the class changes the image', () => {
    const g = withSeed(2, () => conditionalGenerator());
    expect(g.inputs.map((i) => i.shape)).toEqual([[null, 100], [null, 10]]);
    const z = tf.randomNormal([1, 100], 0, 1, 'float32', 4);
    const a = g.predict([z, onehot([1])]) as tf.Tensor;
    const b = g.predict([z, onehot([8])]) as tf.Tensor;
    expect(a.shape).toEqual([1, 28, 28, 1]);
    expect(Math.max(...Array.from(a.dataSync()).map(Math.abs))).toBeLessThan(1);
    expect(Array.from(a.dataSync())).not.toEqual(Array.from(b.dataSync()));
  });
});

describe('evalFid', () => {
  const context = (steps: number, withFid = true) => {
    const asked: FidPluginOptions[] = [];
    const ctx: ExperimentContext = {
      seed: 0,
      batchSize: 64,
      steps,
      mnist: (options) => ({ split: options?.split }) as unknown as DataSource,
      fid: withFid
        ? (options) => {
            asked.push(options);
            return definePlugin({ name: 'fid' });
          }
        : undefined,
    };
    return { ctx, asked };
  };

  it('one fid plugin: every N steps and at the last step, 10000 samples against the test split', () => {
    const { ctx, asked } = context(1200);
    expect(evalFid(ctx, 500)).toHaveLength(1);
    expect(asked.map((o) => [o.every, o.atEnd, o.samples, (o.real as unknown as { split: string }).split])).toEqual([[500, true, 10000, 'test']]);
  });

  it('adds nothing where the host offers no FID (the playground)', () => {
    expect(evalFid(context(3000, false).ctx, 500)).toEqual([]);
  });
});
