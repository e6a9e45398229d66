import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { definePlugin, GantryError, minimax, NonFiniteLossError, nonSaturating, Trainer, type GanLoss, type GantryEvents } from '@gantry/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { diagnostics } from '../src/plugins/diagnostics.js';
import { metricsLog } from '../src/plugins/metrics-log.js';
import { parseMetricsLog } from '../src/metrics-file.js';
import { imageSource, tinyImageModels, useCpuBackend } from '@gantry/core/testing';
import { tmpDir } from './helpers.js';

beforeAll(useCpuBackend);

type Alert = GantryEvents['alert'];

function collectAlerts(trainer: Trainer): Alert[] {
  const alerts: Alert[] = [];
  trainer.on('alert', (a) => void alerts.push(a));
  return alerts;
}

/** A trainer whose bus we drive by hand with synthetic step:end payloads. */
async function synthetic(plugin = diagnostics({ gradNorms: false, thresholds: { collapseEvery: 0 } })) {
  const trainer = new Trainer({ ...tinyImageModels(), data: imageSource(), steps: 1000, plugins: [plugin] });
  const alerts = collectAlerts(trainer);
  await trainer.bus.emit('run:start', { trainer, startStep: 0, totalSteps: 1000 });
  const step = (s: number, scalars: Record<string, number>) => trainer.bus.emit('step:end', { step: s, scalars, stepMs: 1 });
  return { trainer, alerts, step };
}

describe('diagnostics plugin: synthetic step:end payloads', () => {
  it('flags an overpowering discriminator', async () => {
    const { alerts, step } = await synthetic();
    for (let s = 1; s <= 10; s++) await step(s, { d_loss: s < 5 ? 1.3 : 0.02, g_loss: 5 });
    expect(alerts).toEqual([expect.objectContaining({ step: 7, kind: 'd_overpowering', severity: 'warning', threshold: 0.1 })]);
  });

  it('flags unbalanced gradient norms reported by any plugin (info)', async () => {
    const { alerts, step } = await synthetic();
    for (let s = 1; s <= 25; s++) await step(s, { d_loss: 0.7, 'clip/grad_norm/D': 50, 'clip/grad_norm/G': 2 });
    expect(alerts).toEqual([expect.objectContaining({ step: 20, kind: 'grad_norm_ratio', severity: 'info', value: 25, threshold: 20 })]);
    // The tiny trainer has no penalty, equal learning rates and no spectral norm: all three are suggested.
    expect(alerts[0].message).toMatch(/Try TTUR learning rates, a gradient penalty or spectral normalization on D\.$/);
  });

  it('does not suggest a gradient penalty that is active, and says it is', async () => {
    const penalty = definePlugin({ name: 'gradient-penalty' });
    const trainer = new Trainer({
      ...tinyImageModels(),
      data: imageSource(),
      steps: 1000,
      optimizers: { generator: tf.train.adam(1e-4), discriminator: tf.train.adam(4e-4) },
      plugins: [diagnostics({ gradNorms: false, thresholds: { collapseEvery: 0 } }), penalty],
    });
    const alerts = collectAlerts(trainer);
    await trainer.bus.emit('run:start', { trainer, startStep: 0, totalSteps: 1000 });
    for (let s = 1; s <= 20; s++) await trainer.bus.emit('step:end', { step: s, scalars: { 'clip/grad_norm/D': 50, 'clip/grad_norm/G': 2 }, stepMs: 1 });
    expect(alerts).toHaveLength(1);
    expect(alerts[0].message).toMatch(
      /Try spectral normalization on D\. Already active: separate learning rates \(G 0\.0001, D 0\.0004\), a gradient penalty\.$/,
    );
    expect(alerts[0].message).not.toMatch(/Try[^.]*gradient penalty/);
  });

  it('flags vanishing generator gradients', async () => {
    const { alerts, step } = await synthetic();
    for (let s = 1; s <= 40; s++) await step(s, { d_loss: 0.7, 'clip/grad_norm/D': 0.01, 'clip/grad_norm/G': s <= 20 ? 2 : 0.001 });
    expect(alerts).toEqual([expect.objectContaining({ step: 31, kind: 'vanishing_g_gradient', severity: 'warning' })]);
  });

  it('flags oscillating losses, with configurable thresholds', async () => {
    const { alerts, step } = await synthetic(
      diagnostics({ gradNorms: false, thresholds: { collapseEvery: 0, oscillationAmplitude: 0.2, oscillationReversals: 3, oscillationAfter: 0 } }),
    );
    for (let s = 1; s <= 120; s++) await step(s, { d_loss: Math.floor(s / 15) % 2 ? 1.0 : 0.6 });
    expect(alerts.map((a) => a.kind)).toEqual(['oscillation']);
    expect(alerts[0].threshold).toBe(3);
  });

  it('leaves Wasserstein critic losses alone (they swing with G by design)', async () => {
    const critic: GanLoss = { ...nonSaturating(), name: 'wgan' };
    const trainer = new Trainer({ ...tinyImageModels(), data: imageSource(), steps: 1000, loss: critic, plugins: [diagnostics({ gradNorms: false, thresholds: { collapseEvery: 0, oscillationAfter: 0 } })] });
    const alerts = collectAlerts(trainer);
    await trainer.bus.emit('run:start', { trainer, startStep: 0, totalSteps: 1000 });
    for (let s = 1; s <= 200; s++) await trainer.bus.emit('step:end', { step: s, scalars: { d_loss: Math.floor(s / 15) % 2 ? -3 : 0.05 }, stepMs: 1 });
    expect(alerts).toEqual([]);
  });

  it('rejects unknown thresholds and options', () => {
    expect(() => diagnostics({ thresholds: { gradRatioo: 3 } as never })).toThrow(GantryError);
    expect(() => diagnostics({ thresholds: { gradRatioo: 3 } as never })).toThrow(/Unknown option "gradRatioo"/);
    expect(() => diagnostics({ verbose: true } as never)).toThrow(/Unknown option "verbose"/);
    expect(() => diagnostics({ thresholds: { gradRatio: -1 } })).toThrow(/non-negative/);
  });
});

