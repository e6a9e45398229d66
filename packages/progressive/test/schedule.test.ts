import { describe, expect, it } from 'vitest';
import { growthAt, resolveSchedule, scheduleLength } from '../src/index.js';

describe('growth schedule', () => {
  const schedule = resolveSchedule({ stableSteps: 3, fadeSteps: 4 }, 3);

  it('walks stage 0, then fade and stable phases of each later stage; α rises linearly', () => {
    const at = (step: number) => growthAt(schedule, step);
    expect([1, 2, 3].map(at)).toEqual(Array(3).fill({ stage: 0, fading: false, alpha: 1 }));
    expect([4, 5, 6, 7].map(at)).toEqual([0.25, 0.5, 0.75, 1].map((alpha) => ({ stage: 1, fading: true, alpha })));
    expect([8, 9, 10].map(at)).toEqual(Array(3).fill({ stage: 1, fading: false, alpha: 1 }));
    expect([11, 12, 13, 14].map(at)).toEqual([0.25, 0.5, 0.75, 1].map((alpha) => ({ stage: 2, fading: true, alpha })));
    expect([15, 17, 500].map(at)).toEqual(Array(3).fill({ stage: 2, fading: false, alpha: 1 }));
    expect(scheduleLength(schedule)).toBe(3 + 4 + 3 + 4 + 3);
  });

  it('takes per-stage lists, and zero fade steps switch at once', () => {
    const s = resolveSchedule({ stableSteps: [1, 2, 5], fadeSteps: [0, 0, 2] }, 3);
    expect([1, 2, 3, 4, 5, 6].map((step) => growthAt(s, step))).toEqual([
      { stage: 0, fading: false, alpha: 1 },
      { stage: 1, fading: false, alpha: 1 },
      { stage: 1, fading: false, alpha: 1 },
      { stage: 2, fading: true, alpha: 0.5 },
      { stage: 2, fading: true, alpha: 1 },
      { stage: 2, fading: false, alpha: 1 },
    ]);
  });

  it('rejects malformed schedules', () => {
    expect(() => resolveSchedule({ stableSteps: [1, 2], fadeSteps: 1 }, 3)).toThrow(/3 of them/);
    expect(() => resolveSchedule({ stableSteps: 1, fadeSteps: -1 }, 3)).toThrow(/fadeSteps/);
    expect(() => resolveSchedule({ stableSteps: 1, fadeSteps: 1, batchSize: [8, 8] }, 3)).toThrow(/batchSize/);
    expect(() => resolveSchedule({ stableSteps: 1, fadeSteps: 1, fade: 2 } as never, 3)).toThrow(/Unknown option "fade"/);
  });
});
