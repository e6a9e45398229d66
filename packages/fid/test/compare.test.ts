import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  centerCrop,
  compareImageSets,
  featureMoments,
  formatReport,
  frechetDistance,
  parseImageSource,
  readNpy,
  reportJson,
  type FeatureExtractor,
  type ImageSet,
} from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'gantry-fid-compare-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** 4×4 average pooling of 28×28 gray images: 49 features, no network needed. */
const pooled: FeatureExtractor = {
  name: 'avgpool-4',
  dims: 49,
  resize: 'none (28×28)',
  extract: (images) => tf.tidy(() => tf.reshape(tf.avgPool(images, 4, 4, 'valid'), [images.shape[0], 49]) as tf.Tensor2D),
  dispose: () => undefined,
};

async function collect(set: ImageSet): Promise<Float32Array> {
  const parts: Float32Array[] = [];
  for await (const batch of set.batches(64)) {
    parts.push((await batch.data()) as Float32Array);
    batch.dispose();
  }
  return Float32Array.from(parts.flatMap((p) => Array.from(p)));
}

describe('image sources and compareImageSets', () => {
  it('parses mnist sources with counts and caps', () => {
    const a = parseImageSource('mnist:test:300');
    const b = parseImageSource('mnist:train', { n: 200 });
    expect(a.kind === 'images' && [a.set.count, a.set.label, a.set.imageShape]).toEqual([300, 'mnist:test (first 300 of 10000)', [28, 28, 1]]);
    expect(b.kind === 'images' && b.set.count).toBe(200);
    expect(() => parseImageSource('mnist:val')).toThrow(/unknown MNIST source "mnist:val"/);
    expect(() => parseImageSource(join(dir, 'missing'))).toThrow(/neither mnist:train\[:N\] \/ mnist:test\[:N\] nor a folder/);
    mkdirSync(join(dir, 'run'));
    writeFileSync(join(dir, 'run', 'config.json'), '{}');
    expect(parseImageSource(join(dir, 'run'), { n: 50 })).toEqual({ kind: 'run', dir: join(dir, 'run'), n: 50 });
  });

  it('refuses to score fewer images than asked for, and names a file that is not a PNG', () => {
    expect(() => parseImageSource('mnist:test:20000')).toThrow('mnist:test has 10000 images, not the 20000 asked for');
    const three = join(dir, 'three');
    mkdirSync(three);
    for (let i = 0; i < 3; i++) {
      const png = new PNG({ width: 4, height: 4 });
      writeFileSync(join(three, `${i}.png`), PNG.sync.write(png));
    }
    expect(() => parseImageSource(three, { n: 10 })).toThrow(`${three} has 3 PNGs, not the 10 asked for`);
    const notPng = join(dir, 'not-png');
    mkdirSync(notPng);
    writeFileSync(join(notPng, 'x.png'), 'just text\n');
    expect(() => parseImageSource(notPng)).toThrow(
      `${join(notPng, 'x.png')} is not a readable PNG image (unrecognised content at end of stream)`,
    );
  });

  it('reads a PNG folder to the same pixels it was written from', async () => {
    const mnistSet = parseImageSource('mnist:test:5');
    if (mnistSet.kind !== 'images') throw new Error('expected images');
    const pixels = await collect(mnistSet.set);
    mkdirSync(join(dir, 'pngs'));
    for (let i = 0; i < 5; i++) {
      const png = new PNG({ width: 28, height: 28 });
      for (let p = 0; p < 784; p++) {
        const v = Math.round((pixels[i * 784 + p] + 1) * 127.5);
        png.data.set([v, v, v, 255], p * 4);
      }
      writeFileSync(join(dir, 'pngs', `img-${i}.png`), PNG.sync.write(png));
    }
    const folder = parseImageSource(join(dir, 'pngs'));
    if (folder.kind !== 'images') throw new Error('expected images');
    expect(folder.set.count).toBe(5);
    const back = await collect(folder.set);
    let maxDiff = 0;
    for (let i = 0; i < back.length; i++) maxDiff = Math.max(maxDiff, Math.abs(back[i] - pixels[i]));
    expect(maxDiff).toBeLessThan(1e-5);
  });

  it('compares two MNIST sets, writes float32 feature files and reports N, extractor and resize', async () => {
    const real = parseImageSource('mnist:test:300');
    const fake = parseImageSource('mnist:train:200');
    if (real.kind !== 'images' || fake.kind !== 'images') throw new Error('expected images');
    const progress: string[] = [];
    const out = join(dir, 'features');
    const before = tf.memory().numTensors;
    const report = await compareImageSets(real.set, fake.set, {
      extractor: pooled,
      kid: { subsets: 5, subsetSize: 100 },
      prdc: true,
      featuresOut: out,
      batchSize: 128,
      onProgress: (which, done, total) => progress.push(`${which} ${done}/${total}`),
    });
    expect(tf.memory().numTensors).toBe(before);
    expect(progress).toEqual(['real 128/300', 'real 256/300', 'real 300/300', 'fake 128/200', 'fake 200/200']);
    const realNpy = readNpy(join(out, 'real.npy'));
    const fakeNpy = readNpy(join(out, 'fake.npy'));
    expect(realNpy.shape).toEqual([300, 49]);
    expect(fakeNpy.shape).toEqual([200, 49]);
    expect(realNpy.data).toBeInstanceOf(Float32Array);
    // The FID recomputed from the written features equals the reported one.
    const fd = frechetDistance(featureMoments(realNpy.data, 49), featureMoments(fakeNpy.data, 49));
    expect(report.fid).toBeCloseTo(fd.value, 10);
    expect(report.fid).toBeGreaterThan(0);
    const json = reportJson(report);
    expect(json).toMatchObject({ n_real: 300, n_fake: 200, dims: 49, extractor: 'avgpool-4', resize: 'none (28×28)' });
    expect(Object.keys(json)).toEqual(expect.arrayContaining(['fid', 'kid', 'n_real', 'n_fake', 'dims', 'extractor']));
    expect(formatReport(report)).toMatch(/FID \d+\.\d{4} {2}\(N real 300, N fake 200\)/);
    expect(formatReport(report)).toMatch(/KID .* \(5 subsets of 100; N real 300, N fake 200\)/);
  });
});

