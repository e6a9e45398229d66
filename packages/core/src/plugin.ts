import type * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { Batch } from './data.js';
import type { EventName, GantryEvents } from './events.js';
import type { Rng } from './random.js';
import type { Trainer } from './trainer.js';

export type Phase = 'D' | 'G';

/**
 * When a hook or listener runs, after the style of pytorch-ignite's event filters. Steps are 1-based: step 1 is the
 * first step of a run. `every: n` runs on steps n, 2n, …; `once: n` only on step n; `after: n` on steps > n;
 * `phase` only in the discriminator (`'D'`) or generator (`'G'`) phase. Filters combine with AND.
 */
export interface Schedule {
  every?: number;
  once?: number;
  after?: number;
  phase?: Phase;
}

export function scheduleMatches(s: Schedule, step: number, phase?: Phase): boolean {
  if (s.every !== undefined && step % s.every !== 0) return false;
  if (s.once !== undefined && step !== s.once) return false;
  if (s.after !== undefined && step <= s.after) return false;
  if (s.phase !== undefined && phase !== undefined && s.phase !== phase) return false;
  return true;
}

/**
 * Where a hook runs among the plugins, as in Rollup: `pre` hooks first, then those without an order, then `post`
 * hooks; within each group, the order of the plugin list. E.g. an EMA's `afterApply` is `post`, so it averages weights
 * after every other plugin changed them, wherever it is listed.
 */
export type HookOrder = 'pre' | 'post';

/** Where the loop is when a hook runs. One context per plugin: `plugin` names it and `report` files under it. */
export interface HookContext {
  trainer: Trainer;
  /** The name of the plugin this context was made for. */
  plugin: string;
  /** 1-based number of the step being run. */
  step: number;
  phase: Phase;
  /** Index of the discriminator phase within the step (0 … nCritic−1); 0 in the generator phase. */
  criticIndex: number;
  rng: Rng;
  /**
   * Records a scalar for this step; it appears in `step:end` scalars as `<plugin>/<name>`. The core keeps its own
   * reference (valid past tidy scopes, released after reading); the caller's tensor stays the caller's.
   */
  report(name: string, value: tf.Scalar): void;
}

/** What `lossTerms` sees, inside the gradient computation of one phase. */
export interface LossContext extends HookContext {
  /** The real batch after `transformBatch`. */
  real: tf.Tensor;
  /** The generator's output for this phase (constant in the D phase, differentiable in the G phase). */
  fake: tf.Tensor;
  labels?: tf.Tensor;
  /** D(real): computed in the D phase; in the G phase only when a hook asked for it through `discriminate`. */
  realLogits?: tf.Tensor;
  fakeLogits: tf.Tensor;
  /** Applies the discriminator in training mode (labels passed through for conditional models). */
  discriminate(x: tf.Tensor, labels?: tf.Tensor): tf.Tensor;
  generator: LayersModel;
  discriminator: LayersModel;
}

type MaybeScheduled<F> = F | ({ handler: F; order?: HookOrder } & Schedule);
/** A hook that runs once per run: a function, or `{ handler, order }` (no schedule). */
type MaybeOrdered<F> = F | { handler: F; order?: HookOrder };

/**
 * The points where plugins hook into a step. What a hook returns belongs to the core (it disposes replaced batches and
 * gradients, loss terms and checkpoint snapshots); what a hook receives stays the core's unless said otherwise.
 * `transformBatch`, `lossTerms`, `generatorLoss`, `skipUpdate`, `transformGrads` and `afterApply` run inside the step
 * and must be synchronous: returning a Promise is a PluginError.
 */
