import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '@gantry/engine';
import { loadMnistArrays } from '@gantry/datasets';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MNIST_CLASSIFIER_NAME, compareSets, extractFeatures, mnistExtractor, mnistImages, type FeatureExtractor } from '../src/index.js';

// The bundled classifier is a convnet: the wasm backend (XNNPACK) runs it ~30× faster than the cpu backend.
let extractor: FeatureExtractor;
beforeAll(async () => {
  await useBackend('wasm', { quiet: true, threads: 1 });
  extractor = await mnistExtractor();
});
afterAll(() => extractor.dispose());

describe('bundled MNIST classifier', () => {
  it('classifies ≥ 99% of the 10000 MNIST test images correctly', async () => {
    const { labels } = loadMnistArrays('test');
    let correct = 0;
    let seen = 0;
    for await (const batch of mnistImages('test').batches(1000)) {
      const predicted = tf.tidy(() => tf.argMax(extractor.classify!(batch), 1));
      const p = await predicted.data();
      for (let i = 0; i < p.length; i++) if (p[i] === labels[seen + i]) correct++;
      seen += p.length;
      tf.dispose([batch, predicted]);
    }
    expect(seen).toBe(10000);
    expect(correct / seen).toBeGreaterThanOrEqual(0.99);
  });

  it('gives 128-d non-negative penultimate features and records the resize', async () => {
    expect([extractor.name, extractor.dims, extractor.resize]).toEqual([MNIST_CLASSIFIER_NAME, 128, 'none (28×28)']);
    expect(extractor.resizeFor!([32, 32, 1])).toBe('bilinear to 28×28 (half-pixel centres)');
    expect(extractor.resizeFor!([28, 28, 3])).toBe('none (28×28), RGB to luma');
    const gray = mnistImages('test', 8).batches(8).next();
    const x = (await gray).value as tf.Tensor4D;
    const f = extractor.extract(x);
    expect(f.shape).toEqual([8, 128]);
    expect(Math.min(...f.dataSync())).toBeGreaterThanOrEqual(0);
    // Luma weights sum to 1, so a gray image copied to RGB gives the same features.
    const rgb = tf.tile(x, [1, 1, 1, 3]) as tf.Tensor4D;
    const g = extractor.extract(rgb);
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(f, g))).dataSync()[0]);
    expect(diff).toBeLessThan(1e-4);
    tf.dispose([x, f, rgb, g]);
  });

  it('puts two halves of the test set close together and a collapsed set far away', async () => {
    const before = tf.memory().numTensors;
    const a = await extractFeatures(mnistImages('test', 1000).batches(), extractor, { keepFeatures: true });
    const halfB = mnistImages('test', 2000);
    async function* secondHalf() {
      let i = 0;
      for await (const batch of halfB.batches(1000)) {
        if (i++ === 1) yield batch;
        else batch.dispose();
      }
    }
    const b = await extractFeatures(secondHalf(), extractor, { keepFeatures: true });
    // "Collapsed generator": 1000 copies of the first test image.
    async function* collapsed() {
      const first = (await mnistImages('test', 1).batches(1).next()).value as tf.Tensor4D;
      yield tf.tile(first, [1000, 1, 1, 1]) as tf.Tensor4D;
      first.dispose();
    }
    const c = await extractFeatures(collapsed(), extractor, { keepFeatures: true });
    const near = compareSets(a, b, { kid: { subsets: 10, subsetSize: 500 }, quiet: true });
    const far = compareSets(a, c, { kid: { subsets: 10, subsetSize: 500 }, quiet: true });
    expect(near.n_real).toBe(1000);
    expect(near.n_fake).toBe(1000);
    expect(far.fid).toBeGreaterThan(20 * near.fid);
    expect(far.kid!.value).toBeGreaterThan(20 * Math.abs(near.kid!.value));
    expect(tf.memory().numTensors).toBe(before);
  });
});
