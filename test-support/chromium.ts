import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';

/** Debian's Chromium (`.ci/run` installs it); tests that need it are skipped, saying so, when it is absent. */
export const CHROMIUM = '/usr/bin/chromium';
export const hasChromium = existsSync(CHROMIUM);

/**
 * Headless Chromium driven by playwright-core (which downloads no browser). SwiftShader gives WebGL without a GPU.
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-background-networking', '--enable-unsafe-swiftshader', '--use-angle=swiftshader'],
  });
}

/** Collects console errors and uncaught page errors; assert the list is empty at the end of a test. */
export function collectPageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(error.message));
  return errors;
}

/**
 * The renderer of a WebGL 2 context in headless Chromium with launchChromium's flags (SwiftShader through ANGLE, on the
 * CPU), or undefined when the browser gives none (then WebGL tests skip and say so).
 */
export async function chromiumWebGl2Renderer(): Promise<string | undefined> {
  if (!hasChromium) return undefined;
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    return await page.evaluate(() => {
      const gl = document.createElement('canvas').getContext('webgl2');
      if (!gl) return undefined;
      const debug = gl.getExtension('WEBGL_debug_renderer_info');
      return String(gl.getParameter(debug ? debug.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
    });
  } finally {
    await browser.close();
  }
}
