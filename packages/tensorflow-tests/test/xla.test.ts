import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { nativeTensorflowInstalled } from '@gantry/engine';
import { relativeError } from '../../engine/test/kernels-reference.js';

const required = process.env.GANTRY_REQUIRE_NATIVE === '1';
const installed = nativeTensorflowInstalled();
if (!installed && required) throw new Error('GANTRY_REQUIRE_NATIVE=1 but no native TensorFlow is set up');

const fixture = fileURLToPath(new URL('./fixtures/xla-train.ts', import.meta.url));

interface XlaRun {
  detail: string;
  first: number[];
  second: number[];
  leaked: number;
  stderr: string;
}

/** The fixture in a child process, TensorFlow's log at level 0 so that XLA's "Compiled cluster" line shows. */
function trainInChild(mode: 'xla' | 'plain'): XlaRun {
  const env: NodeJS.ProcessEnv = { ...process.env, TF_CPP_MIN_LOG_LEVEL: '0' };
  delete env.TF_XLA_FLAGS;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--conditions=@gantry/source', fixture, mode], {
    encoding: 'utf8',
    env,
    cwd: fileURLToPath(new URL('..', import.meta.url)),
  });
  expect(r.status, r.stderr).toBe(0);
  return { ...(JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Omit<XlaRun, 'stderr'>), stderr: r.stderr };
}

describe.skipIf(!installed)('useBackend tensorflow with xla', () => {
  it('compiles the graph steps with XLA, trains as without it to float32 rounding, and repeats bit for bit', () => {
    const xla = trainInChild('xla');
    const plain = trainInChild('plain');
    expect(xla.detail).toContain('XLA JIT on graph steps');
    expect(plain.detail).not.toContain('XLA');
    // TensorFlow logs this once per process when it ran a step through an XLA-compiled cluster.
    expect(xla.stderr).toMatch(/Compiled cluster using XLA/);
    expect(plain.stderr).not.toMatch(/Compiled cluster using XLA/);
    // Fused element-wise chains round differently in the last bits; a miswired compiled step would be off by far more.
    expect(xla.first).toHaveLength(plain.first.length);
    expect(relativeError(xla.first, plain.first)).toBeLessThanOrEqual(1e-4);
    // Deterministic: the same training compiled again gives the same bits (what exact resume needs).
    expect(xla.second).toEqual(xla.first);
    expect(plain.second).toEqual(plain.first);
    expect(xla.leaked).toBe(0);
    expect(plain.leaked).toBe(0);
  }, 120_000);
});
