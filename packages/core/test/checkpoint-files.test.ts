import { mkdtemp, readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { writeCheckpoint, type CheckpointContents } from '../src/checkpoint.js';
import { cpu, tinyModels } from './helpers.js';

beforeAll(cpu);

const tmp = () => mkdtemp(join(tmpdir(), 'gantry-ckpt-'));

function contents(step: number, keep: number): CheckpointContents {
  return {
    step,
    ...tinyModels(),
    optimizers: { generator: tf.train.adam(), discriminator: tf.train.adam() },
    plugins: {},
    meta: { rng: { seed: 0, counter: 0 }, batchesConsumed: 0, loss: 'non-saturating', nCritic: 1 },
    keep,
  };
}

const stepFolders = async (root: string) => (await readdir(root)).filter((n) => n.startsWith('step-')).sort();

describe('checkpoint pruning', () => {
  it('follows step numbers, not names: past step 999999 the newest are kept', async () => {
    const root = await tmp();
    for (const step of [999_998, 999_999, 1_000_000, 1_000_001]) await writeCheckpoint(root, contents(step, 3));
    // By name, "step-1000001" sorts before "step-999998": name order would have deleted the two newest.
    expect(await stepFolders(root)).toEqual(['step-1000000', 'step-1000001', 'step-999999']);
    expect((await readFile(join(root, 'latest'), 'utf8')).trim()).toBe('step-1000001');
  });

  it('never removes the checkpoint that latest names', async () => {
    const root = await tmp();
    for (const step of [10, 11, 12]) await writeCheckpoint(root, contents(step, 3));
    await writeCheckpoint(root, contents(2, 3));
    expect((await readFile(join(root, 'latest'), 'utf8')).trim()).toBe('step-000002');
    expect(await stepFolders(root)).toEqual(['step-000002', 'step-000010', 'step-000011', 'step-000012']);
  });
});
