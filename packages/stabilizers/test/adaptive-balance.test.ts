import { beforeAll, describe, expect, it } from 'vitest';
import { adaptiveBalance } from '../src/index.js';
import { expectFlat, tinyTrainer, trainCountingTensors, useCpu, weightValues } from './helpers.js';

beforeAll(useCpu);

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
  it('skips every D update while the D loss is below the threshold: D weights stay bit-identical', async () => {
    const { plugin, dWeights, gWeights, skippedScalar, counts } = await run(Infinity);
    expectFlat(counts);
    expect(plugin.skipped).toBe(6);
    expect(skippedScalar).toEqual([1, 1, 1, 1, 1, 1]);
    for (const w of dWeights) expect(w).toEqual(dWeights[0]);
    expect(gWeights[6]).not.toEqual(gWeights[0]);
  });

  it('never skips with a threshold below any loss', async () => {
    const { plugin, dWeights } = await run(-Infinity, 3);
    expect(plugin.skipped).toBe(0);
    for (let s = 1; s < dWeights.length; s++) expect(dWeights[s]).not.toEqual(dWeights[s - 1]);
  });

  it('skips exactly the steps whose D loss is under the threshold', async () => {
    const probe = await run(-Infinity, 6);
    const sorted = [...probe.dLoss].sort((a, b) => a - b);
    const threshold = (sorted[2] + sorted[3]) / 2;
    // Same seed, same data: identical until the first skip; after that the losses differ, so compare per run.
    const { dWeights, dLoss, skippedScalar } = await run(threshold, 6);
    dLoss.forEach((loss, s) => {
      const moved = JSON.stringify(dWeights[s + 1]) !== JSON.stringify(dWeights[s]);
      expect(moved).toBe(!(loss < threshold));
      expect(skippedScalar[s]).toBe(loss < threshold ? 1 : 0);
    });
    expect(skippedScalar.some((v) => v === 1)).toBe(true);
    expect(skippedScalar.some((v) => v === 0)).toBe(true);
  });
});
