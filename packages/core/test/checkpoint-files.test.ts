import '@tensorflow/tfjs-backend-cpu';
import { mkdtemp, readFile, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { writeCheckpoint, type CheckpointContents } from '../src/checkpoint.js';
import { useCpuBackend, lossTrace, pointTrainer, tinyModels } from '../src/testing.js';

beforeAll(useCpuBackend);

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

/** A run of 4 steps with checkpoints at 2 and 4, and the losses of the same run carried on to step 6 uninterrupted. */
async function checkpointedRun() {
  const whole = await lossTrace(pointTrainer());
  const dir = await tmp();
  await pointTrainer({ steps: 4, checkpoint: { dir, every: 2 } }).train();
  return { dir, whole };
}

/** Restores into a fresh trainer, trains to step 6 and returns the step it resumed from, the warnings and the losses. */
async function resumeFrom(dir: string) {
  const warnings: string[] = [];
  const t = pointTrainer();
  await t.restore(dir, { warn: (line) => warnings.push(line) });
  const from = t.step;
  return { from, warnings, losses: await lossTrace(t) };
}

describe('damaged checkpoints', () => {
  it('a truncated weights.bin in the newest: one line, then the newest intact one resumes bit-exactly', async () => {
    const { dir, whole } = await checkpointedRun();
    const weights = join(dir, 'step-000004', 'generator', 'weights.bin');
    const size = (await readFile(weights)).byteLength;
    await truncate(weights, 100);
    const { from, warnings, losses } = await resumeFrom(dir);
    expect(warnings).toEqual([
      `Checkpoint ${join(dir, 'step-000004')} is damaged (${weights} has 100 bytes, its manifest says ${size}); ` +
        `using ${join(dir, 'step-000002')}, the newest intact one`,
    ]);
    expect(from).toBe(2);
    expect(losses).toEqual(whole.slice(2));
  });

  it('a truncated state.json, a flipped byte and a missing latest target are each found', async () => {
    const { dir, whole } = await checkpointedRun();
    const state = join(dir, 'step-000004', 'state.json');
    const text = await readFile(state, 'utf8');
    await writeFile(state, text.slice(0, 40));
    let result = await resumeFrom(dir);
    expect(result.warnings[0]).toContain(`(${state} has 40 bytes, its manifest says ${Buffer.byteLength(text)})`);
    expect(result.losses).toEqual(whole.slice(2));

    await writeFile(state, text);
    const adam = join(dir, 'step-000004', 'optimizer-discriminator.bin');
    const bytes = await readFile(adam);
    bytes[bytes.length - 1] ^= 1;
    await writeFile(adam, bytes);
    result = await resumeFrom(dir);
    expect(result.warnings[0]).toContain(`(${adam} does not match its checksum)`);
    expect(result.from).toBe(2);

    await rm(join(dir, 'step-000004'), { recursive: true });
    result = await resumeFrom(dir);
    expect(result.warnings).toEqual([
      `Checkpoint ${join(dir, 'step-000004')} is damaged (${join(dir, 'step-000004', 'state.json')} is missing); ` +
        `using ${join(dir, 'step-000002')}, the newest intact one`,
    ]);
    expect(result.losses).toEqual(whole.slice(2));
  });

  it('refuses, naming the damaged files, when no checkpoint is intact; models stay untouched', async () => {
    const { dir } = await checkpointedRun();
    const newest = join(dir, 'step-000004', 'discriminator', 'model.json');
    const older = join(dir, 'step-000002', 'plugins-state.json');
    await writeFile(newest, '{"format": "layers-model"');
    await rm(older);
    const t = pointTrainer();
    const before = t.generator.getWeights().map((w) => Array.from(w.dataSync()));
    await expect(t.restore(dir)).rejects.toThrow(
      `No intact checkpoint in ${dir}: ${newest} has 25 bytes, its manifest says ` +
        `${(await readFile(join(dir, 'step-000002', 'discriminator', 'model.json'))).byteLength}; ${older} is missing`,
    );
    expect(t.step).toBe(0);
    expect(t.generator.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(before);
  });
});
