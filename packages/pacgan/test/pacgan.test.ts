import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { Trainer, memberRows, nonSaturating, stackMembers, withSeed } from '@gantry/core';
import { Pack, packDiscriminator, packSamples, pacgan } from '../src/index.js';
import { expectFlatTensorCount, mlp, tinyTrainer, trainCountingTensors, useCpuBackend } from '@gantry/core/testing';

beforeAll(useCpuBackend);

const softplus = (v: number) => Math.log1p(Math.exp(v));

describe('packSamples', () => {
  it('flat samples: pack i holds samples i·m … i·m + m − 1, features in sample order', () => {
    // Sample k is (10k, 10k + 1): every value names its sample and feature.
    const x = tf.tensor2d(Array.from({ length: 6 }, (_, k) => [10 * k, 10 * k + 1]));
    const packed = packSamples(x, 3);
    expect(packed.shape).toEqual([2, 6]);
    expect(packed.arraySync()).toEqual([
      [0, 1, 10, 11, 20, 21],
      [30, 31, 40, 41, 50, 51],
    ]);
    tf.dispose([x, packed]);
  });

  it('images: [B, H, W, C] → [B/m, H, W, m·C], channels of the pack members side by side at every pixel', () => {
    // value = 1000·sample + 100·row + 10·column + channel
    const b = 4;
    const x = tf.tensor4d(
      Array.from({ length: b * 2 * 3 * 2 }, (_, i) => {
        const [s, h, w, c] = [Math.floor(i / 12), Math.floor(i / 6) % 2, Math.floor(i / 2) % 3, i % 2];
        return 1000 * s + 100 * h + 10 * w + c;
      }),
      [b, 2, 3, 2],
    );
    const packed = packSamples(x, 2);
    expect(packed.shape).toEqual([2, 2, 3, 4]);
    const v = packed.arraySync() as number[][][][];
    // pack 1 = samples 2 and 3; pixel (1, 2): channels of sample 2 then of sample 3
    expect(v[1][1][2]).toEqual([2120, 2121, 3120, 3121]);
    expect(v[0][0][0]).toEqual([0, 1, 1000, 1001]);
    tf.dispose([x, packed]);
  });

  it('rejects a batch that is not a multiple of the degree, and other ranks, in one line', () => {
    const x = tf.zeros([5, 2]);
    expect(() => packSamples(x, 2)).toThrow(/batch of 5 samples cannot be packed 2 at a time/);
    expect(() => packSamples(tf.zeros([4, 2, 2]), 2)).toThrow(/got shape \[4, 2, 2\]/);
    expect(() => packSamples(x, 0)).toThrow(/degree must be a positive integer/);
    x.dispose();
  });
});

/** D over packs of m 2-D points: logit = Σ of the pack's coordinates weighted 1, 2, …, 2m (no bias). */
function weightedSumDiscriminator(degree: number): tfl.LayersModel {
  const inner = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [2 * degree], units: 1, useBias: false })] });
  inner.layers[0].setWeights([tf.tensor2d(Array.from({ length: 2 * degree }, (_, i) => [i + 1]))]);
  return inner;
}

describe('packDiscriminator', () => {
  it('one logit per pack, computed from the pack members in order', () => {
    const d = packDiscriminator(weightedSumDiscriminator(2), 2);
    const x = tf.tensor2d([
      [1, 0],
      [0, 0],
      [0, 0],
      [0, 1],
    ]);
    const out = d.predict(x) as tf.Tensor;
    // pack 0 = (1, 0, 0, 0) → 1·1; pack 1 = (0, 0, 0, 1) → 4·1
    expect(out.shape).toEqual([2, 1]);
    expect(Array.from(out.dataSync())).toEqual([1, 4]);
    expect(d.trainableWeights.map((w) => w.name)).toEqual(d.layers.at(-1)!.trainableWeights.map((w) => w.name));
    tf.dispose([x, out]);
  });

  it('names the expected input when the discriminator does not take packs', () => {
    const inner = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [3], units: 1 })] });
    expect(() => packDiscriminator(inner, 2)).toThrow(/must take \[batch, 2·features\].*its input is \[batch, 3\]/);
  });

  it('a packed discriminator survives a topology round trip with its degree', async () => {
    const d = packDiscriminator(weightedSumDiscriminator(3), 3);
    const topology = d.toJSON(undefined, false) as unknown as tf.io.ModelJSON["modelTopology"];
    const copy = await tfl.models.modelFromJSON({ modelTopology: topology } as tf.io.ModelJSON);
    const pack = copy.layers.find((l) => l instanceof Pack) as Pack;
    expect(pack.degree).toBe(3);
    expect(copy.inputs[0].shape).toEqual([null, 2]);
  });
});

