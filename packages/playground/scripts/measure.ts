/**
 * The playground's README numbers: training speed in the page (headless Chromium, Debian's /usr/bin/chromium) for
 * ring-gan and mnist-dcgan on each backend the browser offers, and the size of the production bundle.
 *
 *   npx tsx --conditions=@gantry/source packages/playground/scripts/measure.ts [--backends wasm,webgl] [--ring-steps 300] [--dcgan-steps 20]
 *
 * A step count of 0 leaves that experiment out.
 */
import { readdirSync, statSync, readFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { build } from 'vite';
import { launchChromium } from '../../../test-support/chromium.js';
import { PLAYGROUND_ROOT, pageHistory, startPlayground, startTraining, waitForIdle, waitForStep } from '../test/page.js';

const { values: opts } = parseArgs({
  options: {
    backends: { type: 'string', default: 'wasm' },
    'ring-steps': { type: 'string', default: '300' },
    'dcgan-steps': { type: 'string', default: '20' },
  },
});

const { server, url } = await startPlayground();
const browser = await launchChromium();

/** Steps per second over the second half of a run (the first steps include compiling kernels and loading data). */
async function measure(experiment: string, backend: string, steps: number): Promise<number> {
  // A fresh context each time: no checkpoint of an earlier run to resume.
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(url);
    await startTraining(page, { experiment, backend, steps });
    await waitForStep(page, steps, 3_600_000);
    await waitForIdle(page);
    const history = await pageHistory(page);
    const from = history[Math.floor(history.length / 2)];
    const to = history[history.length - 1];
    return ((to.step - from.step) * 1000) / (to.time - from.time);
  } finally {
    await context.close();
  }
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

const outDir = mkdtempSync(join(tmpdir(), 'gantry-playground-build-'));
await build({ root: PLAYGROUND_ROOT, configFile: join(PLAYGROUND_ROOT, 'vite.config.ts'), logLevel: 'error', build: { outDir, emptyOutDir: true } });
const sizes = { js: [0, 0], css: [0, 0], wasm: [0, 0], html: [0, 0] } as Record<string, [number, number]>;
for (const file of filesUnder(outDir).filter((f) => !f.includes('/mnist/'))) {
  const kind = file.split('.').pop()!;
  if (!(kind in sizes)) continue;
  const bytes = readFileSync(file);
  sizes[kind][0] += bytes.length;
  sizes[kind][1] += gzipSync(bytes).length;
}
const kb = (n: number) => `${(n / 1024).toFixed(0)} KiB`;
for (const [kind, [raw, gz]] of Object.entries(sizes)) console.log(`bundle ${kind}: ${kb(raw)} (${kb(gz)} gzipped)`);

// A step count of 0 leaves that experiment out (mnist-dcgan on SwiftShader's WebGL takes minutes a step).
for (const backend of opts.backends.split(',')) {
  const ringSteps = Number(opts['ring-steps']);
  const dcganSteps = Number(opts['dcgan-steps']);
  if (ringSteps > 0) console.log(`ring-gan on ${backend}: ${(await measure('ring-gan', backend, ringSteps)).toFixed(1)} steps/s`);
  if (dcganSteps > 0) console.log(`mnist-dcgan on ${backend}: ${(await measure('mnist-dcgan', backend, dcganSteps)).toFixed(2)} steps/s`);
}
await browser.close();
await server.close();
