import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { Trainer, hinge, unpackScheduled, withSeed, type DataSource, type LossContext } from '@gantry/core';
import { auxiliaryClassifier, classCrossEntropy } from '../src/index.js';
import { expectFlatTensorCount, trainCountingTensors, useCpuBackend } from '@gantry/core/testing';

beforeAll(useCpuBackend);

const softplus = (x: number) => Math.log1p(Math.exp(x));
const crossEntropy = (logits: number[], label: number) => Math.log(logits.reduce((a, l) => a + Math.exp(l), 0)) - logits[label];

describe('auxiliaryClassifier', () => {
  const real = [
    [1.5, 2, 0, -1],
    [-0.5, 0, 3, 1],
  ];
  const fake = [
    [-2, 1, 1, 1],
    [0.3, -1, 0.5, 2],
  ];
  const labels = [1, 2];
  const { loss, plugins } = auxiliaryClassifier({ classes: 3, weight: 0.5 });
  const handler = unpackScheduled(plugins[0].hooks!.lossTerms!).handler as (ctx: LossContext) => tf.Scalar;
  const ctx = (phase: 'D' | 'G') =>
    ({ phase, labels: tf.tensor1d(labels, 'int32'), realLogits: tf.tensor2d(real), fakeLogits: tf.tensor2d(fake) }) as unknown as LossContext;

  it('the adversarial loss sees column 0 only', () => {
    const d = loss.discriminatorLoss(tf.tensor2d(real), tf.tensor2d(fake)).dataSync()[0];
    expect(d).toBeCloseTo((softplus(-1.5) + softplus(0.5)) / 2 + (softplus(-2) + softplus(0.3)) / 2, 5);
    expect(loss.generatorLoss(tf.tensor2d(fake)).dataSync()[0]).toBeCloseTo((softplus(2) + softplus(-0.3)) / 2, 5);
    expect(loss.name).toBe('ac-non-saturating');
    expect(() => loss.discriminatorLoss(tf.zeros([2, 3]), tf.zeros([2, 3]))).toThrow(/must output \[N, 4\]/);
  });

  it('D: weight · (CE on real + CE on fake); G: weight · CE on fake; class logits are columns 1…K', () => {
    const ce = (rows: number[][]) => (crossEntropy(rows[0].slice(1), labels[0]) + crossEntropy(rows[1].slice(1), labels[1])) / 2;
    expect(handler(ctx('D')).dataSync()[0]).toBeCloseTo(0.5 * (ce(real) + ce(fake)), 5);
    expect(handler(ctx('G')).dataSync()[0]).toBeCloseTo(0.5 * ce(fake), 5);
    expect(classCrossEntropy(tf.tensor2d([[0, 0]]), tf.tensor1d([1]), 2).dataSync()[0]).toBeCloseTo(Math.log(2), 6);
  });

  it('trains a conditional generator against a 1 + K output discriminator, leak-free, with hinge as the base loss', async () => {
    const data: DataSource = {
      name: 'labelled-points',
      elementShape: [2],
      numClasses: 3,
      *batches({ batchSize, seed, start }) {
        for (let i = start; ; i++) {
          yield {
            x: tf.tidy(() => tf.clipByValue(tf.randomNormal([batchSize, 2], 0, 0.3, 'float32', seed + i), -1, 1)),
            labels: tf.tensor1d(Array.from({ length: batchSize }, (_, k) => (i + k) % 3), 'int32'),
          };
        }
      },
    };
    const { generator, discriminator } = withSeed(2, () => {
      const z = tfl.input({ shape: [3] });
      const y = tfl.input({ shape: [3] });
      const g = tfl.model({ inputs: [z, y], outputs: tfl.layers.dense({ units: 2, activation: 'tanh' }).apply(tfl.layers.concatenate().apply([z, y])) as tfl.SymbolicTensor });
      const d = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [2], units: 8, activation: 'relu' }), tfl.layers.dense({ units: 4 })] });
      return { generator: g, discriminator: d };
    });
    const preset = auxiliaryClassifier({ classes: 3, loss: hinge() });
    const trainer = new Trainer({ generator, discriminator, data, steps: 5, batchSize: 6, latentDim: 3, ...preset });
    const rows: Record<string, number>[] = [];
    trainer.on('step:end', ({ scalars }) => void rows.push(scalars));
    expectFlatTensorCount(await trainCountingTensors(trainer));
    for (const r of rows) expect(Number.isFinite(r['D/ac']) && Number.isFinite(r['G/ac'])).toBe(true);
  });
});
