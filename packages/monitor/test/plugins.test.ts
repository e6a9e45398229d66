import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { Trainer, type GantryEvents } from '@gantry/core';
import { PNG } from 'pngjs';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { mountSmallDisk } from '../../../test-support/tmpfs.js';
import { htmlReport, metricsLog, progressBar, sampleGrid, tensorboard } from '../src/index.js';
import { parseMetricsLog } from '../src/metrics-file.js';
import { reportChartSpecs } from './report-specs.js';
import { imageSource, pointSource, tinyImageModels, tinyModels, useCpuBackend } from '@gantry/core/testing';
import { captureStream, tmpDir } from './helpers.js';

beforeAll(useCpuBackend);

/** Conditional G whose output ignores z: class k fills the image with v[k]; D sees image and label. */
function labelOnlyModels(values: number[]) {
  const z = tfl.input({ shape: [4] });
  const y = tfl.input({ shape: [values.length] });
  const dense = tfl.layers.dense({ units: 16, activation: 'tanh', useBias: false });
  const out = tfl.layers.reshape({ targetShape: [4, 4, 1] }).apply(dense.apply(tfl.layers.concatenate().apply([z, y]))) as tfl.SymbolicTensor;
  const generator = tfl.model({ inputs: [z, y], outputs: out });
  const kernel = new Float32Array((4 + values.length) * 16);
  values.forEach((v, k) => kernel.fill(Math.atanh(v), (4 + k) * 16, (5 + k) * 16));
  dense.setWeights([tf.tensor2d(kernel, [4 + values.length, 16])]);
  const x = tfl.input({ shape: [4, 4, 1] });
  const dy = tfl.input({ shape: [values.length] });
  const logits = tfl.layers.dense({ units: 1 }).apply(tfl.layers.concatenate().apply([tfl.layers.flatten().apply(x) as tfl.SymbolicTensor, dy])) as tfl.SymbolicTensor;
  return { generator, discriminator: tfl.model({ inputs: [x, dy], outputs: logits }) };
}

describe('sampleGrid', () => {
  it('cycles class labels by row for a conditional generator', async () => {
    const dir = tmpDir();
    const trainer = new Trainer({
      ...labelOnlyModels([-0.5, 0, 0.5]),
      data: imageSource({ numClasses: 3 }),
      steps: 2,
      batchSize: 6,
      optimizers: { generator: tf.train.sgd(0), discriminator: tf.train.sgd(0.1) },
      plugins: [sampleGrid({ dir, every: 1, count: 9 })],
    });
    const events: GantryEvents['monitor:samples'][] = [];
    trainer.on('monitor:samples', (e) => void events.push(e));
    await trainer.train();
    expect(events.map((e) => [e.step, e.kind, path.basename(e.file)])).toEqual([
      [1, 'grid', 'step-000001.png'],
      [2, 'grid', 'step-000002.png'],
    ]);
    const img = PNG.sync.read(fs.readFileSync(path.join(dir, 'step-000002.png')));
    expect([img.width, img.height]).toEqual([3 * 4 + 4 * 2, 3 * 4 + 4 * 2]);
    // Row r (y from 2 + 6r) holds class r: values -0.5, 0, 0.5 → bytes 64, 128, 191, in every column.
    for (const [row, byte] of [64, 128, 191].entries()) {
      for (let col = 0; col < 3; col++) {
        const x = 2 + col * 6 + 1;
        const y = 2 + row * 6 + 1;
        expect(img.data[(y * img.width + x) * 4]).toBe(byte);
      }
    }
  });

  it('one row per class by default: 3 classes give a 3×10 grid', async () => {
    const dir = tmpDir();
    const trainer = new Trainer({
      ...labelOnlyModels([-0.5, 0, 0.5]),
      data: imageSource({ numClasses: 3 }),
      steps: 1,
      batchSize: 6,
      optimizers: { generator: tf.train.sgd(0), discriminator: tf.train.sgd(0.1) },
      plugins: [sampleGrid({ dir, every: 1 })],
    });
    await trainer.train();
    const img = PNG.sync.read(fs.readFileSync(path.join(dir, 'step-000001.png')));
    expect([img.width, img.height]).toEqual([10 * 4 + 11 * 2, 3 * 4 + 4 * 2]);
    for (const [row, byte] of [64, 128, 191].entries()) {
      expect(img.data[((2 + row * 6 + 1) * img.width + 2 + 9 * 6 + 1) * 4]).toBe(byte);
    }
  });

  it('draws 2-D data as a scatter plot and leaves no tensors behind', async () => {
    const dir = tmpDir();
    const trainer = new Trainer({ ...tinyModels(), data: pointSource(), steps: 10, batchSize: 16, plugins: [sampleGrid({ dir, every: 5 })] });
    const kinds: string[] = [];
    const counts: number[] = [];
    trainer.on('monitor:samples', (e) => void kinds.push(e.kind));
    trainer.on('step:end', () => void counts.push(tf.memory().numTensors));
    await trainer.train();
    expect(kinds).toEqual(['scatter', 'scatter']);
    expect(new Set(counts.slice(1)).size).toBe(1);
    const img = PNG.sync.read(fs.readFileSync(path.join(dir, 'step-000010.png')));
    expect([img.width, img.height]).toEqual([384, 384]);
  });

  it('writes a final grid when the run ends between sampling steps', async () => {
    const dir = tmpDir();
    const trainer = new Trainer({ ...tinyImageModels(), data: imageSource(), steps: 7, batchSize: 8, plugins: [sampleGrid({ dir, every: 5 })] });
    await trainer.train();
    expect(fs.readdirSync(dir).sort()).toEqual(['step-000005.png', 'step-000007.png']);
  });
});

