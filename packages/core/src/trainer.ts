import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { checkpointStoreAt, findCheckpoint, readCheckpointState, restoreTrainingState, writeCheckpoint, type CheckpointContents } from './checkpoint.js';
import type { CheckpointStore } from './checkpoint-store.js';
import { isDataSource, type Batch, type DataInput } from './data.js';
import { yieldToEventLoop } from './yield.js';
import { GantryError, NonFiniteLossError, PluginError, checkOptions } from './errors.js';
import { EventBus, type EventName, type GantryEvents, type Listener } from './events.js';
import { nonSaturating, type GanLoss } from './losses.js';
import {
  scheduleMatches,
  unpackScheduled,
  type GantryPlugin,
  type HookContext,
  type HookName,
  type Hooks,
  type LossContext,
  type Phase,
  type Schedule,
} from './plugin.js';
import { weightProbes } from './finite-guard.js';
import { Rng } from './random.js';
import { registerNestedGradientFixes } from './gradients.js';

export interface CheckpointOptions {
  /**
   * Where the `step-NNNNNN` checkpoints and the `latest` pointer go: a folder in Node, an IndexedDB prefix in a
   * browser, or any `CheckpointStore` (`fileCheckpoints(dir)`, `indexedDbCheckpoints(prefix)`).
   */
  dir: string | CheckpointStore;
  /** Write a checkpoint every N steps (and always at the end of a run). 0 = only at the end. */
  every?: number;
  /** How many checkpoints to keep; older ones are deleted. Default 3. */
  keep?: number;
}

export interface TrainerOptions {
  generator: LayersModel;
  discriminator: LayersModel;
  /** Real data: a DataSource (resumes exactly) or any (async) iterable of batches or tensors in [-1, 1]. */
  data: DataInput;
  /** Total number of steps (one step = nCritic discriminator updates + one generator update). */
  steps: number;
  /** Batch size requested from a DataSource. Default 64. */
  batchSize?: number;
  /** Size of the latent vector; read from the generator's first input when omitted. */
  latentDim?: number;
  /** Latent distribution: standard normal (default) or uniform on [-1, 1]. */
  latentDistribution?: 'normal' | 'uniform';
  /** Default: non-saturating (Goodfellow et al. 2014). */
  loss?: GanLoss;
  /** Separate optimizers (TTUR). Default for each: Adam(2e-4, β1 = 0.5, β2 = 0.999) as in DCGAN. */
  optimizers?: { generator?: tf.Optimizer; discriminator?: tf.Optimizer };
  /** Discriminator updates per generator update. Default 1. */
  nCritic?: number;
  /** Seed for latent draws, plugin randomness and data shuffling. Default 0. */
  seed?: number;
  plugins?: GantryPlugin[];
  checkpoint?: CheckpointOptions;
  /** Check real batches for values outside [-1, 1]: only the first batch (default) or every batch. */
  validateData?: 'first' | 'every';
  /**
   * Stop (before any checkpoint) when a model's weight L2 norm exceeds this: the run is diverging. Default: no limit
   * (non-finite weights always stop the run).
   */
  maxWeightNorm?: number;
}

const TRAINER_OPTION_KEYS = [
  'generator',
  'discriminator',
  'data',
  'steps',
  'batchSize',
  'latentDim',
  'latentDistribution',
  'loss',
  'optimizers',
  'nCritic',
  'seed',
  'plugins',
  'checkpoint',
  'validateData',
  'maxWeightNorm',
] as const;

export interface TrainResult {
  /** Steps completed in total (including steps before a resume). */
  steps: number;
  reason: 'completed' | 'stopped';
  /** The scalars of the last step. */
  lastScalars: Record<string, number>;
  lastCheckpoint?: string;
}

interface BoundHook {
  plugin: string;
  handler: (...args: any[]) => any;
  schedule: Schedule;
}

/** Scalars of one step, accumulated as tensors and read from the device once, together. */
class StepScalars {
  private readonly sums = new Map<string, { total: tf.Scalar; count: number }>();

  add(name: string, value: tf.Scalar): void {
    // A clone shares the data but has its own lifetime, so the caller may dispose `value`.
    const kept = tf.keep(tf.clone(value));
    const entry = this.sums.get(name);
    if (!entry) {
      this.sums.set(name, { total: kept, count: 1 });
      return;
    }
    const total = tf.keep(tf.add(entry.total, kept) as tf.Scalar);
    entry.total.dispose();
    kept.dispose();
    entry.total = total;
    entry.count += 1;
  }

