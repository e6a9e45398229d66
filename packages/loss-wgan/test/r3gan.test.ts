import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { Trainer, withSeed } from '@gantry/core';
import { R3GAN_SMALL_IMAGES, cosineSchedule, emaBetaForHalfLife, r3ganDefaults, r3ganSchedule } from '../src/index.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('R3GAN schedule', () => {
  it('cosine from base to final over T images: base at 0, midpoint at T/2, final at and past T', () => {
    const s = { base: 2, final: 1 };
    expect(cosineSchedule(s, 0, 100)).toBe(2);
    expect(cosineSchedule(s, 50, 100)).toBeCloseTo(1.5, 12);
    // t = T/3: decay = ½(1 + cos(π/3)) = 0.75 → 2 + 0.25·(1 − 2)
    expect(cosineSchedule(s, 100 / 3, 100)).toBeCloseTo(1.75, 12);
    expect(cosineSchedule(s, 100, 100)).toBe(1);
    expect(cosineSchedule(s, 1e9, 100)).toBe(1);
  });

  it('small-image preset values at 0 and after the 20M-image decay', () => {
    expect(r3ganSchedule(0)).toEqual({ learningRate: 2e-4, beta2: 0.9, gamma: 0.05, emaHalfLifeImages: 0, augmentP: 0 });
    const end = r3ganSchedule(R3GAN_SMALL_IMAGES.decayImages);
    expect(end).toEqual({ learningRate: 5e-5, beta2: 0.99, gamma: 0.005, emaHalfLifeImages: 5e6, augmentP: 0.55 });
    // 128k images (2000 steps of 64) move γ by (1 − cos(π·0.0064))/2 of its range: 1e-4 of 0.045.
    expect(r3ganSchedule(128_000).gamma).toBeCloseTo(0.05 - 0.045 * ((1 - Math.cos(Math.PI * 0.0064)) / 2), 12);
  });

  it('EMA β from a half-life: β^(halfLife/batch) = ½', () => {
    const beta = emaBetaForHalfLife(10_000, 64);
    expect(beta ** (10_000 / 64)).toBeCloseTo(0.5, 12);
    expect(emaBetaForHalfLife(0, 64)).toBe(0);
    expect(() => emaBetaForHalfLife(100, 0)).toThrow(/batchSize > 0/);
  });
});

describe('r3ganDefaults', () => {
  it('RpGAN, one critic step, Adam(2e-4, β₁ 0, β₂ 0.9, ε 1e-8), R1 and R2 with one γ; fresh optimizers per call', () => {
    const preset = r3ganDefaults();
    expect(preset.loss.name).toBe('rpgan');
    expect(preset.nCritic).toBe(1);
    expect(preset.optimizers.discriminator.getConfig()).toMatchObject({ learningRate: 2e-4, beta1: 0, beta2: 0.9, epsilon: 1e-8 });
    expect(preset.plugins.map((p) => p.name)).toEqual(['r1', 'r2']);
    expect(r3ganDefaults().optimizers.generator).not.toBe(preset.optimizers.generator);
    expect(() => r3ganDefaults({ gama: 1 } as never)).toThrow(/gama/);
  });

  it('trains: d_loss is RpGAN of the step-1 logits, R1 and R2 are (γ/2)‖w‖² for a linear critic, no leaked tensors', async () => {
    const gamma = 0.4;
    const w = [0.5, -1, 2];
    const { generator, discriminator } = withSeed(2, () => ({
      generator: tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [2], units: 3, activation: 'tanh' })] }),
      discriminator: tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [3], units: 1 })] }),
    }));
    discriminator.setWeights([tf.tensor2d(w, [3, 1]), tf.tensor1d([0.1])]);
    // A zero kernel makes every generated sample tanh(bias): D(fake) is known in closed form.
    const genBias = [0.2, -0.4, 0.6];
    generator.setWeights([tf.zeros([2, 3]), tf.tensor1d(genBias)]);
    const real = tf.tensor2d([0.1, 0.2, -0.3, 0.5, -0.5, 0.25, 0, 0.9, -0.1, -0.7, 0.3, 0.3], [4, 3]);
    const trainer = new Trainer({
      generator,
      discriminator,
      data: { *[Symbol.iterator]() { for (;;) yield tf.clone(real); } },
      steps: 3,
      seed: 5,
      ...r3ganDefaults({ gamma }),
    });
    const rows: Record<string, number>[] = [];
    const tensors: number[] = [];
    trainer.on('step:end', ({ scalars }) => {
      rows.push(scalars);
      tensors.push(tf.memory().numTensors);
    });
    await trainer.train();
    const normSq = w.reduce((a, b) => a + b * b, 0);
    const critic = (x: number[]) => x.reduce((a, xi, i) => a + xi * w[i], 0.1);
    const fakeLogit = critic(genBias.map(Math.tanh));
    const realLogits = [0, 1, 2, 3].map((i) => critic(Array.from(real.dataSync().slice(3 * i, 3 * i + 3))));
    const softplus = (x: number) => Math.log1p(Math.exp(x));
    const expectedD = realLogits.reduce((a, r) => a + softplus(fakeLogit - r), 0) / 4;
    expect(rows[0].d_loss).toBeCloseTo(expectedD, 5);
    expect(rows[0]['D/r1']).toBeCloseTo((gamma / 2) * normSq, 5);
    expect(rows[0]['D/r2']).toBeCloseTo((gamma / 2) * normSq, 5);
    for (const row of rows) expect(Number.isFinite(row.d_loss) && Number.isFinite(row.g_loss)).toBe(true);
    // Optimizer slots exist after step 1; from then on every step ends with the same number of tensors.
    expect(tensors[2]).toBe(tensors[1]);
    real.dispose();
  });
});
