import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { registerNestedGradientFixes } from '../src/gradients.js';
import type { Batch, DataSource } from '../src/data.js';
import { withSeed } from '../src/random.js';
import { Trainer, type TrainerOptions } from '../src/trainer.js';
// The Node entry: checkpoint locations given as strings are folders.
import '../src/index.js';

export async function cpu(): Promise<void> {
  await tf.setBackend('cpu');
  tf.enableProdMode();
  registerNestedGradientFixes();
}

/** Tiny MLP GAN on 2-D points; built inside withSeed so weights are reproducible. */
export function tinyModels(seed = 1, latent = 4, dim = 2) {
  return withSeed(seed, () => {
    const generator = tfl.sequential({
      layers: [
        tfl.layers.dense({ inputShape: [latent], units: 8, activation: 'relu' }),
        tfl.layers.dense({ units: dim, activation: 'tanh' }),
      ],
    });
    const discriminator = tfl.sequential({
      layers: [tfl.layers.dense({ inputShape: [dim], units: 8 }), tfl.layers.leakyReLU({ alpha: 0.2 }), tfl.layers.dense({ units: 1 })],
    });
    return { generator, discriminator };
  });
}

/** Deterministic endless source of 2-D points in [-0.5, 0.5]², a pure function of (seed, batch index). */
export function pointSource(dim = 2): DataSource {
  return {
    name: 'points',
    elementShape: [dim],
    *batches({ batchSize, seed, start }): Iterator<Batch> {
      for (let i = start; ; i++) {
        yield { x: tf.tidy(() => tf.mul(tf.randomUniform([batchSize, dim], -1, 1, 'float32', seed + i * 7919), 0.5)) };
      }
    },
  };
}

/** The tiny GAN on points with fixed seeds: 6 steps of batch 16 unless `extra` says otherwise. */
export function pointTrainer(extra: Partial<TrainerOptions> = {}, seed = 1): Trainer {
  return new Trainer({ ...tinyModels(seed), data: pointSource(), steps: 6, batchSize: 16, seed: 7, ...extra });
}

/** Trains to the end and returns [d_loss, g_loss] of every step. */
export async function lossTrace(t: Trainer): Promise<number[][]> {
  const trace: number[][] = [];
  t.on('step:end', ({ scalars }) => void trace.push([scalars.d_loss, scalars.g_loss]));
  await t.train();
  return trace;
}