  /**
   * One device read for all scalars (means over critic iterations) and the values of `extra` (e.g. weight probes),
   * then every tensor, `extra` included, is disposed.
   */
  async read(extra?: tf.Tensor1D): Promise<{ scalars: Record<string, number>; extra: Float32Array }> {
    const names = [...this.sums.keys()];
    const stacked = tf.tidy(() => {
      const means = names.map((n) => tf.reshape(tf.div(this.sums.get(n)!.total, this.sums.get(n)!.count), [1]));
      return tf.concat([...means, ...(extra ? [extra] : [])]);
    });
    const values = names.length > 0 || extra ? ((await stacked.data()) as Float32Array) : new Float32Array(0);
    tf.dispose([stacked, ...(extra ? [extra] : [])]);
    this.dispose();
    return { scalars: Object.fromEntries(names.map((n, i) => [n, values[i]])), extra: values.subarray(names.length) };
  }

  dispose(): void {
    for (const { total } of this.sums.values()) total.dispose();
    this.sums.clear();
  }
}

function disposeBatch(batch: Batch | undefined, keep?: Batch): void {
  if (!batch) return;
  if (batch.x !== keep?.x && batch.x !== keep?.labels) batch.x.dispose();
  if (batch.labels && batch.labels !== keep?.labels && batch.labels !== keep?.x) batch.labels.dispose();
}

function shapeOf(model: LayersModel, which: 'input' | 'output', index = 0): (number | null)[] {
  const list = which === 'input' ? model.inputs : model.outputs;
  return list[index].shape;
}

const fmtShape = (s: readonly (number | null)[]) => `[${s.map((d) => (d === null ? '?' : d)).join(', ')}]`;

/**
 * Runs the adversarial loop. Each step is `nCritic` discriminator phases and one generator phase; plugins hook in
 * at fixed points (see Hooks) and observe events on `bus`. Tensors created by the loop are owned by the loop.
 */
export class Trainer {
  readonly bus = new EventBus();
  readonly rng: Rng;
  readonly optimizers: { generator: tf.Optimizer; discriminator: tf.Optimizer };
  readonly loss: GanLoss;
  readonly nCritic: number;
  readonly batchSize: number;
  readonly latentDim: number;
  readonly latentDistribution: 'normal' | 'uniform';
  readonly plugins: readonly GantryPlugin[];
  totalSteps: number;

  private gen: LayersModel;
  private disc: LayersModel;
  private sampler?: LayersModel;
  private completed = 0;
  private batchesConsumed = 0;
  private stopRequested = false;
  private running = false;
  private needsShapeCheck = true;
  private checkedValues = false;
  private lastCheckpoint?: string;
  private lastBatch?: Batch;
  private dataIterator?: Iterator<Batch | tf.Tensor> | AsyncIterator<Batch | tf.Tensor>;
  private knownDataShape?: number[];
  private restarts = 0;
  private setupDone = false;
  private batchesAtRestart = -1;
  private readonly hooks = new Map<HookName, BoundHook[]>();
  private readonly dataRng: Rng;

  constructor(private readonly options: TrainerOptions) {
    checkOptions('Trainer', options, TRAINER_OPTION_KEYS);
    if (!options.generator || !options.discriminator) throw new GantryError('Trainer needs a generator and a discriminator');
    if (!options.data) throw new GantryError('Trainer needs data (a DataSource or an iterable of batches)');
    if (!Number.isInteger(options.steps) || options.steps < 0) {
      throw new GantryError(`Trainer option "steps" must be a non-negative integer, got ${options.steps}`);
    }
    const limit = options.maxWeightNorm;
    if (limit !== undefined && !(limit > 0 && Number.isFinite(limit))) {
      throw new GantryError(`Trainer option "maxWeightNorm" must be a positive number, got ${limit}`);
    }
    this.gen = options.generator;
    this.disc = options.discriminator;
    this.totalSteps = options.steps;
    this.batchSize = options.batchSize ?? 64;
    this.nCritic = options.nCritic ?? 1;
    if (!Number.isInteger(this.nCritic) || this.nCritic < 1) {
      throw new GantryError(`Trainer option "nCritic" must be a positive integer, got ${options.nCritic}`);
    }
    this.loss = options.loss ?? nonSaturating();
    this.latentDistribution = options.latentDistribution ?? 'normal';
    if (this.latentDistribution !== 'normal' && this.latentDistribution !== 'uniform') {
      throw new GantryError(`Trainer option "latentDistribution" must be "normal" or "uniform", got "${this.latentDistribution}"`);
    }
    const inferredLatent = shapeOf(this.gen, 'input')[1];
    this.latentDim = options.latentDim ?? (inferredLatent as number);
    if (!this.latentDim) throw new GantryError('Cannot infer latentDim from the generator input; pass latentDim');
    if (inferredLatent !== null && inferredLatent !== this.latentDim) {
      throw new GantryError(`latentDim is ${this.latentDim} but the generator's first input takes ${inferredLatent}`);
    }
    this.rng = new Rng(options.seed ?? 0);
    this.dataRng = this.rng.fork(0xda7a);
    this.optimizers = {
      generator: options.optimizers?.generator ?? tf.train.adam(2e-4, 0.5, 0.999),
      discriminator: options.optimizers?.discriminator ?? tf.train.adam(2e-4, 0.5, 0.999),
    };
    if (this.optimizers.generator === this.optimizers.discriminator) {
      throw new GantryError('The generator and discriminator need separate optimizer instances (their state differs)');
    }
    this.plugins = options.plugins ?? [];
    const names = new Set<string>();
    for (const plugin of this.plugins) {
      if (names.has(plugin.name)) throw new GantryError(`Plugin "${plugin.name}" is listed twice`);
      names.add(plugin.name);
      this.bindPlugin(plugin);
    }
  }

