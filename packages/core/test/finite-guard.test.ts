import '@tensorflow/tfjs-backend-cpu';
import { mkdtemp, readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tfl from '@tensorflow/tfjs-layers';
import { NonFiniteWeightsError, WeightsDivergedError, weightProbes } from '../src/finite-guard.js';
import { definePlugin } from '../src/plugin.js';
import { useCpuBackend, lossTrace, pointTrainer } from '../src/testing.js';

beforeAll(useCpuBackend);

const tmp = () => mkdtemp(join(tmpdir(), 'gantry-guard-'));

/** Turns the generator gradient of one variable into NaN at one step; the losses of that step stay finite. */
function nanGradient(atStep: number, variableIndex: number) {
  const poisoned: string[] = [];
  const plugin = definePlugin({
    name: 'nan-gradient',
    hooks: {
      transformGrads: {
        phase: 'G',
        handler: (grads, { step }) => {
          if (step !== atStep) return;
          const name = Object.keys(grads)[variableIndex];
          poisoned.push(name);
          return { ...grads, [name]: tf.fill(grads[name].shape, NaN) };
        },
      },
    },
  });
  return { plugin, poisoned };
}

const l2 = (model: LayersModel) => Math.sqrt(model.getWeights().reduce((sum, w) => sum + (w.dataSync() as Float32Array).reduce((a, v) => a + v * v, 0), 0));

describe('finite-state guard', () => {
  it('a NaN gradient with finite losses stops the run at that step, naming the model and variable; the last checkpoint resumes exactly', async () => {
    const whole = await lossTrace(pointTrainer());
    const dir = await tmp();
    const { plugin, poisoned } = nanGradient(3, 1);
    const t = pointTrainer({ plugins: [plugin], checkpoint: { dir, every: 1, keep: 10 } });
    const seen: Record<string, number>[] = [];
    t.on('step:end', ({ scalars }) => void seen.push(scalars));
    const error = await t.train().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NonFiniteWeightsError);
    expect(poisoned).toEqual([t.generator.weights[1].name]);
    expect((error as Error).message).toBe(
      `Non-finite weights after step 3: generator variable "${poisoned[0]}" holds NaN or Infinity. ` +
        `Training stopped before checkpointing it; last good checkpoint: ${join(dir, 'step-000002')}`,
    );
    // step:end (and the checkpoint) never came for step 3, whose losses were computed before the poisoned update.
    expect(seen).toHaveLength(2);
    expect((await readdir(dir)).filter((n) => n.startsWith('step-')).sort()).toEqual(['step-000001', 'step-000002']);
    const resumed = pointTrainer();
    await resumed.restore(dir);
    expect(await lossTrace(resumed)).toEqual(whole.slice(2));
  });

  it('without checkpoints so far it says so, and a run that would have "completed" with NaN weights fails instead', async () => {
    const dir = await tmp();
    const { plugin } = nanGradient(3, 0);
    await expect(pointTrainer({ steps: 3, plugins: [plugin], checkpoint: { dir } }).train()).rejects.toThrow(
      /^Non-finite weights after step 3: generator variable ".+" holds NaN or Infinity\. Training stopped before checkpointing it; no checkpoint was written yet$/,
    );
    expect(await readdir(dir).catch(() => [])).toEqual([]);
  });

  it('maxWeightNorm stops a diverging run at the first step a weight norm passes it, before checkpointing that step', async () => {
    const fast = () => ({ generator: tf.train.sgd(50), discriminator: tf.train.sgd(50) });
    // Reference: the norms of the unguarded run after every step, computed on the host.
    const free = pointTrainer({ steps: 20, optimizers: fast() });
    const norms: { generator: number; discriminator: number }[] = [];
    free.on('step:end', () => void norms.push({ generator: l2(free.generator), discriminator: l2(free.discriminator) }));
    // It ends in NaN losses a few steps later; the norms up to there are the reference.
    await free.train().catch(() => undefined);
    const limit = 2 * Math.max(norms[0].generator, norms[0].discriminator);
    const first = norms.findIndex((n) => n.generator > limit || n.discriminator > limit);
    expect(first).toBeGreaterThan(0);
    const model = norms[first].generator > limit ? 'generator' : 'discriminator';

    const dir = await tmp();
    const guarded = pointTrainer({ steps: 20, optimizers: fast(), maxWeightNorm: limit, checkpoint: { dir, every: 1 } });
    const error = await guarded.train().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WeightsDivergedError);
    const { norm } = error as WeightsDivergedError;
    expect(norm).toBeCloseTo(norms[first][model], 3);
    expect((error as Error).message).toBe(
      `Weights diverged at step ${first + 1}: the ${model}'s weight norm is ${norm.toExponential(3)}, above maxWeightNorm ${limit}. ` +
        `Training stopped before checkpointing it; last good checkpoint: ${join(dir, `step-${String(first).padStart(6, '0')}`)}`,
    );
    expect((await readFile(join(dir, 'latest'), 'utf8')).trim()).toBe(`step-${String(first).padStart(6, '0')}`);
  });

  it('the probes flag exactly the variables that hold NaN or ±Infinity, not finite ones whose sum overflows float32', async () => {
    const model = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [2], units: 1, name: 'probed' })] });
    const [kernel] = model.weights;
    const probe = async (kernelValues: number[]) => {
      kernel.write(tf.tensor2d(kernelValues, [2, 1]));
      const { tensor, check } = weightProbes({ generator: model });
      const values = await tensor.data();
      tensor.dispose();
      return { probe: Array.from(values), result: await check(values, 7).then(() => 'ok', (e: Error) => e) };
    };
    // 3e38 + 3e38 overflows: the kernel's probe is NaN, but its values are finite, so no error.
    const overflow = await probe([3e38, 3e38]);
    expect(overflow.probe.map(Number.isNaN)).toEqual([true, false]);
    expect(overflow.result).toBe('ok');
    for (const bad of [[1, Infinity], [-Infinity, 2], [NaN, 0], [Infinity, -Infinity]]) {
      const { result } = await probe(bad);
      expect(result, String(bad)).toBeInstanceOf(NonFiniteWeightsError);
      expect((result as Error).message).toBe(
        `Non-finite weights after step 7: generator variable "${kernel.name}" holds NaN or Infinity. Training stopped before checkpointing it; no checkpoint was written yet`,
      );
    }
    expect((await probe([1, -2])).probe.map(Number.isNaN)).toEqual([false, false]);
    model.dispose();
  });

  it('rejects a maxWeightNorm that is not a positive number', () => {
    expect(() => pointTrainer({ maxWeightNorm: 0 })).toThrow('Trainer option "maxWeightNorm" must be a positive number, got 0');
  });
});
