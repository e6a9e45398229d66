import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PNG } from 'pngjs';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it, vi } from 'vitest';
import { Rng, Trainer, decodeNpy, definePlugin, readModelArtifacts } from '@gantry/core';
import { lossTrace } from '@gantry/core/testing';
import { builtinExperiment, sample, train } from '../src/index.js';
import { buildForRun } from '../src/run-config.js';

/** Runs TypeScript sources in a plain node process, resolving Gantry packages to their sources. */
const nodeTs = ['--import', 'tsx/esm', '--conditions=@gantry/source'];
const tmp = () => mkdtemp(join(tmpdir(), 'gantry-cli-'));
const quiet = { backend: 'cpu', quiet: true, batch: 32 } as const;

async function metrics(runDir: string): Promise<Record<string, number>[]> {
  const text = await readFile(join(runDir, 'metrics.jsonl'), 'utf8');
  return text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((r) => r.kind === undefined || r.kind === 'step');
}

describe('gantry train', () => {
  it('writes a run folder: config, metrics rows per step, samples, checkpoints', async () => {
    const out = join(await tmp(), 'run');
    await train('ring-gan', { ...quiet, steps: 4, out, checkpointEvery: 2, sampleEvery: 2 });
    const config = JSON.parse(await readFile(join(out, 'config.json'), 'utf8'));
    expect(config).toMatchObject({ experiment: 'ring-gan', steps: 4, batchSize: 32, seed: 0, backend: 'cpu', loss: 'non-saturating' });
    const rows = await metrics(out);
    expect(rows.map((r) => r.step)).toEqual([1, 2, 3, 4]);
    // The same run through the library alone (the experiment's build, seed 0, batch 32, on the backend the command
    // set): metrics.jsonl holds its losses bit for bit. The monitor plugins the command adds change no number.
    const build = () => buildForRun(builtinExperiment('ring-gan'), { seed: 0, batchSize: 32, steps: 4 });
    // A spy keeps step 1's real and generated batch (it draws nothing, so it changes no number).
    let step1: { real: tf.Tensor; fake: tf.Tensor } | undefined;
    const spy = definePlugin({
      name: 'spy',
      hooks: { lossTerms: { once: 1, phase: 'D', handler: ({ real, fake }) => void (step1 = { real: tf.keep(tf.clone(real)), fake: tf.keep(tf.clone(fake)) }) } },
    });
    const library = await lossTrace(new Trainer({ ...(await build()), steps: 4, batchSize: 32, seed: 0, plugins: [spy] }));
    expect(rows.map((r) => [r.d_loss, r.g_loss])).toEqual(library);
    // Step 1's d_loss in float64 from the untrained D (built again from the seed) on that step's batches:
    // E softplus(−D(x)) + E softplus(D(G(z))), the non-saturating critic loss.
    const { discriminator } = await build();
    const logits = (x: tf.Tensor) => Array.from((discriminator.predict(x) as tf.Tensor).dataSync());
    const softplus = (v: number) => Math.log1p(Math.exp(v));
    const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
    const expected = mean(logits(step1!.real).map((l) => softplus(-l))) + mean(logits(step1!.fake).map(softplus));
    expect(Math.abs(rows[0].d_loss - expected)).toBeLessThan(1e-6);
    expect(await readdir(join(out, 'samples'))).toEqual(expect.arrayContaining(['step-000002.png', 'step-000004.png']));
    expect((await readFile(join(out, 'checkpoints', 'latest'), 'utf8')).trim()).toBe('step-000004');
  });

  it('--resume continues exactly: the resumed rows equal an uninterrupted run', async () => {
    const root = await tmp();
    const whole = join(root, 'whole');
    const part = join(root, 'part');
    await train('ring-gan', { ...quiet, steps: 6, out: whole, checkpointEvery: 3 });
    await train('ring-gan', { ...quiet, steps: 3, out: part, checkpointEvery: 3 });
    // The checkpoint interval may change on resume (it does not change the training): 3 → 2 adds step 4's checkpoint.
    await train(undefined, { backend: 'cpu', quiet: true, resume: part, steps: 6, checkpointEvery: 2 });
    const a = (await metrics(whole)).map((r) => [r.step, r.d_loss, r.g_loss]);
    const b = (await metrics(part)).map((r) => [r.step, r.d_loss, r.g_loss]);
    expect(b).toEqual(a);
    expect((await readdir(join(part, 'checkpoints'))).filter((f) => f.startsWith('step-')).sort()).toEqual([
      'step-000003',
      'step-000004',
      'step-000006',
    ]);
  });

  it('--resume keeps the backend the run trained on; another one continues it with a one-line note', async () => {
    const root = await tmp();
    const whole = join(root, 'whole');
    const part = join(root, 'part');
    await train('ring-gan', { ...quiet, steps: 4, out: whole, checkpointEvery: 2 });
    await train('ring-gan', { ...quiet, steps: 2, out: part, checkpointEvery: 1 });
    const errors = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      // No --backend: cpu again (auto would choose tensorflow or wasm here), exactly, and nothing to say.
      await train(undefined, { quiet: true, batch: 32, resume: part, steps: 3 });
      expect(errors).not.toHaveBeenCalled();
      expect(JSON.parse(await readFile(join(part, 'config.json'), 'utf8'))).toMatchObject({ backend: 'cpu', graphSteps: false });
      await train(undefined, { backend: 'wasm', quiet: true, resume: part, steps: 4 });
      expect(errors.mock.calls.map((args) => args.join(' '))).toEqual([
        'gantry: the run trained on cpu; continuing on wasm (FMA convolution) computes the same steps to float32 rounding, not bit for bit',
      ]);
    } finally {
      errors.mockRestore();
    }
    const a = (await metrics(whole)).map((r) => [r.d_loss, r.g_loss]);
    const b = (await metrics(part)).map((r) => [r.d_loss, r.g_loss]);
    expect(b.slice(0, 3)).toEqual(a.slice(0, 3));
    // Step 4 ran on wasm: the same step to float32 rounding (a wrong checkpoint would be off by far more).
    b[3].forEach((loss, i) => expect(Math.abs(loss - a[3][i])).toBeLessThan(1e-4 * Math.max(1, Math.abs(a[3][i]))));
    expect(JSON.parse(await readFile(join(part, 'config.json'), 'utf8')).backend).toBe('wasm');
  });

  it("--resume on wasm names a change of convolution (the FMA kernel or XNNPACK's, recorded in config.json)", async () => {
    const part = join(await tmp(), 'part');
    await train('ring-gan', { ...quiet, backend: 'wasm', steps: 1, out: part, checkpointEvery: 1 });
    const configFile = join(part, 'config.json');
    const saved = JSON.parse(await readFile(configFile, 'utf8'));
    expect(saved).toMatchObject({ backend: 'wasm', wasmConvolution: 'fma' });
    const errors = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      // The same convolution: nothing to say.
      await train(undefined, { quiet: true, resume: part, steps: 2 });
      expect(errors).not.toHaveBeenCalled();
      // A run from before the convolution was recorded trained on XNNPACK's.
      const { wasmConvolution: _, ...older } = JSON.parse(await readFile(configFile, 'utf8'));
      await writeFile(configFile, JSON.stringify(older));
      await train(undefined, { quiet: true, resume: part, steps: 3 });
      expect(errors.mock.calls.map((args) => args.join(' '))).toEqual([
        "gantry: the run trained on wasm (XNNPACK's convolution); continuing on wasm (FMA convolution) computes the same steps to float32 rounding, not bit for bit",
      ]);
      await writeFile(configFile, JSON.stringify({ ...older, wasmConvolution: 'avx' }));
      await expect(train(undefined, { quiet: true, resume: part, steps: 4 })).rejects.toThrow(
        /config\.json is damaged: "wasmConvolution" must be "fma" or "xnnpack", not "avx"/,
      );
    } finally {
      errors.mockRestore();
    }
  });

  it('--fast-normals: recorded in config.json, other latents than the default, kept and exact on resume', async () => {
    const root = await tmp();
    const [whole, part, plain] = ['whole', 'part', 'plain'].map((name) => join(root, name));
    await train('ring-gan', { ...quiet, steps: 3, out: whole, fastNormals: true });
    await train('ring-gan', { ...quiet, steps: 3, out: plain });
    await train('ring-gan', { ...quiet, steps: 2, out: part, checkpointEvery: 1, fastNormals: true });
    expect(JSON.parse(await readFile(join(whole, 'config.json'), 'utf8')).normalGenerator).toBe('fast');
    expect(JSON.parse(await readFile(join(plain, 'config.json'), 'utf8')).normalGenerator).toBe('tfjs');
    await train(undefined, { backend: 'cpu', quiet: true, resume: part, steps: 3 });
    const rows = async (dir: string) => (await metrics(dir)).map((r) => [r.d_loss, r.g_loss]);
    expect(await rows(part)).toEqual(await rows(whole));
    // Step 1 already differs: its fake batch comes from other latents.
    expect((await rows(plain))[0]).not.toEqual((await rows(whole))[0]);
    await expect(train(undefined, { backend: 'cpu', quiet: true, resume: plain, steps: 4, fastNormals: true })).rejects.toThrow(
      '--fast-normals: the run draws its latents with the "tfjs" generator; a resumed run keeps its settings',
    );
  });

  it('--xla: one line when there is nothing for it to compile', async () => {
    const out = join(await tmp(), 'run');
    await expect(train('ring-gan', { ...quiet, steps: 1, out, xla: true, graph: false })).rejects.toThrow(
      '--xla compiles the steps that run as TensorFlow graphs; it does nothing with --no-graph',
    );
    await expect(train('ring-gan', { ...quiet, steps: 1, out, xla: true })).rejects.toThrow(
      'useBackend: xla compiles TensorFlow graphs and needs the tensorflow backend, not cpu',
    );
    expect(existsSync(out)).toBe(false);
  });

  it('refuses a resume that changes the seed, with one clear line', async () => {
    const out = join(await tmp(), 'run');
    await train('ring-gan', { ...quiet, steps: 1, out });
    await expect(train(undefined, { backend: 'cpu', quiet: true, resume: out, seed: 5 })).rejects.toThrow(
      "--seed 5 differs from the run's seed 0; a resumed run keeps its settings",
    );
  });

  it('--max-weight-norm stops a run whose weights pass it, before any checkpoint; config.json records the limit', async () => {
    const out = join(await tmp(), 'run');
    // ring-gan's initial generator weights alone have an L2 norm far above 1.
    await expect(train('ring-gan', { ...quiet, steps: 3, out, maxWeightNorm: 1 })).rejects.toThrow(
      /^Weights diverged at step 1: the generator's weight norm is \d\.\d{3}e\+1, above maxWeightNorm 1\. Training stopped before checkpointing it; no checkpoint was written yet$/,
    );
    expect(existsSync(join(out, 'checkpoints', 'latest'))).toBe(false);
    expect(JSON.parse(await readFile(join(out, 'config.json'), 'utf8')).maxWeightNorm).toBe(1);
  });

  it('names the known experiments when one is unknown', async () => {
    await expect(train('mnist-dcgann', { ...quiet, steps: 1 })).rejects.toThrow('Unknown experiment "mnist-dcgann" (built-in: ');
  });
});