describe('diagnostics plugin: real training', () => {
  it('reports gradient norms equal to ‖Δweights‖ / lr under plain SGD', async () => {
    const lr = 0.5;
    const models = tinyImageModels(2);
    const trainer = new Trainer({
      ...models,
      data: imageSource(),
      steps: 1,
      batchSize: 8,
      optimizers: { discriminator: tf.train.sgd(lr), generator: tf.train.sgd(lr) },
      plugins: [diagnostics()],
    });
    const before = (m: typeof models.generator) => m.getWeights().map((w) => Array.from(w.dataSync()));
    const d0 = before(models.discriminator);
    const g0 = before(models.generator);
    let scalars: Record<string, number> = {};
    trainer.on('step:end', (e) => void (scalars = e.scalars));
    await trainer.train();
    const stepNorm = (m: typeof models.generator, w0: number[][]) =>
      Math.sqrt(m.getWeights().reduce((acc, w, i) => acc + Array.from(w.dataSync()).reduce((a, v, k) => a + (v - w0[i][k]) ** 2, 0), 0)) / lr;
    expect(scalars['diagnostics/grad_norm/D']).toBeGreaterThan(0);
    expect(scalars['diagnostics/grad_norm/D']).toBeCloseTo(stepNorm(models.discriminator, d0), 4);
    expect(scalars['diagnostics/grad_norm/G']).toBeCloseTo(stepNorm(models.generator, g0), 4);
  });

  it('detects mode collapse of a generator whose output stops depending on z', async () => {
    const models = tinyImageModels(3);
    const collapse = definePlugin({
      name: 'collapse-now',
      on: {
        'step:end': {
          once: 6,
          handler: () => {
            // Zero kernel: G(z) = tanh(bias) for every z. G's learning rate is 0, so it stays collapsed.
            const [kernel, bias] = models.generator.getWeights();
            models.generator.setWeights([tf.zerosLike(kernel), bias]);
          },
        },
      },
    });
    const runDir = tmpDir();
    const trainer = new Trainer({
      ...models,
      data: imageSource(),
      steps: 15,
      batchSize: 8,
      optimizers: { generator: tf.train.sgd(0), discriminator: tf.train.sgd(0.01) },
      plugins: [diagnostics({ thresholds: { collapseEvery: 5, collapseSamples: 16 } }), metricsLog({ file: path.join(runDir, 'metrics.jsonl') }), collapse],
    });
    const alerts = collectAlerts(trainer);
    await trainer.train();
    expect(alerts.filter((a) => a.kind === 'mode_collapse')).toEqual([
      expect.objectContaining({ step: 10, severity: 'error', value: 0, threshold: 0.01 }),
    ]);
    const log = parseMetricsLog(fs.readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8'));
    expect(log.evals.map((e) => e.step)).toEqual([5, 10, 15]);
    expect(log.evals[0].metrics.diversity_variance).toBeGreaterThan(0.01);
    expect(log.evals[1].metrics).toEqual({ diversity_variance: 0, diversity_distance: 0 });
    expect(log.alerts.map((a) => a.alert)).toContain('mode_collapse');
  });

  for (const [lossName, loss] of [['minimax', minimax], ['non-saturating', nonSaturating]] as const) {
    it(`vanishing G gradients after D saturates: ${lossName === 'minimax' ? 'flagged 11 steps later under the minimax loss' : 'nothing under the non-saturating loss'}`, async () => {
      const models = tinyImageModels(4);
      // From step 25 on D calls every sample fake with a logit near −20: the minimax loss's gradient σ(logit) ≈ 2e-9,
      // the non-saturating loss's 1 − σ(logit) ≈ 1. D's learning rate is 0, so it stays saturated.
      const saturate = definePlugin({
        name: 'saturate-d',
        hooks: {
          beforeStep: {
            once: 25,
            handler: () => {
              const [kernel, bias] = models.discriminator.layers.at(-1)!.getWeights();
              const lowered = tf.sub(bias, 20);
              models.discriminator.layers.at(-1)!.setWeights([kernel, lowered]);
              lowered.dispose();
            },
          },
        },
      });
      const trainer = new Trainer({
        ...models,
        data: imageSource(),
        steps: 50,
        batchSize: 8,
        loss: loss(),
        optimizers: { generator: tf.train.sgd(0.01), discriminator: tf.train.sgd(0) },
        plugins: [diagnostics({ thresholds: { collapseEvery: 0 } }), saturate],
      });
      const alerts = collectAlerts(trainer);
      await trainer.train();
      const vanishing = alerts.filter((a) => a.kind === 'vanishing_g_gradient');
      if (lossName === 'minimax') {
        // Steps 25–35 are 11 of the 20-step window: the median falls to the saturated level at step 35.
        expect(vanishing).toEqual([expect.objectContaining({ step: 35, severity: 'warning' })]);
        // The threshold is 1% of the peak median: the saturated median is below a millionth of the peak.
        const peak = vanishing[0].threshold! / 0.01;
        expect(vanishing[0].value! / peak).toBeLessThan(1e-6);
        expect(vanishing[0].message).toMatch(/Try the non-saturating generator loss/);
      } else {
        expect(vanishing).toEqual([]);
      }
    });
  }

  it('turns a NaN loss stop into an error alert', async () => {
    let calls = 0;
    const base = nonSaturating();
    const poisoned: GanLoss = {
      name: 'poisoned',
      // Multiplying keeps the loss connected to D's weights, so only the value is poisoned.
      discriminatorLoss: (r, f) => (++calls === 3 ? (tf.mul(base.discriminatorLoss(r, f), NaN) as tf.Scalar) : base.discriminatorLoss(r, f)),
      generatorLoss: (f) => base.generatorLoss(f),
    };
    const runDir = tmpDir();
    const trainer = new Trainer({
      ...tinyImageModels(),
      data: imageSource(),
      steps: 10,
      batchSize: 8,
      loss: poisoned,
      plugins: [diagnostics(), metricsLog({ file: path.join(runDir, 'metrics.jsonl') })],
    });
    const alerts = collectAlerts(trainer);
    await expect(trainer.train()).rejects.toBeInstanceOf(NonFiniteLossError);
    expect(alerts).toEqual([expect.objectContaining({ step: 3, kind: 'non_finite', severity: 'error' })]);
    expect(alerts[0].message).toMatch(/Non-finite loss at step 3: d_loss = NaN/);
    const log = parseMetricsLog(fs.readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8'));
    expect(log.steps).toHaveLength(2);
    expect(log.alerts).toEqual([expect.objectContaining({ step: 3, alert: 'non_finite', severity: 'error' })]);
  });
});