describe('centerCrop', () => {
  it('keeps the centre window of each image, for every batch, and frees the uncropped batches', async () => {
    // 3 images of 6×6×1 with pixel value = 100·image + 10·row + column.
    const values = (i: number) => Array.from({ length: 36 }, (_, k) => 100 * i + 10 * Math.floor(k / 6) + (k % 6));
    const source: ImageSet = {
      label: 'grid',
      count: 3,
      imageShape: [6, 6, 1],
      async *batches(batchSize = 2) {
        for (let start = 0; start < 3; start += batchSize) {
          const ids = [start, start + 1, start + 2].slice(0, Math.min(batchSize, 3 - start));
          yield tf.tensor4d(ids.flatMap(values), [ids.length, 6, 6, 1]);
        }
      },
    };
    const cropped = centerCrop(source, 4);
    expect(cropped.imageShape).toEqual([4, 4, 1]);
    expect(cropped.label).toBe('grid, centre 4×4 crop');
    const before = tf.memory().numTensors;
    const seen: number[][] = [];
    for await (const batch of cropped.batches(2)) {
      expect(batch.shape.slice(1)).toEqual([4, 4, 1]);
      seen.push(...(await batch.array()).map((img) => (img as number[][][]).flat(2)));
      batch.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
    // Rows and columns 1..4 of each image.
    const expected = (i: number) => [1, 2, 3, 4].flatMap((r) => [1, 2, 3, 4].map((c) => 100 * i + 10 * r + c));
    expect(seen).toEqual([expected(0), expected(1), expected(2)]);
    // Images no larger than the window pass through as the same set.
    expect(centerCrop(source, 6)).toBe(source);
    expect(() => centerCrop(source, 0)).toThrow('crop size must be a positive integer');
  });
});