describe('gantry sample', () => {
  it('writes float32 .npy samples for vector data from the latest checkpoint', async () => {
    const root = await tmp();
    const out = join(root, 'run');
    await train('ring-gan', { ...quiet, steps: 2, out });
    const file = await sample(out, { n: 50, out: join(root, 'points.npy'), seed: 1, backend: 'cpu', quiet: true });
    const { data, shape } = decodeNpy(new Uint8Array(await readFile(file)));
    expect(shape).toEqual([50, 2]);
    // Independent reference: the checkpoint's generator loaded by tfjs itself, applied to z ~ N(0, 1) drawn with the
    // first seed of Rng(--seed); ring-gan's latent is 256-D.
    const generator = await tfl.loadLayersModel(tf.io.fromMemory(await readModelArtifacts(join(out, 'checkpoints', 'step-000002', 'generator'))));
    const z = tf.randomNormal([50, 256], 0, 1, 'float32', new Rng(1).nextSeed());
    const expected = generator.predict(z) as tf.Tensor;
    expect(Array.from(data)).toEqual(Array.from(expected.dataSync()));
    tf.dispose([z, expected]);
    generator.dispose();
    // Same seed, same samples.
    const again = await sample(out, { n: 50, out: join(root, 'again.npy'), seed: 1, backend: 'cpu', quiet: true });
    expect(Array.from(decodeNpy(new Uint8Array(await readFile(again))).data)).toEqual(Array.from(data));
  });
});

