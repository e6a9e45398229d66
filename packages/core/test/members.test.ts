import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { GantryError } from '../src/errors.js';
import { MemberDense, concatMembers, memberRows, splitMembers, stackMembers } from '../src/members.js';
import { memberTrainer, memberWeights, tinyModels, useCpuBackend, values } from '../src/testing.js';

beforeAll(useCpuBackend);

const disposeModels = (...models: tfl.LayersModel[]) => models.forEach((m) => m.dispose());

describe('stackMembers / MemberDense', () => {
  it("member m's rows of the stacked model's output are model m's output on those rows", () => {
    const solo = [1, 2, 3].map((seed) => tinyModels(seed).discriminator);
    const stacked = stackMembers(solo);
    expect(stacked.layers.some((l) => l instanceof MemberDense)).toBe(true);
    const x = tf.randomNormal([3 * 5, 2], 0, 1, 'float32', 9);
    const out = stacked.predict(x) as tf.Tensor;
    expect(out.shape).toEqual([15, 1]);
    solo.forEach((model, m) => {
      const expected = values(model.predict(memberRows(x, 3, m)) as tf.Tensor);
      expect(values(memberRows(out, 3, m))).toEqual(expected.map((v) => expect.closeTo(v, 6)));
    });
    disposeModels(stacked, ...solo);
  });

  it('rejects models that differ and batches that do not split among the members, in one line', () => {
    const a = tinyModels(1).discriminator;
    const b = tinyModels(1, 4, 3).discriminator;
    expect(() => stackMembers([a, b])).toThrow(/model 1 .* differs in its layers from model 0/);
    const stacked = stackMembers([a, a]);
    expect(() => stacked.predict(tf.zeros([3, 2]))).toThrow(/3 rows cannot be split among 2 members/);
    expect(() => new MemberDense({ members: 0, units: 1 })).toThrow(GantryError);
    disposeModels(a, b, stacked);
  });

  it('survives a topology round trip (registered class, same outputs)', async () => {
    const stacked = stackMembers([tinyModels(1).generator, tinyModels(2).generator]);
    const saved: tf.io.ModelArtifacts[] = [];
    await stacked.save(tf.io.withSaveHandler(async (artifacts) => (saved.push(artifacts), { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } })));
    const loaded = await tfl.loadLayersModel(tf.io.fromMemory(saved[0]));
    const z = tf.randomNormal([4, 4], 0, 1, 'float32', 2);
    expect(values(loaded.predict(z) as tf.Tensor)).toEqual(values(stacked.predict(z) as tf.Tensor));
    disposeModels(stacked, loaded);
  });
});

describe('concatMembers / splitMembers', () => {
  it('keep member-major order: member m gets its rows of every part, and split undoes it', () => {
    // Two members, parts of 4 and 2 rows (2 and 1 per member); every value names its part and row.
    const a = tf.tensor2d([[10], [11], [12], [13]]);
    const b = tf.tensor2d([[20], [21]]);
    const joined = concatMembers([a, b], 2);
    expect(values(joined)).toEqual([10, 11, 20, 12, 13, 21]);
    const [a2, b2] = splitMembers(joined, [4, 2], 2);
    expect(values(a2)).toEqual(values(a));
    expect(values(b2)).toEqual(values(b));
    expect(values(concatMembers([a, b], 1))).toEqual([10, 11, 12, 13, 20, 21]);
  });
});

describe('members in the trainer', () => {
  /** Trains `inits` (seeds of tinyModels) as members of one model, trainer seed 7, 4 steps of 8 rows each. */
  const trainMembers = async (inits: number[]) => {
    const trainer = memberTrainer(
      inits.map((seed) => tinyModels(seed)),
      { perMember: 8, latentDim: 4 },
    );
    const counts: number[] = [];
    trainer.on('step:end', () => void counts.push(tf.memory().numTensors));
    await trainer.train();
    return { generator: trainer.generator, discriminator: trainer.discriminator, counts };
  };

  it('a member trained among others is bit for bit the same whatever the other members are', async () => {
    const ab = await trainMembers([1, 2]);
    const ac = await trainMembers([1, 3]);
    expect(memberWeights(ab.generator, 2, 0)).toEqual(memberWeights(ac.generator, 2, 0));
    expect(memberWeights(ab.discriminator, 2, 0)).toEqual(memberWeights(ac.discriminator, 2, 0));
    expect(memberWeights(ab.generator, 2, 1)).not.toEqual(memberWeights(ac.generator, 2, 1));
    expect(new Set(ab.counts.slice(1)).size).toBe(1);
    disposeModels(ab.generator, ab.discriminator, ac.generator, ac.discriminator);
  });

  it('member 0 equals the same model trained alone (same trainer seed: its data and latents are the first rows)', async () => {
    const together = await trainMembers([2, 1]);
    const alone = await trainMembers([2]);
    const initial = tinyModels(2);
    for (const which of ['generator', 'discriminator'] as const) {
      const got = memberWeights(together[which], 2, 0);
      const expected = memberWeights(alone[which], 1, 0);
      const start = memberWeights(initial[which], 1, 0);
      got.forEach((w, i) => {
        // Training moved the weights, and the member moved the same way to float rounding (the mean over 2n rows
        // and ε/2 round differently from the mean over n and ε).
        expect(Math.max(...w.map((v, k) => Math.abs(v - start[i][k])))).toBeGreaterThan(1e-3);
        w.forEach((v, k) => expect(v).toBeCloseTo(expected[i][k], 5));
      });
    }
    disposeModels(together.generator, together.discriminator, alone.generator, alone.discriminator, initial.generator, initial.discriminator);
  });
});