  // ---------------------------------------------------------------- models

  get generator(): LayersModel {
    return this.gen;
  }

  get discriminator(): LayersModel {
    return this.disc;
  }

  /** Replaces the models between steps (progressive growing). Shapes are checked again on the next batch. */
  setModels(models: { generator?: LayersModel; discriminator?: LayersModel }): void {
    if (models.generator) {
      if (this.sampler === this.gen) this.sampler = undefined;
      this.gen = models.generator;
    }
    if (models.discriminator) this.disc = models.discriminator;
    this.needsShapeCheck = true;
  }

  /** The generator used for samples and evaluation; an EMA plugin points it at its averaged copy. */
  get samplingGenerator(): LayersModel {
    return this.sampler ?? this.gen;
  }

  set samplingGenerator(model: LayersModel | undefined) {
    this.sampler = model;
  }

  get conditional(): boolean {
    return this.gen.inputs.length >= 2;
  }

  get numClasses(): number | undefined {
    if (isDataSource(this.options.data) && this.options.data.numClasses) return this.options.data.numClasses;
    if (!this.conditional) return undefined;
    const labelDim = shapeOf(this.gen, 'input', 1).at(-1);
    return labelDim && labelDim > 1 ? labelDim : undefined;
  }

  /** Shape of one real example (e.g. [28, 28, 1]); known from a DataSource or after the first batch. */
  get dataShape(): number[] {
    if (isDataSource(this.options.data)) return [...this.options.data.elementShape];
    if (this.knownDataShape) return this.knownDataShape;
    return shapeOf(this.gen, 'output').slice(1) as number[];
  }

  /** The real batch of the current step's last D phase (after transformBatch); owned by the trainer. */
  get currentBatch(): Batch | undefined {
    return this.lastBatch;
  }

  /** Steps completed so far (including those before a resume). */
  get step(): number {
    return this.completed;
  }

  get checkpointPath(): string | undefined {
    return this.lastCheckpoint;
  }

  // ---------------------------------------------------------------- sampling

  sampleLatent(n: number, rng: Rng = this.rng): tf.Tensor2D {
    const shape: [number, number] = [n, this.latentDim];
    return this.latentDistribution === 'normal'
      ? tf.randomNormal(shape, 0, 1, 'float32', rng.nextSeed())
      : tf.randomUniform(shape, -1, 1, 'float32', rng.nextSeed());
  }

  /** Generator output in inference mode from the sampling generator (caller owns the result). */
  generate(z: tf.Tensor, labels?: tf.Tensor, model: LayersModel = this.samplingGenerator): tf.Tensor {
    return tf.tidy(() => model.apply(this.modelInputs(model, z, labels), { training: false }) as tf.Tensor);
  }