describe('gantry sample, conditional runs', () => {
  const fixture = resolve(__dirname, 'fixtures/label-only-experiment.ts');
  /** Pixel (x, y) of a grayscale grid PNG, as the byte written. */
  const pixel = (png: PNG, x: number, y: number) => png.data[(y * png.width + x) * 4];

  it('one row per class by default, one class with --class K; bad classes get one line', async () => {
    const root = await tmp();
    const out = join(root, 'run');
    await train(fixture, { backend: 'cpu', quiet: true, out });
    // 9 samples of 3 classes: 3 per row; class values −0.5, 0, 0.5 are written as bytes 64, 128, 191.
    const rows = PNG.sync.read(await readFile(await sample(out, { n: 9, out: join(root, 'rows.png'), seed: 0, backend: 'cpu', quiet: true })));
    expect([rows.width, rows.height]).toEqual([3 * 4 + 4 * 2, 3 * 4 + 4 * 2]);
    for (const [row, byte] of [64, 128, 191].entries()) {
      for (let col = 0; col < 3; col++) expect(pixel(rows, 2 + col * 6 + 1, 2 + row * 6 + 1)).toBe(byte);
    }
    const one = PNG.sync.read(await readFile(await sample(out, { n: 4, out: join(root, 'two.png'), seed: 0, backend: 'cpu', quiet: true, class: 2 })));
    for (let k = 0; k < 4; k++) expect(pixel(one, 2 + (k % 2) * 6 + 1, 2 + Math.floor(k / 2) * 6 + 1)).toBe(191);
    await expect(sample(out, { n: 4, out: join(root, 'x.png'), seed: 0, backend: 'cpu', quiet: true, class: 3 })).rejects.toThrow(
      '--class 3 is out of range: the run has classes 0–2',
    );
    const ring = join(root, 'ring');
    await train('ring-gan', { ...quiet, steps: 1, out: ring });
    await expect(sample(ring, { n: 4, out: join(root, 'r.npy'), seed: 0, backend: 'cpu', quiet: true, class: 0 })).rejects.toThrow(
      /--class needs a conditional run/,
    );
  });
});