describe('metricsLog', () => {
  it('appends across a resume without losing rows; readers keep the latest row of a step', async () => {
    const runDir = tmpDir();
    const file = path.join(runDir, 'metrics.jsonl');
    const ckpt = path.join(runDir, 'checkpoints');
    const first = new Trainer({
      ...tinyImageModels(),
      data: imageSource(),
      steps: 6,
      batchSize: 8,
      checkpoint: { dir: ckpt, every: 3 },
      plugins: [metricsLog({ file })],
    });
    await first.train();
    const resumed = new Trainer({ ...tinyImageModels(), data: imageSource(), steps: 8, batchSize: 8, plugins: [metricsLog({ file })] });
    await resumed.restore(path.join(ckpt, 'step-000003'));
    await resumed.train();
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6, 4, 5, 6, 7, 8]);
    expect(lines.every((r) => typeof r.time === 'number' && typeof r.d_loss === 'number')).toBe(true);
    const log = parseMetricsLog(fs.readFileSync(file, 'utf8'));
    expect(log.steps.map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(log.steps[3].d_loss).toBe(lines[6].d_loss);
  });

  it('rejects unknown options and a bad interval', () => {
    expect(() => metricsLog({ file: 'x', evry: 2 } as never)).toThrow(/Unknown option "evry"/);
    expect(() => metricsLog({ file: 'x', every: 0 })).toThrow(/positive integer/);
  });
});

describe('progressBar', () => {
  it('draws a live bar on a terminal and prints alerts above it', async () => {
    const stream = captureStream(true);
    const trainer = new Trainer({ ...tinyImageModels(), data: imageSource(), steps: 10, batchSize: 8, plugins: [progressBar({ stream })] });
    trainer.on('step:end', ({ step }) =>
      step === 4 ? trainer.bus.emit('alert', { step, kind: 'test_alert', severity: 'warning', message: 'look here' }) : undefined,
    );
    await trainer.train();
    const out = stream.text();
    expect(out).toMatch(/10\/10 \| [\d.]+ it\/s \| ETA \S+ \| D [\d.]+ G [\d.]+/);
    expect(out).toContain('[warning] test_alert at step 4: look here');
    expect(out).toMatch(/done: 10 steps in \d+s \(step 10\/10\)/);
  });

  it('prints plain lines every N steps in quiet mode', async () => {
    const stream = captureStream(false);
    const trainer = new Trainer({ ...tinyImageModels(), data: imageSource(), steps: 10, batchSize: 8, plugins: [progressBar({ stream, every: 4 })] });
    await trainer.train();
    const lines = stream.text().trim().split('\n');
    expect(lines[0]).toBe('training: steps 1..10');
    expect(lines.slice(1, -1).map((l) => /^step (\d+)\/10/.exec(l)?.[1])).toEqual(['4', '8', '10']);
    expect(lines[1]).toMatch(/^step 4\/10 \(40%\) \| [\d.]+ it\/s \| ETA \S+ \| D \d\.\d{4} G \d\.\d{4}$/);
  });
});