describe('pacgan plugin in a trainer', () => {
  it('real packs are labelled 1 and fake packs 0: step 1 d_loss matches the closed form', async () => {
    const degree = 2;
    // G: z ↦ fixed point (0.5, −0.25) (zero kernel, bias = the point) so fake packs have logit (1+3)·0.5 + (2+4)·(−0.25).
    const generator = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [3], units: 2 })] });
    generator.layers[0].setWeights([tf.zeros([3, 2]), tf.tensor1d([0.5, -0.25])]);
    const real = [
      [0.1, 0.2],
      [0.3, -0.4],
      [-0.5, 0.6],
      [0.7, 0.8],
    ];
    const trainer = new Trainer({
      generator,
      discriminator: weightedSumDiscriminator(degree),
      data: [tf.tensor2d(real)],
      steps: 1,
      batchSize: 4,
      loss: nonSaturating(),
      optimizers: { generator: tf.train.sgd(0), discriminator: tf.train.sgd(0) },
      plugins: [pacgan({ degree })],
    });
    const result = await trainer.train();
    const logit = (p: number[]) => p.reduce((s, v, i) => s + (i + 1) * v, 0);
    const realLogits = [logit([...real[0], ...real[1]]), logit([...real[2], ...real[3]])];
    const fakeLogit = logit([0.5, -0.25, 0.5, -0.25]);
    // non-saturating D loss: mean softplus(−real) + mean softplus(fake), over the 2 packs each
    const expected = (softplus(-realLogits[0]) + softplus(-realLogits[1])) / 2 + softplus(fakeLogit);
    expect(result.lastScalars.d_loss).toBeCloseTo(expected, 5);
    expect(result.lastScalars.g_loss).toBeCloseTo(softplus(-fakeLogit), 5);
    expect(trainer.discriminator.outputs[0].shape).toEqual([null, 1]);
    expect(trainer.discriminator.inputs[0].shape).toEqual([null, 2]);
  });

  it('generator gradient through the packs matches central differences', () => {
    const degree = 3;
    const { generator, inner } = withSeed(5, () => ({ generator: mlp(4, 6, 2, 11), inner: mlp(2 * degree, 8, 1, 12) }));
    const d = packDiscriminator(inner, degree);
    const z = tf.randomNormal([6, 4], 0, 1, 'float32', 3);
    const loss = nonSaturating();
    const kernel = generator.trainableWeights[0];
    const objective = (w: tf.Tensor) =>
      tf.tidy(() => {
        const original = kernel.read().clone();
        kernel.write(w);
        const value = loss.generatorLoss(d.apply(generator.apply(z)) as tf.Tensor).dataSync()[0];
        kernel.write(original);
        return value;
      });
    const analytic = tf.tidy(() => {
      const { grads } = tf.variableGrads(() => loss.generatorLoss(d.apply(generator.apply(z)) as tf.Tensor) as tf.Scalar, [
        kernel.read() as tf.Variable,
      ]);
      return Object.values(grads)[0].arraySync() as number[][];
    });
    const base = kernel.read().arraySync() as number[][];
    const h = 1e-2;
    let worst = 0;
    for (let i = 0; i < base.length; i++) {
      for (let j = 0; j < base[0].length; j++) {
        const at = (delta: number) => {
          const w = base.map((row) => row.slice());
          w[i][j] += delta;
          return objective(tf.tensor2d(w));
        };
        const numeric = (at(h) - at(-h)) / (2 * h);
        worst = Math.max(worst, Math.abs(numeric - analytic[i][j]));
      }
    }
    // float32 central differences with h = 1e-2: error O(h²·f''') + O(ε/h) ≈ 1e-4
    expect(worst).toBeLessThan(5e-4);
    expect(Math.max(...analytic.flat().map(Math.abs))).toBeGreaterThan(1e-3);
    z.dispose();
  });

  it('keeps the tensor count flat across steps', async () => {
    const trainer = tinyTrainer([pacgan({ degree: 2 })], { discriminator: mlp(4, 8, 1, 2), steps: 5 });
    expectFlatTensorCount(await trainCountingTensors(trainer));
  });

  it('rejects a bad degree with one line', () => {
    expect(() => pacgan({ degree: 1.5 })).toThrow(/degree must be a positive integer, got 1.5/);
  });
});

describe('packing member models (stackMembers)', () => {
  it("packs stay inside a member: member m's pack scores are its own discriminator's on its own packs", () => {
    const inner = [1, 2, 3].map((seed) => mlp(4, 5, 1, seed));
    const packed = packDiscriminator(stackMembers(inner), 2);
    // 3 members × 4 samples: packs of 2 never mix members when the per-member batch is a multiple of m.
    const x = tf.randomNormal([12, 2], 0, 1, 'float32', 5);
    const out = packed.predict(x) as tf.Tensor;
    expect(out.shape).toEqual([6, 1]);
    inner.forEach((d, m) => {
      const expected = Array.from((d.predict(packSamples(memberRows(x, 3, m), 2)) as tf.Tensor).dataSync());
      expect(Array.from(memberRows(out, 3, m).dataSync())).toEqual(expected.map((v) => expect.closeTo(v, 6)));
    });
    // 2 members × 3 samples: a pack would straddle two members, which the member layer refuses.
    const two = packDiscriminator(stackMembers(inner.slice(0, 2)), 2);
    expect(() => two.predict(tf.zeros([6, 2]))).toThrow(/3 rows cannot be split among 2 members/);
  });
});