describe('the gantry binary', () => {
  it('on SIGINT finishes the step, writes a checkpoint and exits 0, also when the signal comes twice at once', async () => {
    const out = join(await tmp(), 'run');
    const bin = resolve(__dirname, '../src/bin.ts');
    // node itself (not the tsx wrapper); the test sends the signal twice, 100 ms apart, as one Ctrl-C under `npm start`
    // arrives (from the terminal and relayed by npm/tsx): that is still one interruption, not "again to abort".
    const child = spawn(process.execPath, [...nodeTs, bin, 'train', 'ring-gan', '--steps', '100000', '--batch', '16', '--backend', 'cpu', '--quiet', '--out', out], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    // Interrupt once training has visibly started.
    await new Promise<void>((done) => {
      const timer = setInterval(() => {
        if (existsSync(join(out, 'metrics.jsonl'))) {
          clearInterval(timer);
          child.kill('SIGINT');
          setTimeout(() => {
            child.kill('SIGINT');
            done();
          }, 100);
        }
      }, 100);
    });
    const code = await new Promise<number | null>((done) => child.on('exit', done));
    expect(code, output).toBe(0);
    expect(output).toContain('SIGINT: finishing this step and writing a checkpoint');
    const latest = (await readFile(join(out, 'checkpoints', 'latest'), 'utf8')).trim();
    expect(latest).toMatch(/^step-\d{6}$/);
  }, 120_000);

  it('prints one line for a bad flag', async () => {
    const bin = resolve(__dirname, '../src/bin.ts');
    const child = spawn(process.execPath, [...nodeTs, bin, 'train', 'ring-gan', '--steps', 'many'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const code = await new Promise<number | null>((done) => child.on('exit', done));
    expect(code).not.toBe(0);
    expect(err).toContain("error: option '--steps <n>' argument 'many' is invalid. --steps must be a positive integer");
  }, 60_000);
});
