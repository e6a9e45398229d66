import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '@gantry/core';
import { annealedSigma, cloneModel, InstanceNoise, instanceNoise } from '../src/index.js';
import { expectFlatTensorCount, mlp, tinyTrainer, trainCountingTensors, useCpuBackend, values } from '@gantry/core/testing';

beforeAll(useCpuBackend);

describe('instanceNoise', () => {
  it('anneals σ linearly to 0 over annealSteps', () => {
    const got = [1, 2, 3, 4, 5, 6, 50].map((s) => annealedSigma(0.2, 4, s));
    [0.2, 0.15, 0.1, 0.05, 0, 0, 0].forEach((v, i) => expect(got[i]).toBeCloseTo(v, 12));
  });

  it('the layer adds σ·ε with ε from the given RNG in training, and is the identity otherwise', () => {
    const layer = new InstanceNoise({});
    const x = tf.tensor2d([
      [0.5, -0.25],
      [1, 0],
      [-1, 0.75],
    ]);
    layer.sigma = 0.3;
    layer.rng = new Rng(11);
    const noisy = layer.apply(x, { training: true }) as tf.Tensor;
    const eps = tf.randomNormal([3, 2], 0, 1, 'float32', new Rng(11).nextSeed());
    const expected = tf.add(x, tf.mul(eps, 0.3));
    expect(values(noisy)).toEqual(values(expected));
    const inference = layer.apply(x) as tf.Tensor;
    expect(values(inference)).toEqual(values(x));
    layer.sigma = 0;
    const off = layer.apply(x, { training: true }) as tf.Tensor;
    expect(values(off)).toEqual(values(x));
    tf.dispose([x, noisy, eps, expected, inference, off]);
  });

  it('sets σ each step in training, reports it, and serializes with the model', async () => {
    const noise = instanceNoise({ sigma: 0.1, annealSteps: 2 });
    const discriminator = mlp(2, 8, 1, 2, [noise.layer({ inputShape: [2] })]);
    const trainer = tinyTrainer([noise], { discriminator, steps: 5 });
    const sigmas: number[] = [];
    trainer.on('step:end', (e) => void sigmas.push(e.scalars['instance-noise/sigma']));
    expectFlatTensorCount(await trainCountingTensors(trainer));
    expect(sigmas.map((s) => Number(s.toFixed(6)))).toEqual([0.1, 0.05, 0, 0, 0]);
    const copy = await cloneModel(discriminator);
    expect(copy.layers[0]).toBeInstanceOf(InstanceNoise);
    copy.dispose();
  });

  it('fails clearly without a noise layer in the discriminator', async () => {
    const trainer = tinyTrainer([instanceNoise({ annealSteps: 10 })]);
    await expect(trainer.train()).rejects.toThrow(/no noise layer/);
  });
});
