import { GantryError, checkOptions } from '@gantry/core';

export interface GrowthSchedule {
  /** Steps trained at each resolution once it is fully faded in (the last stage trains on until the run ends). */
  stableSteps: number | number[];
  /** Steps over which each new block fades in (stages 1 and up); α rises linearly from 1/fadeSteps to 1. */
  fadeSteps: number | number[];
  /** Batch size per stage; each at most the trainer's batchSize (the real batch is cut to it). */
  batchSize?: number[];
}

export interface GrowthPhase {
  /** Index into the resolutions (0 = 4×4). */
  stage: number;
  /** True while block `stage` fades in. */
  fading: boolean;
  /** Fade weight of the new block: k/fadeSteps in the k-th fade step, 1 when stable. */
  alpha: number;
}

const perStage = (value: number | number[], stages: number, what: string, from = 0): number[] => {
  const list = typeof value === 'number' ? new Array(stages).fill(value) : value;
  if (list.length !== stages || list.slice(from).some((n) => !Number.isInteger(n) || n < 0)) {
    throw new GantryError(`Growth schedule ${what} must be a non-negative integer or ${stages} of them (one per stage)`);
  }
  return list;
};

/** A schedule with its per-stage lists resolved and checked. */
export interface ResolvedSchedule {
  stableSteps: number[];
  fadeSteps: number[];
  batchSize?: number[];
}

export function resolveSchedule(schedule: GrowthSchedule, stages: number): ResolvedSchedule {
  checkOptions('growth schedule', schedule, ['stableSteps', 'fadeSteps', 'batchSize']);
  const stableSteps = perStage(schedule.stableSteps, stages, 'stableSteps');
  const fadeSteps = perStage(schedule.fadeSteps, stages, 'fadeSteps', 1);
  fadeSteps[0] = 0;
  if (schedule.batchSize && (schedule.batchSize.length !== stages || schedule.batchSize.some((n) => !Number.isInteger(n) || n < 1))) {
    throw new GantryError(`Growth schedule batchSize must list ${stages} positive integers (one per stage)`);
  }
  return { stableSteps, fadeSteps, batchSize: schedule.batchSize };
}

/**
 * Where a (1-based) step falls: stage 0 for stableSteps[0] steps, then for each later stage fadeSteps[s] fading
 * steps followed by stableSteps[s] stable ones; after the last stage's fade the run stays at the last stage.
 */
export function growthAt(schedule: ResolvedSchedule, step: number): GrowthPhase {
  const stages = schedule.stableSteps.length;
  let remaining = Math.max(1, step);
  for (let s = 0; s < stages; s++) {
    const fade = schedule.fadeSteps[s];
    if (remaining <= fade) return { stage: s, fading: true, alpha: remaining / fade };
    remaining -= fade;
    if (remaining <= schedule.stableSteps[s] || s === stages - 1) return { stage: s, fading: false, alpha: 1 };
    remaining -= schedule.stableSteps[s];
  }
  throw new Error('unreachable');
}

/** Steps until the last stage is fully faded in and has trained its stableSteps. */
export function scheduleLength(schedule: ResolvedSchedule): number {
  return schedule.stableSteps.reduce((sum, n, s) => sum + n + schedule.fadeSteps[s], 0);
}