  /** Model inputs: the tensor alone, or [tensor, labels] shaped for a conditional model's label input. */
  private modelInputs(model: LayersModel, x: tf.Tensor, labels?: tf.Tensor): tf.Tensor | tf.Tensor[] {
    if (model.inputs.length < 2) return x;
    if (!labels) throw new GantryError(`Model "${model.name}" is conditional (2 inputs) but the batch has no labels`);
    const labelShape = model.inputs[1].shape;
    const width = labelShape.at(-1);
    if (labelShape.length === 2 && width !== null && width !== undefined && width > 1 && labels.rank === 1) {
      return [x, tf.cast(tf.oneHot(tf.cast(labels, 'int32'), width), 'float32')];
    }
    return [x, tf.reshape(tf.cast(labels, 'float32'), [labels.shape[0], ...(labelShape.slice(1) as number[])])];
  }

  // ---------------------------------------------------------------- plugins

  private bindPlugin(plugin: GantryPlugin): void {
    for (const [name, value] of Object.entries(plugin.hooks ?? {}) as [HookName, Hooks[HookName]][]) {
      if (!value) continue;
      const { handler, schedule } = unpackScheduled(value as any);
      const list = this.hooks.get(name) ?? [];
      list.push({ plugin: plugin.name, handler: handler as BoundHook['handler'], schedule });
      this.hooks.set(name, list);
    }
    for (const [event, value] of Object.entries(plugin.on ?? {})) {
      if (!value) continue;
      const { handler, schedule } = unpackScheduled(value as any);
      this.bus.on(event as EventName, async (payload: any) => {
        const step = typeof payload?.step === 'number' ? payload.step : this.completed;
        if (!scheduleMatches(schedule, step, payload?.phase)) return;
        try {
          await (handler as (p: unknown, t: Trainer) => unknown)(payload, this);
        } catch (error) {
          throw error instanceof PluginError ? error : new PluginError(plugin.name, `listener "${event}"`, error);
        }
      });
    }
  }

  private active(name: HookName, step: number, phase?: Phase): BoundHook[] {
    return (this.hooks.get(name) ?? []).filter((h) => scheduleMatches(h.schedule, step, phase));
  }

  private call<T>(hook: BoundHook, name: HookName, fn: () => T): T {
    try {
      return fn();
    } catch (error) {
      throw error instanceof PluginError ? error : new PluginError(hook.plugin, `hook "${name}"`, error);
    }
  }

  private async callAsync(hook: BoundHook, name: HookName, fn: () => unknown): Promise<void> {
    try {
      await fn();
    } catch (error) {
      throw error instanceof PluginError ? error : new PluginError(hook.plugin, `hook "${name}"`, error);
    }
  }

  /** Subscribes to a bus event; returns the unsubscribe function. */
  on<E extends EventName>(event: E, listener: Listener<E>): () => void {
    return this.bus.on(event, listener);
  }

  emit<E extends EventName>(event: E, payload: GantryEvents[E]): Promise<void> {
    return this.bus.emit(event, payload);
  }

  // ---------------------------------------------------------------- data

  private async pullBatch(): Promise<Batch> {
    if (!this.dataIterator) {
      const data = this.options.data;
      if (isDataSource(data)) {
        this.dataIterator = data.batches({ batchSize: this.batchSize, seed: this.dataRng.seed, start: this.batchesConsumed });
      } else {
        const iterable = data as AsyncIterable<Batch | tf.Tensor> & Iterable<Batch | tf.Tensor>;
        this.dataIterator =
          typeof iterable[Symbol.asyncIterator] === 'function' ? iterable[Symbol.asyncIterator]() : iterable[Symbol.iterator]();
      }
    }
    const result = await this.dataIterator.next();
    if (result.done) {
      // A finite iterable is read again from the start, like epochs.
      this.dataIterator = undefined;
      if (isDataSource(this.options.data)) throw new GantryError('The DataSource stream ended; batches() must be endless');
      if (this.restarts++ > 0 && this.batchesConsumed === this.batchesAtRestart) {
        throw new GantryError('The data iterable yielded no batches');
      }
      this.batchesAtRestart = this.batchesConsumed;
      return this.pullBatch();
    }
    const value = result.value;
    const batch: Batch = value instanceof tf.Tensor ? { x: value } : value;
    if (!batch || !(batch.x instanceof tf.Tensor)) {
      throw new GantryError('Each data batch must be a tensor or an object { x: tensor, labels?: tensor }');
    }
    this.batchesConsumed += 1;
    this.knownDataShape ??= batch.x.shape.slice(1);
    return batch;
  }

  /** A fresh real batch, value-checked (the caller owns it). Used by the loop and by plugins such as unrolling. */
  async nextBatch(): Promise<Batch> {
    const batch = await this.pullBatch();
    if (!this.checkedValues || this.options.validateData === 'every') {
      await this.checkBatchValues(batch);
      this.checkedValues = true;
    }
    return batch;
  }

