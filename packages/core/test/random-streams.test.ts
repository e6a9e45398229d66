import '@tensorflow/tfjs-backend-cpu';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { definePlugin, type GantryPlugin } from '../src/plugin.js';
import { RandomStreams, Rng } from '../src/random.js';
import type { TrainerOptions } from '../src/trainer.js';
import { lossTrace, pointTrainer, useCpuBackend } from '../src/testing.js';

beforeAll(useCpuBackend);

const trainer = (extra: Partial<TrainerOptions> = {}) => pointTrainer({ steps: 6, nCritic: 2, ...extra });

/** A plugin that records every number it draws from its stream, in each hook that gets a context. */
function recorder(name: string, drawsPerHook = 1): GantryPlugin & { draws: number[] } {
  const draws: number[] = [];
  const draw = ({ rng }: { rng: Rng }) => {
    for (let i = 0; i < drawsPerHook; i++) draws.push(rng.uniform());
  };
  return Object.assign(definePlugin({ name, hooks: { beforeStep: draw, beforePhase: draw, afterApply: draw } }), { draws });
}

/** A plugin whose loss term is random: a · mean(D(fake)) with a ~ U(0, 1) drawn from its stream each phase. */
const randomTerm = definePlugin({
  name: 'random-term',
  hooks: {
    lossTerms: (ctx) => tf.mul(tf.randomUniform([], 0, 1, 'float32', ctx.rng.nextSeed()), tf.mean(ctx.fakeLogits)) as tf.Scalar,
  },
});

describe('random streams: one per plugin, derived from the seed and the plugin name', () => {
  it('a stream depends on the seed and the name only, not on the other plugins or their order', () => {
    const alone = new RandomStreams(7, ['a']).plugin('a');
    const withOthers = new RandomStreams(7, ['b', 'c', 'a']).plugin('a');
    expect(withOthers.seed).toBe(alone.seed);
    expect(new RandomStreams(7, ['b']).plugin('b').seed).not.toBe(alone.seed);
    expect(new RandomStreams(8, ['a']).plugin('a').seed).not.toBe(alone.seed);
    // Neither the core's stream nor the data order's fork.
    expect(alone.seed).not.toBe(7);
    expect(alone.seed).not.toBe(new Rng(7).fork(0xda7a).seed);
    expect(() => new RandomStreams(7, ['a']).plugin('b')).toThrow('no random stream for plugin "b": it is not one of the trainer\'s plugins');
  });

  it("adding a plugin that draws leaves another plugin's draws and the core's losses unchanged", async () => {
    const a = recorder('a');
    await trainer({ plugins: [a] }).train();
    // 6 steps × (beforeStep + 3 phases × (beforePhase + afterApply)) = 42 draws.
    expect(a.draws).toHaveLength(42);

    const again = recorder('a');
    const greedy = recorder('greedy', 5);
    await trainer({ plugins: [greedy, again, randomTerm] }).train();
    expect(again.draws).toEqual(a.draws);
    expect(greedy.draws).toHaveLength(5 * 42);
    // The first draws equal a fresh stream with the same seed: ctx.rng is trainer.rngFor(name), nothing drawn before.
    const fresh = new Rng(trainer({ plugins: [a] }).rngFor('a').seed);
    expect(a.draws.slice(0, 3)).toEqual([fresh.uniform(), fresh.uniform(), fresh.uniform()]);

    // Plugins that only draw leave latents and data order alone: the losses equal a run without plugins, bit for bit.
    const plain = await lossTrace(trainer());
    const drawing = await lossTrace(trainer({ plugins: [recorder('x', 3), recorder('y')] }));
    expect(drawing).toEqual(plain);
    // The core's stream took one latent draw per phase: 6 steps × 3 phases.
    const t = trainer({ plugins: [recorder('x', 3)] });
    await t.train();
    expect(t.rng.getState().counter).toBe(18);
  });

  it('resumes bit-exactly with random loss terms: every stream continues where the checkpoint left it', async () => {
    const plugins = () => [randomTerm, recorder('a')];
    const straight = trainer({ steps: 10, plugins: plugins() });
    const full = await lossTrace(straight);

    const dir = await mkdtemp(join(tmpdir(), 'gantry-streams-'));
    const first = trainer({ steps: 5, plugins: plugins(), checkpoint: { dir, every: 5 } });
    await lossTrace(first);
    const resumedPlugins = plugins();
    const resumed = trainer({ steps: 10, plugins: resumedPlugins });
    await resumed.restore(dir);
    // 5 steps × 3 phases of random-term, 5 × 7 of the recorder.
    expect(resumed.rngFor('random-term').getState().counter).toBe(15);
    expect(resumed.rngFor('a').getState().counter).toBe(35);
    const rest = await lossTrace(resumed);
    expect(rest).toEqual(full.slice(5));
    expect((resumedPlugins[1] as ReturnType<typeof recorder>).draws).toEqual(
      (straight.plugins[1] as ReturnType<typeof recorder>).draws.slice(35),
    );
  });

  it('a plugin added on resume starts its stream from the beginning; a removed one is ignored', () => {
    const saved = new RandomStreams(3, ['a', 'gone']);
    saved.plugin('a').uniform();
    saved.plugin('gone').uniform();
    saved.core.uniform();
    const state = saved.getState();
    expect(state).toEqual({ core: { seed: 3, counter: 1 }, plugins: { a: 1, gone: 1 } });
    const next = new RandomStreams(3, ['a', 'new', 'quiet']);
    next.setState(state);
    expect(next.plugin('new').getState().counter).toBe(0);
    // Streams that never drew are left out of the state: a plugin that draws nothing changes no checkpoint.
    expect(next.getState()).toEqual({ core: { seed: 3, counter: 1 }, plugins: { a: 1 } });
  });
});
