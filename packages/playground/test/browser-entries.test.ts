import { builtinModules } from 'node:module';
import { build, type Plugin } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { PLAYGROUND_ROOT } from './page.js';

/** Every entry point a page may import: the packages' browser conditions and browser-only subpaths. */
const BROWSER_ENTRIES = [
  '@gantry/core',
  '@gantry/engine',
  '@gantry/loss-wgan',
  '@gantry/spectral-norm',
  '@gantry/minibatch-disc',
  '@gantry/progressive',
  '@gantry/unrolled',
  '@gantry/stabilizers',
  '@gantry/augment',
  '@gantry/pacgan',
  '@gantry/datasets',
  '@gantry/monitor',
  '@gantry/monitor/charts',
  '@gantry/cli/experiments',
];

const NODE_BUILTIN = new RegExp(`^(node:.*|${builtinModules.map((m) => m.replace(/[/]/g, '\\/')).join('|')})$`);

/** Bundles `entry` as a bundler does for a page and lists every Node built-in reachable from it, with its importer. */
async function nodeImportsOf(entry: string, platform: 'browser' | 'node'): Promise<string[]> {
  const found: string[] = [];
  const guard: Plugin = {
    name: 'node-builtins',
    setup(b) {
      b.onResolve({ filter: NODE_BUILTIN }, (args) => {
        found.push(`${args.path} (from ${args.importer.replace(/.*\/packages\//, 'packages/')})`);
        return { path: args.path, external: true };
      });
    },
  };
  await build({
    stdin: { contents: `export * from '${entry}';`, resolveDir: PLAYGROUND_ROOT, loader: 'ts' },
    bundle: true,
    write: false,
    format: 'esm',
    platform,
    // Sources, as the page's dev server and the tests read them; the browser platform adds the `browser` condition.
    conditions: ['@gantry/source'],
    // tfjs and its backends are the page's own dependencies (their Node fallbacks are behind runtime checks).
    external: ['@tensorflow/*'],
    logLevel: 'silent',
    plugins: [guard],
  });
  return found;
}

describe('browser entry points', () => {
  it.each(BROWSER_ENTRIES)('%s bundles for the browser with no Node built-in reachable', async (entry) => {
    expect(await nodeImportsOf(entry, 'browser')).toEqual([]);
  });

  it('the same check finds the Node entries’ file code (the guard sees what it should)', async () => {
    expect(await nodeImportsOf('@gantry/core', 'node')).toEqual(expect.arrayContaining([expect.stringMatching(/^node:fs\/promises \(from packages\/core\/src\/checkpoint-files\.ts\)$/)]));
    expect(await nodeImportsOf('@gantry/datasets', 'node')).toEqual(expect.arrayContaining([expect.stringMatching(/^node:fs \(from packages\/datasets\/src\/mnist\.ts\)$/)]));
  });
});
