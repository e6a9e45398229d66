import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { definePlugin, type HookContext } from '@gantry/core';
import { clipByGlobalNorm, globalNorm, gradClip } from '../src/index.js';
import { expectFlatTensorCount, tinyTrainer, trainCountingTensors, useCpuBackend, values } from '@gantry/core/testing';

beforeAll(useCpuBackend);

function fakeCtx(phase: 'D' | 'G', reports: Record<string, number>): HookContext {
  return {
    phase,
    step: 1,
    criticIndex: 0,
    report: (name: string, value: tf.Scalar) => {
      reports[name] = value.dataSync()[0];
    },
  } as unknown as HookContext;
}

describe('gradClip', () => {
  it('rescales to the max norm when the global norm exceeds it', () => {
    // global norm sqrt(9 + 16 + 144) = 13
    const grads = { a: tf.tensor1d([3, 4]), b: tf.tensor2d([[12]]) };
    const reports: Record<string, number> = {};
    const hook = gradClip({ maxNorm: 6.5 }).hooks!.transformGrads as (g: tf.NamedTensorMap, c: HookContext) => tf.NamedTensorMap;
    const out = hook(grads, fakeCtx('D', reports));
    expect(values(out.a)).toEqual([1.5, 2]);
    expect(values(out.b)).toEqual([6]);
    expect(reports['norm_D']).toBeCloseTo(13, 6);
    tf.dispose([...Object.values(grads), ...Object.values(out)]);
  });

  it('leaves gradients bit-identical when the norm is within the limit', () => {
    const grads = { a: tf.tensor1d([0.1, -0.2, 0.3]), b: tf.tensor1d([1e-3]) };
    const out = clipByGlobalNorm(grads, 1);
    expect(values(out.a)).toEqual(values(grads.a));
    expect(values(out.b)).toEqual(values(grads.b));
    const norm = globalNorm(grads);
    expect(norm.dataSync()[0]).toBeCloseTo(Math.sqrt(0.01 + 0.04 + 0.09 + 1e-6), 6);
    tf.dispose([...Object.values(grads), ...Object.values(out), norm]);
  });

  it('limits only the chosen phase in training, and the applied gradients have norm maxNorm', async () => {
    const norms: { phase: string; norm: number }[] = [];
    const spy = definePlugin({
      name: 'spy',
      hooks: {
        transformGrads: (grads, ctx) => {
          const n = globalNorm(grads);
          norms.push({ phase: ctx.phase, norm: n.dataSync()[0] });
          n.dispose();
        },
      },
    });
    const trainer = tinyTrainer([gradClip({ maxNorm: 1e-3, phase: 'G' }), spy], { steps: 5 });
    const scalars: Record<string, number>[] = [];
    trainer.on('step:end', (e) => void scalars.push(e.scalars));
    expectFlatTensorCount(await trainCountingTensors(trainer));
    const g = norms.filter((n) => n.phase === 'G');
    const d = norms.filter((n) => n.phase === 'D');
    expect(g).toHaveLength(5);
    for (const n of g) expect(n.norm).toBeCloseTo(1e-3, 7);
    for (const n of d) expect(n.norm).toBeGreaterThan(1e-3);
    expect(scalars[0]['grad-clip/norm_G']).toBeGreaterThan(1e-3);
    expect(scalars[0]['grad-clip/norm_D']).toBeUndefined();
  });
});
