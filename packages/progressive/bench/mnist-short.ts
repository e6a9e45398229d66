/**
 * A shorter mnist-progressive for quick looks (2200 steps through 4→8→16→32), as an experiment module:
 *
 *   npx tsx --conditions=@gantry/source packages/cli/src/bin.ts train packages/progressive/bench/mnist-short.ts
 *
 * GANTRY_SCHEDULE_SCALE=0.01 shrinks every phase (smoke test: 22 steps reach 32×32).
 */
import { mnistProgressiveSetup } from '../../cli/src/experiments/mnist-progressive.js';
import type { ExperimentContext } from '../../cli/src/experiments/types.js';

const scale = Number(process.env.GANTRY_SCHEDULE_SCALE ?? '1');
const scaled = (list: number[]) => list.map((n) => Math.round(n * scale));
const schedule = { stableSteps: scaled([200, 200, 300, 600]), fadeSteps: scaled([0, 200, 300, 400]) };

export default {
  name: 'mnist-progressive-short',
  description: 'mnist-progressive with a 2200-step schedule',
  defaults: { steps: schedule.stableSteps.reduce((a, b) => a + b, 0) + schedule.fadeSteps.reduce((a, b) => a + b, 0), batchSize: 64, sampleEvery: 100, checkpointEvery: 1000 },
  build: (ctx: ExperimentContext) => mnistProgressiveSetup(ctx, schedule),
};
