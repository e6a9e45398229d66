import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { GantryError } from '@gantry/core';
import { gantryCacheDir, nativeInstallDir } from '../src/native/paths.js';
import { setupTensorflow } from '../src/native/setup.js';

const neverVerify = async (): Promise<string> => {
  throw new Error('must not get as far as verifying');
};

describe('gantry setup tensorflow: input checks and cache layout (no download)', () => {
  it('names a --from folder without TensorFlow in one line and writes nothing', async () => {
    const cache = await mkdtemp(join(tmpdir(), 'gantry-cache-'));
    const empty = await mkdtemp(join(tmpdir(), 'gantry-notf-'));
    const err = await setupTensorflow({ from: empty, cacheDir: cache, log: () => {} }, neverVerify).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GantryError);
    expect((err as Error).message).toMatch(/^setup tensorflow: --from .*no TensorFlow install there \(need libtensorflow_cc\.so\.2/);
    expect((err as Error).message).not.toMatch(/\n/);
    expect(await readdir(cache)).toEqual([]);
  });

  it('rejects a malformed --version and --version with --from before anything is written', async () => {
    const cache = await mkdtemp(join(tmpdir(), 'gantry-cache-'));
    await expect(setupTensorflow({ version: 'latest', cacheDir: cache, log: () => {} }, neverVerify)).rejects.toThrow(
      /--version must be a TensorFlow release such as 2\.21\.0, got "latest"/,
    );
    await expect(setupTensorflow({ version: '2.21.0', from: '/x', cacheDir: cache, log: () => {} }, neverVerify)).rejects.toThrow(
      /exclude each other/,
    );
    expect(await readdir(cache)).toEqual([]);
  });

  it('keeps builds per flavour and tfjs version under GANTRY_CACHE, XDG_CACHE_HOME or ~/.cache', () => {
    expect(gantryCacheDir({ GANTRY_CACHE: '/c' })).toBe('/c');
    expect(gantryCacheDir({ XDG_CACHE_HOME: '/x' })).toBe('/x/gantry');
    expect(gantryCacheDir({ HOME: '/h' })).toMatch(/\.cache\/gantry$/);
    expect(nativeInstallDir('cpu', tf.version_core, '/c')).toBe(`/c/tensorflow/tfjs-node-${tf.version_core}`);
    expect(nativeInstallDir('gpu', '4.22.0', '/c')).toBe('/c/tensorflow/tfjs-node-gpu-4.22.0');
  });
});
