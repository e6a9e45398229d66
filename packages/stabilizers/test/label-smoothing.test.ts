import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { definePlugin, hinge, leastSquares, nonSaturating } from '@gantry/core';
import { labelSmoothing, realTargetCorrection } from '../src/index.js';
import { tinyTrainer, trainCountingTensors, expectFlatTensorCount, useCpuBackend } from '@gantry/core/testing';

beforeAll(useCpuBackend);

// Independent float64 references.
const softplus = (x: number) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
const bce = (logits: number[], t: number) => mean(logits.map((x) => softplus(x) - t * x));

describe('labelSmoothing', () => {
  const real = [2.5, -0.7, 0.1, 4.2, -3];
  const fake = [-1.5, 0.3, 2, -0.2, 0.9];

  it('BCE losses: d_loss + correction equals BCE with real target 0.9', () => {
    const r = tf.tensor1d(real);
    const f = tf.tensor1d(fake);
    const base = nonSaturating().discriminatorLoss(r, f);
    const term = realTargetCorrection('non-saturating', 0.9)(r);
    expect(base.dataSync()[0] + term.dataSync()[0]).toBeCloseTo(bce(real, 0.9) + bce(fake, 0), 5);
    // minimax has the same D loss
    expect(realTargetCorrection('minimax', 0.9)(r).dataSync()[0]).toBeCloseTo(0.1 * mean(real), 6);
    tf.dispose([r, f, base, term]);
  });

  it('least squares: d_loss + correction equals ½E[(D(x) − 0.9)²] + ½E[D(G(z))²]', () => {
    const r = tf.tensor1d(real);
    const f = tf.tensor1d(fake);
    const base = leastSquares().discriminatorLoss(r, f);
    const term = realTargetCorrection('least-squares', 0.9)(r);
    const expected = 0.5 * mean(real.map((x) => (x - 0.9) ** 2)) + 0.5 * mean(fake.map((x) => x * x));
    expect(base.dataSync()[0] + term.dataSync()[0]).toBeCloseTo(expected, 5);
    tf.dispose([r, f, base, term]);
  });

  it('rejects losses without label targets and bad targets', () => {
    expect(() => realTargetCorrection(hinge().name, 0.9)).toThrow(/hinge/);
    expect(() => labelSmoothing({ target: 1.5 })).toThrow(/target/);
    expect(() => labelSmoothing({ taget: 0.9 } as never)).toThrow(/Unknown option "taget"/);
  });

  it('in training, the D phase loss is BCE with target 0.9 on the logits the trainer computed', async () => {
    const seen: { real: number[]; fake: number[] }[] = [];
    const spy = definePlugin({
      name: 'spy',
      hooks: {
        lossTerms: {
          phase: 'D',
          handler: (ctx) => void seen.push({ real: Array.from(ctx.realLogits!.dataSync()), fake: Array.from(ctx.fakeLogits.dataSync()) }),
        },
      },
    });
    const scalars: Record<string, number>[] = [];
    const trainer = tinyTrainer([labelSmoothing(), spy], { steps: 5 });
    trainer.on('step:end', (e) => void scalars.push(e.scalars));
    const counts = await trainCountingTensors(trainer);
    expectFlatTensorCount(counts);
    expect(scalars).toHaveLength(5);
    scalars.forEach((s, i) => {
      const { real: r, fake: f } = seen[i];
      expect(s['d_loss'] + s['D/label-smoothing']).toBeCloseTo(bce(r, 0.9) + bce(f, 0), 5);
    });
  });
});
