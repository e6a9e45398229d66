/** Shared by the plugin packages' tests: a tiny seeded MLP GAN on 2-D points, trainer builders and tensor-count checks. */
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { Trainer, withSeed, type DataSource, type GantryPlugin, type TrainerOptions } from '@gantry/core';

export async function useCpu(): Promise<void> {
  await tf.setBackend('cpu');
}

/** A small Dense/LeakyReLU MLP, seeded. `first` layers go in front (e.g. a noise layer). */
export function mlp(inputDim: number, hidden: number, output: number, seed: number, first: tfl.layers.Layer[] = []): tfl.Sequential {
  return withSeed(seed, () => {
    const model = tfl.sequential();
    for (const layer of first) model.add(layer);
    model.add(tfl.layers.dense({ units: hidden, inputShape: first.length ? undefined : [inputDim], name: `h_${seed}` }));
    model.add(tfl.layers.leakyReLU({ alpha: 0.2 }));
    model.add(tfl.layers.dense({ units: output }));
    return model;
  });
}

/** Endless 2-D Gaussian blobs in [-1, 1], a pure function of (seed, start). */
export function blobs(dim = 2): DataSource {
  return {
    name: 'blobs',
    elementShape: [dim],
    *batches({ batchSize, seed, start }) {
      for (let i = start; ; i++) {
        yield { x: tf.tidy(() => tf.clipByValue(tf.randomNormal([batchSize, dim], 0.3, 0.2, 'float32', seed + i), -1, 1)) };
      }
    },
  };
}

export function tinyTrainer(plugins: GantryPlugin[], options: Partial<TrainerOptions> = {}): Trainer {
  return new Trainer({
    generator: mlp(3, 8, 2, 1),
    discriminator: mlp(2, 8, 1, 2),
    data: blobs(),
    steps: 4,
    batchSize: 8,
    seed: 7,
    plugins,
    ...options,
  });
}

/** Runs a trainer and returns tf.memory().numTensors after each step. */
export async function trainCountingTensors(trainer: Trainer): Promise<number[]> {
  const counts: number[] = [];
  trainer.on('step:end', () => void counts.push(tf.memory().numTensors));
  await trainer.train();
  return counts;
}

/** Tensor counts must not grow once the first steps have created lazily built state (optimizer slots, copies). */
export function expectFlat(counts: number[], warmup = 2): void {
  const tail = counts.slice(warmup);
  if (tail.length < 2) throw new Error('need more steps to check memory');
  if (new Set(tail).size !== 1) throw new Error(`tensor count grows across steps: ${counts.join(', ')}`);
}

export const values = (t: tf.Tensor) => Array.from(t.dataSync());
export const weightValues = (model: tfl.LayersModel) => model.getWeights().map(values);
