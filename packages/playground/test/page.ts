import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { createServer, type ViteDevServer } from 'vite';

export const PLAYGROUND_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The playground's dev server on a free port (what `npm run playground` starts). */
export async function startPlayground(): Promise<{ server: ViteDevServer; url: string }> {
  const server = await createServer({
    root: PLAYGROUND_ROOT,
    configFile: join(PLAYGROUND_ROOT, 'vite.config.ts'),
    server: { port: 0, host: '127.0.0.1' },
    logLevel: 'error',
  });
  await server.listen();
  return { server, url: server.resolvedUrls!.local[0] };
}

export const byTestId = (id: string) => `[data-testid="${id}"]`;
export const textOf = (page: Page, id: string) => page.locator(byTestId(id)).textContent().then((t) => t ?? '');
export const currentStep = async (page: Page) => Number(await textOf(page, 'step'));

/** Waits until the page shows step ≥ `step` (or fails with the page's status line when training errors). */
export async function waitForStep(page: Page, step: number, timeout = 300_000): Promise<void> {
  await page.waitForFunction(
    (target) => {
      const status = document.querySelector('[data-testid="status"]')?.textContent ?? '';
      if (status.startsWith('Error')) throw new Error(status);
      return Number(document.querySelector('[data-testid="step"]')?.textContent) >= target;
    },
    step,
    { timeout, polling: 100 },
  );
}

/** Waits for the session to stop (paused or done) and returns the status line. */
export async function waitForIdle(page: Page, timeout = 120_000): Promise<string> {
  await page.waitForFunction(() => document.body.dataset.state === 'idle' && !!(window as any).gantry, null, { timeout, polling: 100 });
  return textOf(page, 'status');
}

/** Chooses experiment, backend and steps, then presses Start. */
export async function startTraining(page: Page, options: { experiment: string; backend: string; steps: number }): Promise<void> {
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="backend"] option').length > 0);
  await page.selectOption(byTestId('experiment'), options.experiment);
  await page.selectOption(byTestId('backend'), options.backend);
  await page.fill(byTestId('steps'), String(options.steps));
  await page.click(byTestId('start'));
}

/** Per-step scalars the page recorded, with performance.now() at each step end (`window.gantry.history`). */
export const pageHistory = (page: Page) =>
  page.evaluate(() => (window as any).gantry.history as { step: number; scalars: Record<string, number>; time: number }[]);

/** Pixels drawn (not fully transparent and not white) on a canvas inside the element with this test id. */
export function inkedPixels(page: Page, testId: string): Promise<number> {
  return page.evaluate((id) => {
    const root = document.querySelector(`[data-testid="${id}"]`)!;
    const canvases = root instanceof HTMLCanvasElement ? [root] : Array.from(root.querySelectorAll('canvas'));
    let inked = 0;
    for (const canvas of canvases) {
      const pixels = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
      for (let i = 0; i < pixels.length; i += 4) {
        if (pixels[i + 3] > 0 && !(pixels[i] > 250 && pixels[i + 1] > 250 && pixels[i + 2] > 250)) inked++;
      }
    }
    return inked;
  }, testId);
}

/** Keys of tfjs's IndexedDB model store in the page (`<prefix>/<checkpoint>/<part>` for Gantry's checkpoints). */
export function indexedDbModels(page: Page): Promise<string[]> {
  return page.evaluate(
    () =>
      new Promise<string[]>((resolve, reject) => {
        const open = indexedDB.open('tensorflowjs');
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const keys = open.result.transaction('models_store').objectStore('models_store').getAllKeys();
          keys.onsuccess = () => resolve(keys.result.map(String));
          keys.onerror = () => reject(keys.error);
        };
      }),
  );
}

/** Flips one bit of the weights tfjs's IndexedDB store holds for `modelPath` (a damaged disk or a tampered profile). */
export function flipStoredWeightBit(page: Page, modelPath: string): Promise<void> {
  return page.evaluate(
    (key) =>
      new Promise<void>((resolve, reject) => {
        const open = indexedDB.open('tensorflowjs');
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const store = open.result.transaction('models_store', 'readwrite').objectStore('models_store');
          const get = store.get(key);
          get.onsuccess = () => {
            const record = get.result;
            const bytes = new Uint8Array(record.modelArtifacts.weightData as ArrayBuffer);
            bytes[7] ^= 1;
            const put = store.put(record);
            put.onsuccess = () => resolve();
            put.onerror = () => reject(put.error);
          };
          get.onerror = () => reject(get.error);
        };
      }),
    modelPath,
  );
}
