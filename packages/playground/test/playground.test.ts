import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { ViteDevServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Trainer, readModelArtifacts } from '@gantry/core';
import { useBackend } from '@gantry/engine';
import { buildExperiment, builtinExperiment } from '@gantry/cli/experiments';
import { mnist } from '@gantry/datasets';
import { diagnostics } from '@gantry/monitor';
import { chromiumWebGl2Renderer, collectPageErrors, hasChromium, launchChromium } from '../../../test-support/chromium.js';
import {
  PLAYGROUND_ROOT,
  byTestId,
  currentStep,
  flipStoredWeightBit,
  indexedDbModels,
  inkedPixels,
  pageHistory,
  startPlayground,
  startTraining,
  textOf,
  waitForIdle,
  waitForStep,
} from './page.js';

/** The README's screenshot; `GANTRY_SCREENSHOT=1 npm test -w @gantry/playground` rewrites it (else it goes to tmp). */
const SCREENSHOT = process.env.GANTRY_SCREENSHOT === '1' ? join(PLAYGROUND_ROOT, 'playground.png') : join(tmpdir(), 'gantry-playground.png');

/**
 * Per-step scalars of a built-in experiment (seed 0, the page's plugins) trained in Node on wasm for `steps` steps at
 * `batchSize`, with checkpoints into `checkpoints` every `checkpointEvery` steps when given.
 */
async function experimentInNode(
  name: string,
  batchSize: number,
  steps: number,
  checkpoints?: { dir: string; every: number },
): Promise<{ scalars: Record<string, number>[]; trainer: Trainer }> {
  await useBackend('wasm', { quiet: true });
  const setup = await buildExperiment(builtinExperiment(name), { seed: 0, batchSize, steps, mnist });
  const trainer = new Trainer({
    ...setup,
    steps,
    batchSize,
    seed: 0,
    plugins: [...(setup.plugins ?? []), diagnostics()],
    checkpoint: checkpoints ? { ...checkpoints, keep: 0 } : undefined,
  });
  const scalars: Record<string, number>[] = [];
  trainer.on('step:end', (event) => void scalars.push(event.scalars));
  await trainer.train();
  return { scalars, trainer };
}

/** ring-gan's per-step scalars as the page runs it (batch 512). */
const ringGanInNode = async (steps: number, checkpoints?: { dir: string; every: number }) =>
  (await experimentInNode('ring-gan', 512, steps, checkpoints)).scalars;

/** Steps of the page's run compared with Node's, loss for loss, bit for bit. */
const NODE_STEPS = 10;
/** WebGL 2 in headless Chromium: SwiftShader (a CPU implementation) where Debian's Chromium has it. */
const webGlRenderer = await chromiumWebGl2Renderer();
const hasWebGl = webGlRenderer !== undefined;

/** ring-gan steps on WebGL: SwiftShader runs WebGL on the CPU, slower than wasm. */
const WEBGL_STEPS = 100;

