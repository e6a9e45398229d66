import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { GantryError } from '@gantry/core';
import { gantryCacheDir, nativeInstallDir } from '../src/native/paths.js';
import { setupTensorflow } from '../src/native/setup.js';
import { filterTensorflowLog } from '../src/native/stderr-capture.js';

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

describe('TensorFlow start-up log filter (stderr-capture.ts)', () => {
  // The two lines TensorFlow 2.21 writes while its libraries load, verbatim but for the time and thread.
  const notice = 'WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n';
  const info =
    'I0000 00:00:1796144269.371593   31208 port.cc:153] oneDNN custom operations are on. You may see slightly different numerical results due to floating-point round-off errors from different computation orders. To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.\n';
  const warning = 'W0000 00:00:1796144269.371600   31208 cpu_feature_guard.cc:227] something to warn about\n';
  const error = 'E1201 16:53:40.123456   31208 some_file.cc:9] an error\n';
  const other = 'a line that is not absl log output\n';
  const text = notice + info + warning + error + other;

  it('passes what TF_CPP_MIN_LOG_LEVEL lets through: 2 (Gantry\'s default) keeps errors, 1 warnings too', () => {
    expect(filterTensorflowLog(text, '2')).toBe(error + other);
    expect(filterTensorflowLog(text, '1')).toBe(warning + error + other);
    expect(filterTensorflowLog(text, '3')).toBe(other);
    expect(filterTensorflowLog(notice + info, '2')).toBe('');
  });

  it('keeps everything at level 0 or unset, as TensorFlow does', () => {
    expect(filterTensorflowLog(text, '0')).toBe(text);
    expect(filterTensorflowLog(text, undefined)).toBe(text);
  });
});
