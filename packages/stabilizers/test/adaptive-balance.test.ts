import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { adaptiveBalance } from '../src/index.js';
import { expectFlatTensorCount, tinyTrainer, trainCountingTensors, useCpuBackend, weightValues } from '@gantry/core/testing';

beforeAll(useCpuBackend);

async function run(threshold: number, steps = 6) {
  const plugin = adaptiveBalance({ threshold });
  const trainer = tinyTrainer([plugin], { steps });
  const dWeights = [weightValues(trainer.discriminator)];
  const gWeights = [weightValues(trainer.generator)];
  const dLoss: number[] = [];
  const skippedScalar: number[] = [];
  trainer.on('step:end', (e) => {
    dWeights.push(weightValues(trainer.discriminator));
    gWeights.push(weightValues(trainer.generator));
    dLoss.push(e.scalars['d_loss']);
    skippedScalar.push(e.scalars['adaptive-balance/skipped']);
  });
  const counts = await trainCountingTensors(trainer);
  return { plugin, dWeights, gWeights, dLoss, skippedScalar, counts };
}

describe('adaptiveBalance', () => {
  it('skips every D update after the first while the last D loss is below the threshold: D weights stay bit-identical', async () => {
    const { plugin, dWeights, gWeights, skippedScalar, counts } = await run(Infinity);
    expectFlatTensorCount(counts);
    // Step 1 has no earlier loss to go by, so it updates; steps 2–6 skip.
    expect(plugin.skipped).toBe(5);
    expect(skippedScalar).toEqual([0, 1, 1, 1, 1, 1]);
    expect(dWeights[1]).not.toEqual(dWeights[0]);
    for (const w of dWeights.slice(1)) expect(w).toEqual(dWeights[1]);
    expect(gWeights[6]).not.toEqual(gWeights[0]);
  });

  it('never skips with a threshold below any loss', async () => {
    const { plugin, dWeights } = await run(-Infinity, 3);
    expect(plugin.skipped).toBe(0);
    for (let s = 1; s < dWeights.length; s++) expect(dWeights[s]).not.toEqual(dWeights[s - 1]);
  });

  it("skips exactly the steps that follow a step whose D loss is under the threshold", async () => {
    const probe = await run(-Infinity, 6);
    const sorted = [...probe.dLoss].sort((a, b) => a - b);
    const threshold = (sorted[2] + sorted[3]) / 2;
    // Same seed, same data: identical until the first skip; after that the losses differ, so compare per run.
    const { plugin, dWeights, dLoss, skippedScalar } = await run(threshold, 6);
    dLoss.forEach((_, s) => {
      const skip = s > 0 && dLoss[s - 1] < threshold;
      const moved = JSON.stringify(dWeights[s + 1]) !== JSON.stringify(dWeights[s]);
      expect(moved).toBe(!skip);
      expect(skippedScalar[s]).toBe(skip ? 1 : 0);
    });
    expect(skippedScalar.some((v) => v === 1)).toBe(true);
    expect(skippedScalar.some((v) => v === 0)).toBe(true);
    // Checkpointed state: the last loss and the count, so a resumed run decides its first step as this one would.
    const saved = (await plugin.state!.save()).json as { lastDLoss: number; skipped: number };
    expect(saved).toEqual({ lastDLoss: dLoss[5], skipped: plugin.skipped });
  });

  it('a restored plugin decides its first step from the saved loss', async () => {
    for (const [lastDLoss, expected] of [[0.1, 1], [0.9, 0]] as const) {
      const plugin = adaptiveBalance({ threshold: 0.5 });
      const trainer = tinyTrainer([plugin], { steps: 1 });
      await plugin.state!.load({ json: { lastDLoss, skipped: 3 } }, trainer);
      const before = weightValues(trainer.discriminator);
      await trainer.train();
      expect(plugin.skipped).toBe(3 + expected);
      expect(JSON.stringify(weightValues(trainer.discriminator)) === JSON.stringify(before)).toBe(expected === 1);
    }
  });
});
