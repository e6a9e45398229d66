/**
 * Reference values of the bundled MNIST extractor, for the README:
 *   - MNIST test (10000) vs the first 10000 training images: what "as good as real data" looks like;
 *   - MNIST test vs a collapsed "generator": 10000 copies of one training image (index 0, a 5);
 *   - MNIST test vs a single class: the 5923 training zeros (a generator that only draws 0s);
 * with KID (100 subsets of 1000) and precision/recall/density/coverage.
 *
 *   npx tsx --conditions=@gantry/source packages/fid/bench/reference-values.ts
 */
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '@gantry/engine';
import { loadMnistArrays } from '@gantry/datasets';
import { compareSets, extractFeatures, mnistExtractor, mnistImages, type ExtractedSet } from '@gantry/fid';

await useBackend('wasm');
const extractor = await mnistExtractor();
const train = loadMnistArrays('train');

async function* fromIndices(indices: number[], batchSize = 500): AsyncGenerator<tf.Tensor4D> {
  for (let start = 0; start < indices.length; start += batchSize) {
    const chunk = indices.slice(start, start + batchSize);
    const x = new Float32Array(chunk.length * 784);
    chunk.forEach((k, b) => {
      for (let p = 0; p < 784; p++) x[b * 784 + p] = train.pixels[k * 784 + p] / 127.5 - 1;
    });
    yield tf.tensor4d(x, [chunk.length, 28, 28, 1]);
  }
}

const t0 = performance.now();
const test = await extractFeatures(mnistImages('test').batches(500), extractor, { keepFeatures: true });
const sets: [string, ExtractedSet][] = [
  ['MNIST train, first 10000', await extractFeatures(mnistImages('train', 10000).batches(500), extractor, { keepFeatures: true })],
  ['collapsed: 10000 copies of train[0]', await extractFeatures(fromIndices(new Array(10000).fill(0)), extractor, { keepFeatures: true })],
  [
    'one class: all 5923 training zeros',
    await extractFeatures(fromIndices([...Array(train.count).keys()].filter((i) => train.labels[i] === 0)), extractor, { keepFeatures: true }),
  ],
];
console.log(`features: ${((performance.now() - t0) / 1000).toFixed(1)} s for ${test.n + sets.reduce((s, [, x]) => s + x.n, 0)} images`);
for (const [label, set] of sets) {
  const t = performance.now();
  const r = compareSets(test, set, { kid: true, prdc: true, quiet: true });
  const p = r.prdc!;
  console.log(
    `MNIST test (N ${r.n_real}) vs ${label} (N ${r.n_fake}): FID ${r.fid.toFixed(3)}, KID ${r.kid!.value.toExponential(3)} ± ` +
      `${r.kid!.std.toExponential(1)}, precision ${p.precision.toFixed(3)}, recall ${p.recall.toFixed(3)}, density ` +
      `${p.density.toFixed(3)}, coverage ${p.coverage.toFixed(3)} [${r.extractor}, ${r.resize}] ` +
      `(${((performance.now() - t) / 1000).toFixed(1)} s)`,
  );
}
extractor.dispose();