describe('tensorboard and htmlReport plugins', () => {
  it('a TensorBoard folder that cannot be created becomes a warning, not a failed run', async () => {
    const notADir = path.join(tmpDir(), 'file');
    fs.writeFileSync(notADir, 'x');
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const trainer = new Trainer({ ...tinyImageModels(), data: imageSource(), steps: 3, batchSize: 8, plugins: [tensorboard({ dir: path.join(notADir, 'tb') })] });
      await expect(trainer.train()).resolves.toMatchObject({ steps: 3 });
      expect(warn.mock.calls.map((c) => String(c[0])).join('\n')).toMatch(/tensorboard: cannot create an event file/);
    } finally {
      warn.mockRestore();
    }
  });

  it('htmlReport alone charts the rows it saw when there is no metrics file', async () => {
    const dir = tmpDir();
    const trainer = new Trainer({ ...tinyImageModels(), data: imageSource(), steps: 12, batchSize: 8, plugins: [htmlReport({ dir, every: 5 })] });
    const writes: number[] = [];
    trainer.on('step:end', ({ step }) => void (fs.existsSync(path.join(dir, 'report.html')) && writes.push(step)));
    await trainer.train();
    expect(writes[0]).toBe(5);
    const html = fs.readFileSync(path.join(dir, 'report.html'), 'utf8');
    const losses = reportChartSpecs(html).losses.series;
    expect(losses.map((s) => [s.key, s.points.map(([step]) => step)])).toEqual(
      ['d_loss', 'g_loss'].map((key) => [key, Array.from({ length: 12 }, (_, i) => i + 1)]),
    );
  });
});

describe('a full disk', () => {
  it('a metrics row names metrics.jsonl and its size and is not torn; the report leaves no temporary file behind', async (ctx) => {
    const disk = mountSmallDisk('256k', ctx);
    const file = path.join(disk.path, 'metrics.jsonl');
    const trainer = new Trainer({
      ...tinyImageModels(),
      data: imageSource(),
      // Rows fill the file's last 4 KiB page after the disk is full; a few dozen cross into the next.
      steps: 100,
      batchSize: 8,
      plugins: [metricsLog({ file }), htmlReport({ dir: disk.path, every: 0 })],
    });
    trainer.on('step:end', ({ step }) => {
      if (step === 2) fs.writeFileSync(path.join(disk.path, 'filler'), Buffer.alloc(fs.statfsSync(disk.path).bavail * fs.statfsSync(disk.path).bsize));
    });
    const warnings: string[] = [];
    const warn = vi.spyOn(console, 'warn').mockImplementation((line) => void warnings.push(String(line)));
    const error = (await trainer.train().catch((e: unknown) => e)) as Error;
    warn.mockRestore();
    expect(error.message).toMatch(
      new RegExp(`^plugin "metrics-log" failed in listener "step:end": Disk full: could not write ${file} \\(the row needs \\d+ bytes\\)$`),
    );
    const steps = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l).step);
    expect(steps).toEqual(Array.from({ length: steps.length }, (_, i) => i + 1));
    expect(steps.length).toBeGreaterThan(2);
    expect(steps.length).toBeLessThan(100);
    expect(warnings).toEqual(['htmlReport: could not write the report: ENOSPC: no space left on device, write']);
    expect(fs.readdirSync(disk.path).sort()).toEqual(['filler', 'metrics.jsonl']);
  });
});
