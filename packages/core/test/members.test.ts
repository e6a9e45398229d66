import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { GantryError } from '../src/errors.js';
import { MemberDense, concatMembers, memberEpsilon, memberRows, splitMembers, stackMembers } from '../src/members.js';
import { Trainer } from '../src/trainer.js';
import { pointSource, tinyModels, useCpuBackend, values } from '../src/testing.js';

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
  const n = 8;
  const adam = (members: number) => tf.train.adam(0.01, 0.5, 0.999, memberEpsilon(1e-8, members));
  const weightsOf = (model: tfl.LayersModel) => model.trainableWeights.map((w) => values(w.read()));
  /** Trains `inits` (seeds of tinyModels) as members of one model, trainer seed 7, 4 steps. */
  const trainMembers = async (inits: number[]) => {
    const solo = inits.map((seed) => tinyModels(seed));
    const generator = stackMembers(solo.map((m) => m.generator));
    const discriminator = stackMembers(solo.map((m) => m.discriminator));
    solo.forEach((m) => disposeModels(m.generator, m.discriminator));
    const members = inits.length;
    const trainer = new Trainer({
      generator,
      discriminator,
      data: pointSource(),
      steps: 4,
      batchSize: members * n,
      latentDim: 4,
      seed: 7,
      optimizers: { generator: adam(members), discriminator: adam(members) },
    });
    const counts: number[] = [];
    trainer.on('step:end', () => void counts.push(tf.memory().numTensors));
    await trainer.train();
    return { generator, discriminator, counts };
  };
  /** Member m's slice of every stacked weight. */
  const member = (model: tfl.LayersModel, members: number, m: number) =>
    model.trainableWeights.map((w) => {
      const v = values(w.read());
      const size = v.length / members;
      return v.slice(m * size, (m + 1) * size);
    });

  it('a member trained among others is bit for bit the same whatever the other members are', async () => {
    const ab = await trainMembers([1, 2]);
    const ac = await trainMembers([1, 3]);
    expect(member(ab.generator, 2, 0)).toEqual(member(ac.generator, 2, 0));
    expect(member(ab.discriminator, 2, 0)).toEqual(member(ac.discriminator, 2, 0));
    expect(member(ab.generator, 2, 1)).not.toEqual(member(ac.generator, 2, 1));
    expect(new Set(ab.counts.slice(1)).size).toBe(1);
    disposeModels(ab.generator, ab.discriminator, ac.generator, ac.discriminator);
  });

  it('member 0 equals the same model trained alone (same trainer seed: its data and latents are the first rows)', async () => {
    const { generator, discriminator } = await trainMembers([2, 1]);
    const alone = tinyModels(2);
    const trainer = new Trainer({
      ...alone,
      data: pointSource(),
      steps: 4,
      batchSize: n,
      latentDim: 4,
      seed: 7,
      optimizers: { generator: adam(1), discriminator: adam(1) },
    });
    await trainer.train();
    const initial = tinyModels(2);
    for (const [stacked, solo, init] of [
      [generator, alone.generator, initial.generator],
      [discriminator, alone.discriminator, initial.discriminator],
    ] as const) {
      const got = member(stacked, 2, 0);
      const expected = weightsOf(solo);
      const start = weightsOf(init);
      got.forEach((w, i) => {
        // Training moved the weights, and the member moved the same way to float rounding (the mean over 2n rows
        // and ε/2 round differently from the mean over n and ε).
        expect(Math.max(...w.map((v, k) => Math.abs(v - start[i][k])))).toBeGreaterThan(1e-3);
        w.forEach((v, k) => expect(v).toBeCloseTo(expected[i][k], 5));
      });
    }
    disposeModels(generator, discriminator, alone.generator, alone.discriminator, initial.generator, initial.discriminator);
  });
});
