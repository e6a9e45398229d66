import '@tensorflow/tfjs-backend-cpu';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { unpackScheduled, type GantryPlugin, type LossContext } from '@gantry/core';
import { lecam } from '../src/index.js';
import { expectFlatTensorCount, tinyTrainer, trainCountingTensors, useCpuBackend } from '@gantry/core/testing';

beforeAll(useCpuBackend);

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const relu = (x: number) => Math.max(0, x);

/** Calls the plugin's lossTerms with given logits, returning the term, its gradients and the reports. */
function termOf(plugin: ReturnType<typeof lecam>, realValues: number[], fakeValues: number[]) {
  const handler = unpackScheduled(plugin.hooks!.lossTerms!).handler as (ctx: LossContext) => tf.Scalar;
  const reports: Record<string, number> = {};
  const real = tf.tensor2d(realValues, [realValues.length, 1]);
  const fake = tf.tensor2d(fakeValues, [fakeValues.length, 1]);
  const { value, grads } = tf.valueAndGrads((r: tf.Tensor, f: tf.Tensor) =>
    handler({ realLogits: r, fakeLogits: f, report: (name: string, v: tf.Scalar) => (reports[name] = v.dataSync()[0]) } as never),
  )([real, fake]);
  const out = { value: value.dataSync()[0], dr: Array.from(grads[0].dataSync()), df: Array.from(grads[1].dataSync()), reports };
  tf.dispose([real, fake, value, ...grads]);
  return out;
}

describe('lecam', () => {
  it('anchors are bias-corrected EMAs of the mean logits; the term and its gradients match the closed form', async () => {
    const decay = 0.9;
    const lambda = 0.5;
    const plugin = lecam({ lambda, decay });
    // Step 1: the corrected anchor is the batch mean itself.
    const r1 = [1, 3];
    const f1 = [-2, 0];
    const first = termOf(plugin, r1, f1);
    expect(first.reports.anchor_real).toBeCloseTo(2, 6);
    expect(first.reports.anchor_fake).toBeCloseTo(-1, 6);
    // relu(D(x) − α_F)²: (1+1)², (3+1)²; relu(α_R − D(G(z)))²: (2+2)², (2−0)²
    expect(first.value).toBeCloseTo(lambda * (mean([4, 16]) + mean([16, 4])), 5);
    // ∂/∂rᵢ = λ·2·relu(rᵢ − α_F)/N; ∂/∂fᵢ = −λ·2·relu(α_R − fᵢ)/N; anchors carry no gradient.
    expect(first.dr).toEqual([lambda * 2 * 2 / 2, lambda * 2 * 4 / 2].map((v) => expect.closeTo(v, 5)));
    expect(first.df).toEqual([-lambda * 2 * 4 / 2, -lambda * 2 * 2 / 2].map((v) => expect.closeTo(v, 5)));
    // Step 2: v = 0.9·v₁ + 0.1·m₂ with v₁ = 0.1·m₁, corrected by 1 − 0.9² = 0.19.
    const r2 = [0, -4];
    const f2 = [5, 1];
    const anchorReal = (0.9 * 0.1 * 2 + 0.1 * -2) / 0.19;
    const anchorFake = (0.9 * 0.1 * -1 + 0.1 * 3) / 0.19;
    const second = termOf(plugin, r2, f2);
    expect(second.reports.anchor_real).toBeCloseTo(anchorReal, 5);
    expect(second.reports.anchor_fake).toBeCloseTo(anchorFake, 5);
    const expected = lambda * (mean(r2.map((r) => relu(r - anchorFake) ** 2)) + mean(f2.map((f) => relu(anchorReal - f) ** 2)));
    expect(second.value).toBeCloseTo(expected, 5);
    // Read without dataSync(), which WebGPU in Node cannot do.
    const dataSync = tf.Tensor.prototype.dataSync;
    tf.Tensor.prototype.dataSync = () => {
      throw new Error('no synchronous read here (as on WebGPU)');
    };
    try {
      const anchors = (await plugin.anchors())!;
      expect(anchors.real).toBeCloseTo(anchorReal, 5);
      expect(anchors.fake).toBeCloseTo(anchorFake, 5);
    } finally {
      tf.Tensor.prototype.dataSync = dataSync;
    }
  });

  it('trains leak-free and resumes exactly: anchors and losses after restore equal the uninterrupted run', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gantry-lecam-'));
    try {
      const straight = tinyTrainer([lecam({ lambda: 0.3 })], { steps: 6 });
      const losses: number[] = [];
      straight.on('step:end', (e) => void losses.push(e.scalars['D/lecam']));
      expectFlatTensorCount(await trainCountingTensors(straight));

      await tinyTrainer([lecam({ lambda: 0.3 })], { steps: 3, checkpoint: { dir } }).train();
      const plugin = lecam({ lambda: 0.3 });
      const resumed = tinyTrainer([plugin], { steps: 6 });
      await resumed.restore(dir);
      const after: number[] = [];
      resumed.on('step:end', (e) => void after.push(e.scalars['D/lecam']));
      await resumed.train();
      expect(after).toEqual(losses.slice(3));
      expect(await plugin.anchors()).toEqual(await (straight.plugins[0] as ReturnType<typeof lecam>).anchors());
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('holds no tensor once a run ends, and a second train() continues from the anchors it read back', async () => {
    const straight = tinyTrainer([lecam({ lambda: 0.3 })], { steps: 6 });
    const losses: number[] = [];
    straight.on('step:end', (e) => void losses.push(e.scalars['D/lecam']));
    await straight.train();
    /** Builds and trains a 3-step run; returns it and how many tensors it left behind (models, optimizer slots, …). */
    const threeSteps = async (plugins: GantryPlugin[]) => {
      const before = tf.memory().numTensors;
      const trainer = tinyTrainer(plugins, { steps: 3 });
      await trainer.train();
      return { trainer, left: tf.memory().numTensors - before };
    };
    const without = await threeSteps([]);
    const plugin = lecam({ lambda: 0.3 });
    const withLecam = await threeSteps([plugin]);
    expect(withLecam.left).toBe(without.left);
    const after: number[] = [];
    withLecam.trainer.on('step:end', (e) => void after.push(e.scalars['D/lecam']));
    withLecam.trainer.totalSteps = 6;
    await withLecam.trainer.train();
    expect(after).toEqual(losses.slice(3));
    expect(await plugin.anchors()).toEqual(await (straight.plugins[0] as ReturnType<typeof lecam>).anchors());
  });

  it('needs λ', () => {
    expect(() => lecam({} as never)).toThrow(/lambda is required/);
    expect(() => lecam({ lambda: 1, decay: 1 })).toThrow(/decay/);
  });
});