  private async checkBatchValues(batch: Batch): Promise<void> {
    const [min, max] = tf.tidy(() => [tf.min(batch.x), tf.max(batch.x)]);
    const lo = (await min.data())[0];
    const hi = (await max.data())[0];
    min.dispose();
    max.dispose();
    if (!Number.isFinite(lo) || !Number.isFinite(hi)) {
      disposeBatch(batch);
      throw new GantryError(`Real data contains NaN or Infinity (batch ${this.batchesConsumed})`);
    }
    const data = this.options.data;
    const range = isDataSource(data) && data.valueRange !== undefined ? data.valueRange : ([-1, 1] as const);
    if (range && (lo < range[0] - 1e-6 || hi > range[1] + 1e-6)) {
      disposeBatch(batch);
      throw new GantryError(
        `Real data must lie in [${range[0]}, ${range[1]}] but batch ${this.batchesConsumed} spans [${lo}, ${hi}]` +
          (hi > 1.5 && range[1] === 1 ? ' (for 8-bit images use x / 127.5 - 1)' : ''),
      );
    }
    if (this.conditional && !batch.labels) {
      disposeBatch(batch);
      throw new GantryError('The generator is conditional (2 inputs) but the data has no labels');
    }
    if (batch.labels && this.numClasses) {
      const top = tf.max(batch.labels);
      const maxLabel = (await top.data())[0];
      top.dispose();
      if (maxLabel >= this.numClasses) {
        disposeBatch(batch);
        throw new GantryError(`Label ${maxLabel} is out of range for ${this.numClasses} classes`);
      }
    }
  }

  private checkShapes(real: tf.Tensor, fake: tf.Tensor): void {
    const realShape = real.shape.slice(1);
    const fakeShape = fake.shape.slice(1);
    if (realShape.join() !== fakeShape.join()) {
      throw new GantryError(
        `Shape mismatch: the generator outputs ${fmtShape(fakeShape)} per sample but the real data is ${fmtShape(realShape)}`,
      );
    }
    const dIn = shapeOf(this.disc, 'input').slice(1);
    if (dIn.some((d, i) => d !== null && d !== realShape[i]) || dIn.length !== realShape.length) {
      throw new GantryError(
        `Shape mismatch: the discriminator takes ${fmtShape(dIn)} per sample but the real data is ${fmtShape(realShape)}`,
      );
    }
    this.needsShapeCheck = false;
  }

  // ---------------------------------------------------------------- phases

  private context(step: number, phase: Phase, criticIndex: number, scalars: StepScalars, plugin: () => string): HookContext {
    return {
      trainer: this,
      step,
      phase,
      criticIndex,
      rng: this.rng,
      report: (name, value) => scalars.add(`${plugin()}/${name}`, value),
    };
  }

  private trainableVariables(model: LayersModel): tf.Variable[] {
    return model.trainableWeights.map((w) => w.read() as tf.Variable);
  }

  /** Sums the plugins' loss terms into `base`, recording each under `<phase>/<plugin>/<term>`. */
  private addLossTerms(base: tf.Scalar, ctx: LossContext, scalars: StepScalars, current: { plugin: string }): tf.Scalar {
    const parts: tf.Scalar[] = [base];
    for (const hook of this.active('lossTerms', ctx.step, ctx.phase)) {
      current.plugin = hook.plugin;
      const out = this.call(hook, 'lossTerms', () => hook.handler(ctx)) as tf.Scalar | Record<string, tf.Scalar> | void;
      if (!out) continue;
      const terms = out instanceof tf.Tensor ? { [hook.plugin]: out } : out;
      for (const [term, value] of Object.entries(terms)) {
        if (!(value instanceof tf.Tensor) || value.size !== 1) {
          throw new PluginError(hook.plugin, 'hook "lossTerms"', `term "${term}" must be a scalar tensor`);
        }
        const label = term === hook.plugin ? `${ctx.phase}/${hook.plugin}` : `${ctx.phase}/${hook.plugin}/${term}`;
        const scalar = tf.reshape(value, []) as tf.Scalar;
        scalars.add(label, scalar);
        parts.push(scalar);
      }
    }
    return parts.length === 1 ? base : (tf.addN(parts) as tf.Scalar);
  }