describe.skipIf(!hasChromium)('the playground in headless Chromium (needs /usr/bin/chromium)', () => {
  let server: ViteDevServer;
  let url: string;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let errors: string[];
  /** The page's uninterrupted 120-step ring-gan run. */
  let uninterrupted: { step: number; scalars: Record<string, number> }[] = [];

  beforeAll(async () => {
    ({ server, url } = await startPlayground());
    browser = await launchChromium();
    context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 760 } });
    page = await context.newPage();
    errors = collectPageErrors(page);
    await page.goto(url);
  }, 300_000);

  /** The page in a new browser profile (no IndexedDB checkpoints, no saved settings), collecting its errors. */
  async function freshTab(): Promise<{ fresh: BrowserContext; tab: Page; tabErrors: string[] }> {
    const fresh = await browser.newContext({ viewport: { width: 1280, height: 760 } });
    const tab = await fresh.newPage();
    const tabErrors = collectPageErrors(tab);
    await tab.goto(url);
    return { fresh, tab, tabErrors };
  }

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('lists the experiments and the backends this browser has', async () => {
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="backend"] option').length > 0);
    const experiments = await page.locator(`${byTestId('experiment')} option`).allTextContents();
    expect(experiments).toEqual(
      expect.arrayContaining(['ring-gan', 'mnist-dcgan', 'mnist-wgan-gp', 'mnist-cgan', 'mnist-r3gan', 'mnist-limited', 'mnist-limited-ada', 'mnist-limited-diffaugment']),
    );
    const backends = await page.locator(`${byTestId('backend')} option`).allTextContents();
    expect(backends.at(-1)).toBe('wasm');
    // WebGL where headless Chromium has a WebGL 2 context (SwiftShader with launchChromium's flags).
    expect(backends.includes('webgl')).toBe(hasWebGl);
  });

  it('trains ring-gan on wasm: finite losses every step, charts and scatter drawn, same losses as Node', async () => {
    await startTraining(page, { experiment: 'ring-gan', backend: 'wasm', steps: 120 });
    await waitForStep(page, 120);
    expect(await waitForIdle(page)).toBe('Done at step 120');
    const history = await pageHistory(page);
    expect(history.map((h) => h.step)).toEqual(Array.from({ length: 120 }, (_, i) => i + 1));
    for (const { scalars } of history) {
      expect(Number.isFinite(scalars.d_loss) && Number.isFinite(scalars.g_loss)).toBe(true);
    }
    expect(Number(await textOf(page, 'd-loss'))).toBeCloseTo(history[119].scalars.d_loss, 4);
    expect(Number(await textOf(page, 'g-loss'))).toBeCloseTo(history[119].scalars.g_loss, 4);
    // Two charts with two curves each at least, and 1024 samples in the scatter.
    expect(await inkedPixels(page, 'loss-chart')).toBeGreaterThan(1000);
    expect(await inkedPixels(page, 'grad-chart')).toBeGreaterThan(1000);
    expect(await inkedPixels(page, 'samples')).toBeGreaterThan(500);
    expect(await textOf(page, 'modes')).toMatch(/^\d of 8 modes covered at step 120$/);
    await page.screenshot({ path: SCREENSHOT });

    uninterrupted = history;

    // The same experiment, seed and backend in Node gives the same losses, bit for bit.
    const node = await ringGanInNode(NODE_STEPS);
    const losses = (rows: Record<string, number>[]) => rows.map(({ d_loss, g_loss }) => ({ d_loss, g_loss }));
    expect(losses(history.slice(0, NODE_STEPS).map((h) => h.scalars))).toEqual(losses(node));
  });

  it('downloads a generator that tf.loadLayersModel loads in Node and that reproduces the page samples', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gantry-download-'));
    const files = new Map<string, string>();
    page.on('download', (download) => {
      const file = join(dir, download.suggestedFilename());
      files.set(download.suggestedFilename(), file);
      void download.saveAs(file);
    });
    await page.click(byTestId('download-generator'));
    await expect.poll(() => files.size, { timeout: 30_000 }).toBe(2);
    expect([...files.keys()].sort()).toEqual(['model.json', 'model.weights.bin']);
    const { noise, values, shape } = await page.evaluate(async () => {
      const s = await (window as any).gantry.samples();
      return { noise: Array.from(s.noise as Float32Array), values: Array.from(s.values as Float32Array), shape: s.shape as number[] };
    });
    await expect.poll(async () => (await readModelArtifacts(dir).catch(() => undefined))?.weightData !== undefined).toBe(true);
    await useBackend('wasm', { quiet: true });
    const model = await tfl.loadLayersModel(tf.io.fromMemory(await readModelArtifacts(dir)));
    const z = tf.tensor2d(noise, [shape[0], noise.length / shape[0]]);
    const out = model.predict(z) as tf.Tensor;
    const node = await out.data();
    let worst = 0;
    for (let i = 0; i < values.length; i++) worst = Math.max(worst, Math.abs(node[i] - values[i]));
    expect(node.length).toBe(values.length);
    expect(worst).toBeLessThan(1e-5);
    tf.dispose([z, out]);
    model.dispose();
  });

  it('checks IndexedDB checkpoints against their SHA-256 manifest: a damaged newest one is passed over, and the run resumes bit for bit from the newest intact one', async () => {
    // The uninterrupted run above checkpointed at steps 100 and 120, each with a manifest of its parts.
    const prefix = 'gantry-playground/ring-gan';
    const stored = await indexedDbModels(page);
    for (const step of ['step-000100', 'step-000120']) {
      expect(stored).toEqual(expect.arrayContaining(['generator', 'discriminator', 'state', 'manifest'].map((part) => `${prefix}/${step}/${part}`)));
    }
    await flipStoredWeightBit(page, `${prefix}/step-000120/generator`);

    await page.reload();
    await page.waitForFunction(() => document.querySelector('[data-testid="start"]')?.textContent === 'Resume');
    await page.selectOption(byTestId('backend'), 'wasm');
    await page.fill(byTestId('steps'), '125');
    await page.click(byTestId('start'));
    expect(await waitForIdle(page)).toBe('Done at step 125');
    expect(await page.locator(`${byTestId('alerts')} li.warning`).allTextContents()).toEqual([
      `Checkpoint indexeddb://${prefix}/step-000120 is damaged (indexeddb://${prefix}/step-000120/generator does not match its checksum); ` +
        `using indexeddb://${prefix}/step-000100, the newest intact one`,
    ]);
    const resumed = await pageHistory(page);
    expect(resumed[0].step).toBe(101);
    expect(resumed.slice(0, 20).map(({ step, scalars }) => ({ step, scalars }))).toEqual(uninterrupted.slice(100).map(({ step, scalars }) => ({ step, scalars })));
  });

  it('New run forgets the stored run (checkpoints 100, 120, 125 above) and trains from step 1 with the first run\'s losses', async () => {
    const prefix = 'gantry-playground/ring-gan';
    expect(await page.textContent(byTestId('start'))).toBe('Resume');
    await page.fill(byTestId('steps'), '5');
    await page.click(byTestId('new-run'));
    expect(await waitForIdle(page)).toBe('Done at step 5');
    const history = await pageHistory(page);
    expect(history.map(({ step, scalars }) => ({ step, scalars }))).toEqual(uninterrupted.slice(0, 5).map(({ step, scalars }) => ({ step, scalars })));
    // Only the new run is stored: its final checkpoint and the pointer to it.
    const stored = (await indexedDbModels(page)).filter((key) => key.startsWith(`${prefix}/`));
    expect(stored.filter((key) => !key.startsWith(`${prefix}/step-000005/`)).sort()).toEqual([`${prefix}/latest`]);
    expect(stored).toEqual(expect.arrayContaining(['generator', 'discriminator', 'state', 'manifest'].map((part) => `${prefix}/step-000005/${part}`)));
    expect(await page.locator(`${byTestId('alerts')} li`).count()).toBe(0);
  });

  it('pauses, and after a reload resumes from IndexedDB at the saved step with the uninterrupted run\'s losses', async () => {
    // A fresh browser profile (nothing stored), the same experiment, seed and length as the uninterrupted run above.
    const { fresh, tab, tabErrors } = await freshTab();
    await startTraining(tab, { experiment: 'ring-gan', backend: 'wasm', steps: 120 });
    await waitForStep(tab, 40);
    await tab.click(byTestId('pause'));
    const paused = await waitForIdle(tab);
    const saved = Number(/^Paused at step (\d+)/.exec(paused)?.[1]);
    expect(saved).toBeGreaterThanOrEqual(40);
    expect(saved).toBeLessThan(120);
    expect(await currentStep(tab)).toBe(saved);
    const stored = await tab.evaluate(() => (window as any).gantry.checkpoint());

    await tab.reload();
    await tab.waitForFunction(() => document.querySelector('[data-testid="start"]')?.textContent === 'Resume');
    expect(await tab.inputValue(byTestId('experiment'))).toBe('ring-gan');
    await tab.selectOption(byTestId('backend'), 'wasm');
    await tab.click(byTestId('start'));
    expect(await waitForIdle(tab)).toBe('Done at step 120');
    const resumed = await pageHistory(tab);
    expect(resumed[0].step).toBe(saved + 1);
    // Every scalar of every resumed step equals the uninterrupted run's, bit for bit.
    expect(resumed.map(({ step, scalars }) => ({ step, scalars }))).toEqual(uninterrupted.slice(saved).map(({ step, scalars }) => ({ step, scalars })));

    // The IndexedDB checkpoint holds what Node's checkpoint folder holds at that step: the same state document (step,
    // RNG counter, batches consumed, loss, critic steps) and the same generator weights, byte for byte.
    const dir = mkdtempSync(join(tmpdir(), 'gantry-straight-'));
    await ringGanInNode(saved, { dir, every: saved });
    const folder = join(dir, stored.name);
    const { savedAt: _pageTime, ...pageState } = stored.state;
    const { savedAt: _nodeTime, ...nodeState } = JSON.parse(readFileSync(join(folder, 'state.json'), 'utf8'));
    expect(pageState).toEqual(nodeState);
    expect(nodeState.step).toBe(saved);
    const nodeGenerator = await readModelArtifacts(join(folder, 'generator'));
    // Layer names are tfjs's per-process counters (restore goes by position); shapes, types and values must match.
    const layout = (specs: tf.io.WeightsManifestEntry[]) => specs.map(({ dtype, shape }) => ({ dtype, shape }));
    expect(layout(stored.weightSpecs)).toEqual(layout(nodeGenerator.weightSpecs!));
    expect(stored.weights).toEqual(Array.from(new Uint8Array(nodeGenerator.weightData as ArrayBuffer)));
    expect(tabErrors).toEqual([]);
    expect(errors).toEqual([]);
    await fresh.close();
  });

  it.skipIf(!hasWebGl)(`trains ring-gan on WebGL (${webGlRenderer ?? 'skipped: headless Chromium gave no WebGL 2 context with --use-angle=swiftshader --enable-unsafe-swiftshader'}): finite losses every step, charts and scatter drawn`, async () => {
    const { fresh, tab, tabErrors } = await freshTab();
    await startTraining(tab, { experiment: 'ring-gan', backend: 'webgl', steps: WEBGL_STEPS });
    expect(await waitForIdle(tab, 600_000)).toBe(`Done at step ${WEBGL_STEPS}`);
    expect(await textOf(tab, 'backend-in-use')).toBe('webgl');
    const history = await pageHistory(tab);
    expect(history.map((h) => h.step)).toEqual(Array.from({ length: WEBGL_STEPS }, (_, i) => i + 1));
    for (const { scalars } of history) expect(Number.isFinite(scalars.d_loss) && Number.isFinite(scalars.g_loss)).toBe(true);
    // WebGL computes in float32 with its own kernels: close to the wasm run at step 1, not equal.
    expect(history[0].scalars.d_loss).toBeCloseTo(uninterrupted[0].scalars.d_loss, 3);
    expect(history[0].scalars.g_loss).toBeCloseTo(uninterrupted[0].scalars.g_loss, 3);
    expect(await inkedPixels(tab, 'loss-chart')).toBeGreaterThan(1000);
    expect(await inkedPixels(tab, 'samples')).toBeGreaterThan(500);
    expect(tabErrors).toEqual([]);
    await fresh.close();
  });

  it('trains the conditional mnist-cgan: the sample grid has one row per class', async () => {
    const { fresh, tab, tabErrors } = await freshTab();
    await startTraining(tab, { experiment: 'mnist-cgan', backend: 'wasm', steps: 1 });
    expect(await waitForIdle(tab, 300_000)).toBe('Done at step 1');
    const { labels, shape, values, noise } = await tab.evaluate(async () => {
      const s = await (window as any).gantry.samples();
      return {
        labels: Array.from(s.labels as Int32Array),
        shape: s.shape as number[],
        values: Array.from(s.values as Float32Array),
        noise: Array.from(s.noise as Float32Array),
      };
    });
    expect(shape).toEqual([100, 28, 28, 1]);
    expect(labels).toEqual(Array.from({ length: 100 }, (_, i) => Math.floor(i / 10)));
    expect(values.every((v) => Number.isFinite(v) && Math.abs(v) <= 1)).toBe(true);
    expect(await textOf(tab, 'modes')).toBe('row k shows class k (10 samples a class), step 1');
    // A convnet: after the same step, Node's generator draws the page's samples bit for bit, through the transposed
    // convolutions that run on the wasm FMA convolution in both (one thread in the page, Node's thread count here).
    const { trainer } = await experimentInNode('mnist-cgan', builtinExperiment('mnist-cgan').defaults.batchSize, 1);
    const nodeSamples = tf.tidy(() => {
      const z = tf.tensor2d(noise, [shape[0], noise.length / shape[0]]);
      return trainer.generate(z, tf.tensor1d(labels, 'int32')).dataSync();
    });
    // Counted rather than compared as arrays: a failing deep equality of 78 400 floats takes minutes to print.
    const page32 = Float32Array.from(values);
    expect(nodeSamples.length).toBe(page32.length);
    expect(page32.filter((v, i) => !Object.is(v, nodeSamples[i])).length).toBe(0);
    // The grid is 10 by 10 images: 280 by 280 pixels scaled into the canvas, every cell drawn.
    expect(await inkedPixels(tab, 'samples')).toBeGreaterThan(10_000);
    expect(tabErrors).toEqual([]);
    await fresh.close();
  });
});
