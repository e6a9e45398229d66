import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import {
  GantryError,
  checkOptions,
  concatMembers,
  splitMembers,
  definePlugin,
  type GantryPlugin,
  type HookContext,
  type LossContext,
} from '@gantry/core';
import { functionalModel, type FunctionalModel } from './functional.js';
import { tapeNode } from './tape.js';
import { adamCorrections, copyOptimizer, functionalUpdate, readUpdateRule, type AdamCorrections, type UpdateRule } from './optimizer.js';

export type UnrolledMode = 'first-order' | 'full';

export interface UnrolledOptions {
  /** Lookahead discriminator updates k before each generator update. Default 5 (Metz et al. 2017 use 5–10). */
  steps?: number;
  /**
   * `'first-order'` (default): k real discriminator updates on a copy of the optimizer state, the generator step
   * against the updated discriminator, then the discriminator's weights are restored; no gradient flows through
   * the lookahead. `'full'`: the lookahead is differentiated too (the generator sees how the discriminator would
   * react), which needs a discriminator made of Dense/LeakyReLU/ReLU/Activation layers.
   */
  mode?: UnrolledMode;
  /** Full mode: step size of the lookahead updates. Default: the discriminator optimizer's learning rate. */
  learningRate?: number;
}

export interface UnrolledPlugin extends GantryPlugin {
  readonly mode: UnrolledMode;
  readonly steps: number;
}

/**
 * Unrolled GAN (Metz et al. 2017): the generator is updated against the discriminator as it will be after k more
 * updates, which penalizes moving all samples onto the mode the current discriminator likes least (mode collapse).
 * The lookahead uses the step's real batch (the last discriminator phase's batch, after `transformBatch`).
 *
 * Cost per step, on top of the plain step: first-order, k discriminator updates (k generator forwards and k
 * discriminator forward+backward passes) plus a copy of the discriminator's weights and optimizer state; full, k
 * discriminator gradients inside the generator's gradient computation and the backward pass through all of them
 * (second order), so about twice first-order's compute and k copies of the discriminator's activations in memory.
 */