  private applyGrads(
    optimizer: tf.Optimizer,
    grads: tf.NamedTensorMap,
    ctx: HookContext,
    current: { plugin: string },
    runHooks: boolean,
  ): void {
    let current_grads = grads;
    if (runHooks) {
      for (const hook of this.active('transformGrads', ctx.step, ctx.phase)) {
        current.plugin = hook.plugin;
        const next = this.call(hook, 'transformGrads', () => hook.handler(current_grads, ctx)) as tf.NamedTensorMap | void;
        if (next && next !== current_grads) {
          for (const [name, g] of Object.entries(current_grads)) if (next[name] !== g) g.dispose();
          current_grads = next;
        }
      }
    }
    // An empty map means "skip this update" (adaptive balancing): applying it would still advance Adam's step count.
    if (Object.keys(current_grads).length > 0) optimizer.applyGradients(current_grads);
    tf.dispose(Object.values(current_grads));
  }

  private discriminate = (x: tf.Tensor, labels?: tf.Tensor): tf.Tensor =>
    this.disc.apply(this.modelInputs(this.disc, x, labels), { training: true }) as tf.Tensor;

  /** `discriminate` behind the plugins' `augment` waterfall, for one phase. */
  private augmentedDiscriminate(ctx: HookContext, current: { plugin: string }): (x: tf.Tensor, labels?: tf.Tensor) => tf.Tensor {
    const hooks = this.active('augment', ctx.step, ctx.phase);
    if (hooks.length === 0) return this.discriminate;
    return (x, labels) => {
      let input = x;
      for (const hook of hooks) {
        current.plugin = hook.plugin;
        const next = this.call(hook, 'augment', () => hook.handler(input, ctx)) as tf.Tensor | void;
        if (next) input = next;
      }
      return this.discriminate(input, labels);
    };
  }

  /**
   * One discriminator update on `batch`: loss + loss terms, gradients, apply. With `runHooks` false it skips
   * transformGrads/afterApply, which is what an unrolling plugin wants for its lookahead updates.
   */
  discriminatorUpdate(
    batch: Batch,
    options: { step?: number; criticIndex?: number; scalars?: StepScalars; runHooks?: boolean; optimizer?: tf.Optimizer } = {},
  ): void {
    const optimizer = options.optimizer ?? this.optimizers.discriminator;
    const step = options.step ?? this.completed + 1;
    const scalars = options.scalars ?? new StepScalars();
    const current = { plugin: 'core' };
    const ctx = this.context(step, 'D', options.criticIndex ?? 0, scalars, () => current.plugin);
    const z = this.sampleLatent(batch.x.shape[0]);
    const fake = tf.tidy(() => this.gen.apply(this.modelInputs(this.gen, z, batch.labels), { training: true }) as tf.Tensor);
    const discriminate = this.augmentedDiscriminate(ctx, current);
    try {
      if (this.needsShapeCheck) this.checkShapes(batch.x, fake);
      const { value, grads } = optimizer.computeGradients(() => {
        const realLogits = discriminate(batch.x, batch.labels);
        const fakeLogits = discriminate(fake, batch.labels);
        const base = this.loss.discriminatorLoss(realLogits, fakeLogits);
        scalars.add('d_loss', base);
        const lossCtx: LossContext = {
          ...ctx,
          real: batch.x,
          fake,
          labels: batch.labels,
          realLogits,
          fakeLogits,
          discriminate,
          generator: this.gen,
          discriminator: this.disc,
        };
        return this.addLossTerms(base, lossCtx, scalars, current);
      }, this.trainableVariables(this.disc));
      value.dispose();
      this.applyGrads(optimizer, grads, ctx, current, options.runHooks !== false);
    } finally {
      z.dispose();
      fake.dispose();
      if (!options.scalars) scalars.dispose();
    }
  }

  private async discriminatorPhase(step: number, criticIndex: number, scalars: StepScalars): Promise<void> {
    const current = { plugin: 'core' };
    const ctx = this.context(step, 'D', criticIndex, scalars, () => current.plugin);
    for (const hook of this.active('beforePhase', step, 'D')) {
      current.plugin = hook.plugin;
      await this.callAsync(hook, 'beforePhase', () => hook.handler(ctx));
    }
    let batch = await this.nextBatch();
    for (const hook of this.active('transformBatch', step, 'D')) {
      current.plugin = hook.plugin;
      const next = this.call(hook, 'transformBatch', () => hook.handler(batch, ctx)) as Batch | void;
      if (next && next !== batch) {
        disposeBatch(batch, next);
        batch = next;
      }
    }
    disposeBatch(this.lastBatch, batch);
    this.lastBatch = batch;
    this.discriminatorUpdate(batch, { step, criticIndex, scalars, runHooks: true });
    for (const hook of this.active('afterApply', step, 'D')) {
      current.plugin = hook.plugin;
      this.call(hook, 'afterApply', () => hook.handler(ctx));
    }
    await this.bus.emit('phase:end', { step, phase: 'D', criticIndex });
  }