export interface Hooks {
  /** Before the first step (and after a resume's restore): build state, check options against the models. */
  setup?: MaybeOrdered<(trainer: Trainer) => void | Promise<void>>;
  /** At the start of each step, before any phase. May await (e.g. grow the models). */
  beforeStep?: MaybeScheduled<(ctx: Omit<HookContext, 'phase' | 'criticIndex'>) => void | Promise<void>>;
  /**
   * At the start of each phase. May await. In the generator phase `ctx.trainer.currentBatch` is the step's real
   * batch (the last discriminator phase's, after `transformBatch`; the core's, valid until the next step).
   */
  beforePhase?: MaybeScheduled<(ctx: HookContext) => void | Promise<void>>;
  /**
   * Waterfall over the real batch (D phases). Return a new batch or undefined to keep it. Tensors of the old batch
   * that the new one no longer holds are disposed by the core.
   */
  transformBatch?: MaybeScheduled<(batch: Batch, ctx: HookContext) => Batch | void>;
  /**
   * Waterfall over every image batch the discriminator sees in training: real and generated, in the D and the G phase,
   * and what loss terms pass to `ctx.discriminate` (gradient penalties). Runs inside the gradient computation, so it
   * must be synchronous and differentiable: the generator's gradient flows through it. Return the transformed batch
   * or undefined; intermediate tensors belong to the phase's scope.
   */
  augment?: MaybeScheduled<(x: tf.Tensor, ctx: HookContext) => tf.Tensor | void>;
  /** Extra scalar terms added to the phase loss, inside the gradient computation. */
  lossTerms?: MaybeScheduled<(ctx: LossContext) => tf.Scalar | Record<string, tf.Scalar> | void>;
  /**
   * Generator phase, waterfall: replaces (or wraps) the generator's GAN loss, inside the gradient computation. Gets
   * the current loss (the loss function's value against the current discriminator, or the previous plugin's
   * replacement) and returns the loss to use instead, or nothing to keep it. `g_loss` stays the loss function's value;
   * a replacement is reported as `G/<plugin>`. Loss terms are added to the result.
   */
  generatorLoss?: MaybeScheduled<(loss: tf.Scalar, ctx: LossContext) => tf.Scalar | void>;
  /**
   * After the phase's gradients are computed: return true to skip this update (no `transformGrads`, the optimizer is
   * not called, so Adam's step count stays put). `afterApply` still runs.
   */
  skipUpdate?: MaybeScheduled<(ctx: HookContext) => boolean | void>;
  /**
   * Waterfall over the gradients (variable name → gradient). Replaced tensors are disposed by the core. Return every
   * gradient to apply; to skip the update use `skipUpdate` (an empty map is an error).
   */
  transformGrads?: MaybeScheduled<(grads: tf.NamedTensorMap, ctx: HookContext) => tf.NamedTensorMap | void>;
  /** After the optimizer applied the phase's gradients: weight clipping, EMA, bookkeeping. */
  afterApply?: MaybeScheduled<(ctx: HookContext) => void>;
  /** After the run ends, for any reason: close files, flush network queues. */
  teardown?: MaybeOrdered<(trainer: Trainer) => void | Promise<void>>;
}

export type HookName = keyof Hooks;

/** Every hook, in the order the loop reaches them. */
export const HOOK_NAMES: readonly HookName[] = [
  'setup',
  'beforeStep',
  'beforePhase',
  'transformBatch',
  'augment',
  'lossTerms',
  'generatorLoss',
  'skipUpdate',
  'transformGrads',
  'afterApply',
  'teardown',
];

/**
 * A plugin's checkpointed state: JSON plus named tensors. Like every hook's result, what `save` returns belongs to the
 * core, which disposes its tensors once written: return copies (`tf.clone`), never live variables. On load the
 * snapshot's tensors are the core's too and are disposed after every plugin's `load` returned: copy what you keep.
 */
export interface PluginStateSnapshot {
  json?: unknown;
  tensors?: Record<string, tf.Tensor>;
}

export interface PluginState {
  save(): PluginStateSnapshot | Promise<PluginStateSnapshot>;
  /**
   * Called by `trainer.restore()` before model weights are loaded, so a plugin may swap the models first. Copy what
   * you keep (tf.clone or variable.assign): the core disposes the snapshot's tensors after all plugins loaded.
   */
  load(snapshot: PluginStateSnapshot, trainer: Trainer): void | Promise<void>;
}

export type EventListeners = {
  [E in EventName]?: MaybeScheduled<(payload: GantryEvents[E], trainer: Trainer) => void | Promise<void>>;
};

export interface GantryPlugin {
  readonly name: string;
  readonly hooks?: Hooks;
  readonly on?: EventListeners;
  readonly state?: PluginState;
}

/** Identity with types: `definePlugin({ name, hooks, on, state })`. Checks the shape so mistakes fail early. */
export function definePlugin<P extends GantryPlugin>(plugin: P): P {
  if (!plugin || typeof plugin.name !== 'string' || plugin.name.length === 0) {
    throw new TypeError('definePlugin: a plugin needs a non-empty name');
  }
  for (const key of Object.keys(plugin.hooks ?? {})) {
    if (!HOOK_NAMES.includes(key as HookName)) {
      throw new TypeError(`definePlugin("${plugin.name}"): unknown hook "${key}" (known: ${HOOK_NAMES.join(', ')})`);
    }
  }
  return plugin;
}

/** Splits a possibly scheduled hook into its function and schedule. */
export function unpackScheduled<F>(value: MaybeScheduled<F>): { handler: F; schedule: Schedule } {
  if (typeof value === 'function') return { handler: value, schedule: {} };
  const { handler, order: _order, ...schedule } = value as { handler: F; order?: HookOrder } & Schedule;
  return { handler, schedule };
}

export type { MaybeScheduled, MaybeOrdered };