export function unrolled(options: UnrolledOptions = {}): UnrolledPlugin {
  checkOptions('unrolled', options, ['steps', 'mode', 'learningRate']);
  const steps = options.steps ?? 5;
  const mode = options.mode ?? 'first-order';
  if (!Number.isInteger(steps) || steps < 1) throw new GantryError(`unrolled steps must be a positive integer, got ${steps}`);
  if (mode !== 'first-order' && mode !== 'full') throw new GantryError(`unrolled mode must be "first-order" or "full", got "${mode}"`);
  if (options.learningRate !== undefined && !(options.learningRate > 0)) {
    throw new GantryError(`unrolled learningRate must be positive, got ${options.learningRate}`);
  }
  if (mode === 'first-order' && options.learningRate !== undefined) {
    throw new GantryError('unrolled learningRate applies to mode "full"; first-order uses the discriminator optimizer itself');
  }

  // ---- first-order: real updates, then restore
  let savedWeights: tf.Tensor[] | undefined;
  let unrolledModel: LayersModel | undefined;

  async function lookahead({ trainer, rng }: HookContext): Promise<void> {
    // The step's real batch: the last discriminator phase's, after transformBatch (the core's, alive until next step).
    const current = trainer.currentBatch;
    if (!current) throw new GantryError('unrolled: no real batch in this step (is there a discriminator phase?)');
    const discriminator = trainer.discriminator;
    savedWeights = discriminator.weights.map((w) => tf.clone(w.read()));
    unrolledModel = discriminator;
    // A copy of D's optimizer: the look-ahead updates leave the real optimizer state untouched.
    const lookaheadOptimizer = await copyOptimizer(trainer.optimizers.discriminator);
    try {
      for (let k = 0; k < steps; k++) {
        // The lookahead's latents come from this plugin's stream: the core's latents stay as without unrolling.
        trainer.discriminatorUpdate(current, { runHooks: false, optimizer: lookaheadOptimizer, rng });
      }
    } finally {
      lookaheadOptimizer.dispose();
    }
  }

  function restore(): void {
    if (!savedWeights || !unrolledModel) return;
    const saved = savedWeights;
    unrolledModel.weights.forEach((w, i) => w.write(saved[i]));
    tf.dispose(saved);
    savedWeights = undefined;
    unrolledModel = undefined;
  }

  // ---- full: differentiate through functional lookahead updates
  let functional: FunctionalModel | undefined;
  let functionalFor: LayersModel | undefined;
  let rule: UpdateRule | undefined;
  /** Adam's bias corrections of the lookahead updates, made before the generator's tape opens (see adamCorrections). */
  let corrections: AdamCorrections[] = [];

  async function readRule(ctx: HookContext): Promise<void> {
    releaseRule();
    rule = await readUpdateRule(ctx.trainer.optimizers.discriminator, options.learningRate);
    const adam = rule.kind === 'adam' ? rule : undefined;
    if (adam) corrections = Array.from({ length: steps }, (_, j) => adamCorrections(adam, j));
  }

  function releaseRule(): void {
    tf.dispose(corrections.flatMap((c) => [c.beta1, c.beta2]));
    corrections = [];
    rule = undefined;
  }

  /**
   * The generator's loss against the discriminator after `steps` differentiable lookahead updates. Kernel calls are
   * what a toy step costs, so the lookahead keeps D's weights (and Adam's moments) as one flat vector, updated by one
   * set of element-wise ops per step (the same per-element arithmetic as one update per weight), runs real and fake
   * through D as one batch, and takes D's weight gradients by explicit backpropagation (`forwardBackward`); the
   * loss's gradient at D's output is the loss's closed form (`discriminatorLossGradient`) or else a (small) tape.
   * Flattening, unflattening and each Adam update are one node of the generator's tape each (`tapeNode`).
   */
  function lookaheadGeneratorLoss(ctx: LossContext): tf.Scalar {
    if (functionalFor !== ctx.discriminator || !functional) {
      functional = functionalModel(ctx.discriminator);
      functionalFor = ctx.discriminator;
    }
    const net = functional;
    const loss = ctx.trainer.loss;
    const update = rule!;
    const { real, fake } = ctx;
    const current = net.weights.map((w) => w.read());
    const shapes = current.map((w) => w.shape);
    const sizes = current.map((w) => w.size);
    // Each one node of the tape: their backward passes are each other (split ↔ concat, reshape ↔ reshape), what tfjs
    // would run, without a node and a saved copy per reshape.
    const named = (tensors: readonly tf.Tensor[]) => Object.fromEntries(tensors.map((t, i) => [String(i), t]));
    const flatten = (tensors: readonly tf.Tensor[]): tf.Tensor =>
      tapeNode(
        named(tensors),
        () => [tf.concat(tensors.map((t) => tf.reshape(t, [-1])))],
        ([dFlat]) => Object.fromEntries(tf.split(dFlat, sizes).map((d, i) => [String(i), () => tf.reshape(d, shapes[i])])),
      )[0];
    const unflatten = (flat: tf.Tensor): tf.Tensor[] =>
      tapeNode(
        { flat },
        () => tf.split(flat, sizes).map((t, i) => tf.reshape(t, shapes[i])),
        (dParts) => ({ flat: () => tf.concat(dParts.map((d) => tf.reshape(d, [-1]))) }),
      );
    let flat = flatten(current);
    const moments =
      update.kind === 'adam'
        ? {
            m: [flatten(current.map((p, i) => update.m[i] ?? tf.zerosLike(p)))],
            v: [flatten(current.map((p, i) => update.v[i] ?? tf.zerosLike(p)))],
          }
        : { m: [], v: [] };
    const parts = [real.shape[0], fake.shape[0]];
    // Member models (stackMembers) keep member-major rows: join and split per member.
    const both = concatMembers([real, fake], net.members);
    // The loss's own closed form where it has one: tf.grads would put a nested tape's forward and backward pass (and
    // a copy of each tensor it saves) on the generator's tape at every update.
    const outputGradient = loss.discriminatorLossGradient
      ? ([realOut, fakeOut]: tf.Tensor[]) => loss.discriminatorLossGradient!(realOut, fakeOut)
      : tf.grads((realOut: tf.Tensor, fakeOut: tf.Tensor) => loss.discriminatorLoss(realOut, fakeOut));
    for (let j = 0; j < steps; j++) {
      const { output, backward } = net.forwardBackward(both, unflatten(flat));
      const [dReal, dFake] = outputGradient(splitMembers(output, parts, net.members));
      const grads = backward(concatMembers([dReal, dFake], net.members));
      [flat] = functionalUpdate(update, [flat], [flatten(grads)], moments, j, corrections[j]);
    }
    return loss.generatorLoss(net.forwardBackward(fake, unflatten(flat)).output);
  }

  const plugin = definePlugin({
    name: 'unrolled',
    mode,
    steps,
    hooks: {
      setup(trainer) {
        if (mode === 'full') {
          functional = functionalModel(trainer.discriminator);
          functionalFor = trainer.discriminator;
        }
      },
      // Full mode: the generator's loss is the lookahead loss instead of the loss against the current D.
      generatorLoss: (_loss, ctx) => (mode === 'full' ? lookaheadGeneratorLoss(ctx) : undefined),
      beforePhase: {
        phase: 'G',
        handler: async (ctx) => {
          if (mode === 'first-order') await lookahead(ctx);
          else await readRule(ctx);
        },
      },
      afterApply: {
        phase: 'G',
        handler: () => {
          restore();
          releaseRule();
        },
      },
      teardown() {
        restore();
        releaseRule();
      },
    },
  });
  return plugin;
}