  private async generatorPhase(step: number, scalars: StepScalars): Promise<void> {
    const current = { plugin: 'core' };
    const ctx = this.context(step, 'G', 0, scalars, () => current.plugin);
    for (const hook of this.active('beforePhase', step, 'G')) {
      current.plugin = hook.plugin;
      await this.callAsync(hook, 'beforePhase', () => hook.handler(ctx));
    }
    const real = this.lastBatch!;
    const z = this.sampleLatent(real.x.shape[0]);
    const discriminate = this.augmentedDiscriminate(ctx, current);
    try {
      const { value, grads } = this.optimizers.generator.computeGradients(() => {
        const fake = this.gen.apply(this.modelInputs(this.gen, z, real.labels), { training: true }) as tf.Tensor;
        const fakeLogits = discriminate(fake, real.labels);
        const lossCtx: LossContext = {
          ...ctx,
          real: real.x,
          fake,
          labels: real.labels,
          fakeLogits,
          discriminate,
          generator: this.gen,
          discriminator: this.disc,
        };
        // Relativistic-style losses may want D(real); computed only when the loss declares the parameter.
        const realLogits = this.loss.generatorLoss.length >= 2 ? discriminate(real.x, real.labels) : undefined;
        if (realLogits) lossCtx.realLogits = realLogits;
        const base = this.loss.generatorLoss(fakeLogits, realLogits);
        scalars.add('g_loss', base);
        return this.addLossTerms(base, lossCtx, scalars, current);
      }, this.trainableVariables(this.gen));
      value.dispose();
      this.applyGrads(this.optimizers.generator, grads, ctx, current, true);
    } finally {
      z.dispose();
    }
    for (const hook of this.active('afterApply', step, 'G')) {
      current.plugin = hook.plugin;
      this.call(hook, 'afterApply', () => hook.handler(ctx));
    }
    await this.bus.emit('phase:end', { step, phase: 'G', criticIndex: 0 });
  }

  // ---------------------------------------------------------------- run

  /**
   * Runs the plugins' setup hooks once. `train()` calls it; call it yourself after `restore()` to sample from a
   * checkpoint without training (an EMA plugin, say, points the sampling generator at its restored copy here).
   */
  async setup(): Promise<void> {
    if (this.setupDone) return;
    this.setupDone = true;
    // Users who set a backend with tf.setBackend instead of @gantry/engine's useBackend still get correct nested
    // gradients (idempotent). The engine's faster kernels come with useBackend only.
    registerNestedGradientFixes();
    for (const hook of this.hooks.get('setup') ?? []) {
      await this.callAsync(hook, 'setup', () => hook.handler(this));
    }
  }

  /** Asks the loop to stop after the current step; `train()` then writes a checkpoint (if configured) and resolves. */
  stop(): void {
    this.stopRequested = true;
  }

  async train(): Promise<TrainResult> {
    if (this.running) throw new GantryError('train() is already running');
    this.running = true;
    this.stopRequested = false;
    let lastScalars: Record<string, number> = {};
    let reason: 'completed' | 'stopped' = 'completed';
    const every = this.options.checkpoint?.every ?? 0;
    let savedAt = -1;
    try {
      await this.setup();
      // Half-written checkpoints of killed runs would keep a full disk full.
      if (this.options.checkpoint) await checkpointStoreAt(this.options.checkpoint.dir).removeLeftovers?.();
      await this.bus.emit('run:start', { trainer: this, startStep: this.completed, totalSteps: this.totalSteps });
      while (this.completed < this.totalSteps) {
        if (this.stopRequested) {
          reason = 'stopped';
          break;
        }
        // Let timers, I/O and signal handlers (Ctrl-C → stop()) run, and a page repaint.
        await yieldToEventLoop();
        if (this.stopRequested) {
          reason = 'stopped';
          break;
        }
        const step = this.completed + 1;
        const started = performance.now();
        const scalars = new StepScalars();
        try {
          const current = { plugin: 'core' };
          const ctx = this.context(step, 'D', 0, scalars, () => current.plugin);
          for (const hook of this.active('beforeStep', step)) {
            current.plugin = hook.plugin;
            await this.callAsync(hook, 'beforeStep', () => hook.handler({ trainer: this, step, rng: this.rng, report: ctx.report }));
          }
          for (let c = 0; c < this.nCritic; c++) await this.discriminatorPhase(step, c, scalars);
          await this.generatorPhase(step, scalars);
          // The updated weights are checked in the same device read as the scalars: no extra sync per step.
          const probes = weightProbes({ generator: this.gen, discriminator: this.disc }, this.options.maxWeightNorm);
          const read = await scalars.read(probes.tensor);
          lastScalars = read.scalars;
          for (const [name, value] of Object.entries(lastScalars)) {
            if (!Number.isFinite(value)) throw new NonFiniteLossError(step, name, value, this.lastCheckpoint);
          }
          probes.check(read.extra, step, this.lastCheckpoint);
        } finally {
          scalars.dispose();
        }
        this.completed = step;
        await this.bus.emit('step:end', { step, scalars: lastScalars, stepMs: performance.now() - started });
        if (every > 0 && step % every === 0 && this.options.checkpoint) {
          await this.saveCheckpoint();
          savedAt = step;
        }
      }
      if (this.options.checkpoint && savedAt !== this.completed && this.completed > 0) await this.saveCheckpoint();
      await this.bus.emit('run:end', { step: this.completed, reason });
      return { steps: this.completed, reason, lastScalars, lastCheckpoint: this.lastCheckpoint };
    } catch (error) {
      const err = error instanceof Error ? error : new Error(String(error));
      await this.bus.emit('run:end', { step: this.completed, reason: 'error', error: err }).catch(() => undefined);
      throw err;
    } finally {
      this.running = false;
      disposeBatch(this.lastBatch);
      this.lastBatch = undefined;
      for (const hook of this.hooks.get('teardown') ?? []) {
        await this.callAsync(hook, 'teardown', () => hook.handler(this)).catch((e) => console.error(e.message));
      }
    }
  }

  // ---------------------------------------------------------------- checkpoints

  /** Writes a checkpoint of the whole training state into the configured store (or `dir`) and returns its path. */
  async saveCheckpoint(dir: string | CheckpointStore | undefined = this.options.checkpoint?.dir): Promise<string> {
    if (!dir) throw new GantryError('saveCheckpoint needs a folder (pass one or set the checkpoint option)');
    const pluginStates: CheckpointContents['plugins'] = {};
    for (const plugin of this.plugins) {
      if (plugin.state) pluginStates[plugin.name] = await plugin.state.save();
    }
    const path = await writeCheckpoint(dir, {
      step: this.completed,
      generator: this.gen,
      discriminator: this.disc,
      optimizers: this.optimizers,
      plugins: pluginStates,
      meta: { rng: this.rng.getState(), batchesConsumed: this.batchesConsumed, loss: this.loss.name, nCritic: this.nCritic },
      keep: this.options.checkpoint?.keep ?? 3,
    });
    this.lastCheckpoint = path;
    await this.bus.emit('checkpoint', { step: this.completed, dir: path });
    return path;
  }

  /**
   * Restores the full training state from a checkpoint folder, a checkpoints folder or run folder (whose `latest` is
   * used), an IndexedDB prefix in a browser, or a `CheckpointStore` (its latest). The models must be built the same
   * way as when the checkpoint was written. A damaged newest checkpoint folder is reported to `warn` (default
   * console.warn) and the newest intact one is used (see resolveCheckpointDir).
   */
  async restore(dir: string | CheckpointStore, options: { warn?: (line: string) => void } = {}): Promise<string> {
    if (this.running) throw new GantryError('restore() cannot run while training');
    const { store, name } = await findCheckpoint(dir, options.warn);
    const path = store.path(name);
    const state = await readCheckpointState(store, name);
    try {
      // Plugins first: one that reshapes the models (progressive growing) swaps them in before weights are loaded.
      for (const plugin of this.plugins) {
        const snapshot = state.plugins[plugin.name];
        if (plugin.state && snapshot) await plugin.state.load(snapshot, this);
      }
    } finally {
      for (const snapshot of Object.values(state.plugins)) tf.dispose(Object.values(snapshot.tensors ?? {}));
    }
    await restoreTrainingState(store, name, { generator: this.gen, discriminator: this.disc, optimizers: this.optimizers });
    this.rng.setState(state.meta.rng);
    this.completed = state.step;
    this.batchesConsumed = state.meta.batchesConsumed;
    this.dataIterator = undefined;
    this.lastCheckpoint = path;
    return path;
  }
}

export type { StepScalars };
