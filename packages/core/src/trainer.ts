import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { checkpointStoreAt } from './checkpoint.js';
import type { CheckpointStore } from './checkpoint-store.js';
import { isDataSource, type Batch } from './data.js';
import { GantryError, NonFiniteLossError, PluginError } from './errors.js';
import { EventBus, type EventName, type GantryEvents, type Listener } from './events.js';
import { weightProbes } from './finite-guard.js';
import { registerNestedGradientFixes } from './gradients.js';
import type { GanLoss } from './losses.js';
import { HookRunner, bindListeners, disposeReplaced, type BoundHook } from './hooks.js';
import { addLossTerms } from './loss-terms.js';
import { checkSampleShapes, classCount, drawLatents, modelInputs, shapeOf } from './model-inputs.js';
import type { NormalGenerator } from './normal.js';
import { resolveTrainerOptions, type TrainResult, type TrainerOptions } from './options.js';
import type { GantryPlugin, HookContext, Phase } from './plugin.js';
import { RandomStreams, type Rng } from './random.js';
import { RealData, disposeBatch } from './real-data.js';
import { StepScalars } from './step-scalars.js';
import { restoreTraining, saveTraining } from './training-checkpoint.js';
import { yieldToEventLoop } from './yield.js';

export type { CheckpointOptions, StepRunner, TrainerOptions, TrainResult } from './options.js';

/** Options of one discriminator update outside the loop's own (see `discriminatorUpdate`). */
export interface DiscriminatorUpdateOptions {
  step?: number;
  criticIndex?: number;
  scalars?: StepScalars;
  /** false: no skipUpdate/transformGrads/afterApply hooks (lookahead updates). Default true. */
  runHooks?: boolean;
  optimizer?: tf.Optimizer;
  /**
   * The stream the fake batch's latents are drawn from. Default: the core's. A plugin's lookahead updates pass its
   * own `ctx.rng`, so they leave the core's latents as they would be without the plugin.
   */
  rng?: Rng;
}

/**
 * Runs the adversarial loop. Each step is `nCritic` discriminator phases and one generator phase; plugins hook in at
 * fixed points (see Hooks, run by one HookRunner) and observe events on `bus`. Tensors created by the loop, and
 * whatever a hook returns, are owned by the loop.
 */
export class Trainer {
  readonly bus = new EventBus();
  /** The core's random stream: latents (the data order is a fork of it). Plugins draw from their own (`ctx.rng`). */
  readonly rng: Rng;
  readonly optimizers: { generator: tf.Optimizer; discriminator: tf.Optimizer };
  readonly loss: GanLoss;
  readonly nCritic: number;
  readonly batchSize: number;
  readonly latentDim: number;
  readonly latentDistribution: 'normal' | 'uniform';
  /** What draws normal latents (the `normalGenerator` option). */
  readonly normalGenerator: NormalGenerator;
  readonly plugins: readonly GantryPlugin[];
  totalSteps: number;

  private gen: LayersModel;
  private disc: LayersModel;
  private sampler?: LayersModel;
  private completed = 0;
  private stopRequested = false;
  private running = false;
  private needsShapeCheck = true;
  private lastCheckpoint?: string;
  private lastBatch?: Batch;
  private setupDone = false;
  private readonly hooks: HookRunner;
  private readonly data: RealData;
  private readonly streams: RandomStreams;

  constructor(private readonly options: TrainerOptions) {
    const resolved = resolveTrainerOptions(options);
    this.gen = options.generator;
    this.disc = options.discriminator;
    this.totalSteps = options.steps;
    this.batchSize = resolved.batchSize;
    this.nCritic = resolved.nCritic;
    this.loss = resolved.loss;
    this.latentDistribution = resolved.latentDistribution;
    this.normalGenerator = resolved.normalGenerator;
    this.latentDim = resolved.latentDim;
    this.optimizers = resolved.optimizers;
    this.plugins = resolved.plugins;
    this.hooks = new HookRunner(this.plugins);
    this.streams = new RandomStreams(resolved.seed, this.plugins.map((p) => p.name));
    this.rng = this.streams.core;
    this.data = new RealData(options.data, {
      batchSize: this.batchSize,
      seed: this.rng.fork(0xda7a).seed,
      validate: options.validateData,
      conditional: () => this.conditional,
      numClasses: () => this.numClasses,
    });
    bindListeners(this.plugins, this.bus, () => this.completed, (handler, payload) => handler(payload, this));
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
    return classCount(this.gen, this.options.data);
  }

  /** Shape of one real example (e.g. [28, 28, 1]); known from a DataSource or after the first batch. */
  get dataShape(): number[] {
    if (isDataSource(this.options.data)) return [...this.options.data.elementShape];
    return this.data.exampleShape ?? (shapeOf(this.gen, 'output').slice(1) as number[]);
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

  /**
   * The random stream of the plugin named `plugin` (the one its hooks get as `ctx.rng`), derived from the seed and the
   * name: for setup hooks and listeners, which get no context. Checkpointed with the trainer.
   */
  rngFor(plugin: string): Rng {
    return this.streams.plugin(plugin);
  }

  // ---------------------------------------------------------------- sampling

  /** n latent vectors from the run's latent distribution, drawn from `rng` (default: the core's stream). */
  sampleLatent(n: number, rng: Rng = this.rng): tf.Tensor2D {
    return drawLatents(n, this.latentDim, this.latentDistribution, rng, this.normalGenerator);
  }

  /** Generator output in inference mode from the sampling generator (caller owns the result). */
  generate(z: tf.Tensor, labels?: tf.Tensor, model: LayersModel = this.samplingGenerator): tf.Tensor {
    return tf.tidy(() => model.apply(modelInputs(model, z, labels), { training: false }) as tf.Tensor);
  }

  // ---------------------------------------------------------------- events and data

  /** Subscribes to a bus event; returns the unsubscribe function. */
  on<E extends EventName>(event: E, listener: Listener<E>): () => void {
    return this.bus.on(event, listener);
  }

  emit<E extends EventName>(event: E, payload: GantryEvents[E]): Promise<void> {
    return this.bus.emit(event, payload);
  }

  /** A fresh real batch, value-checked (the caller owns it). */
  nextBatch(): Promise<Batch> {
    return this.data.next();
  }

  // ---------------------------------------------------------------- phases

  /** The context a plugin's hook gets: its own name, and `report` files scalars under it. */
  private contextFor(hook: BoundHook, step: number, phase: Phase, criticIndex: number, scalars: StepScalars): HookContext {
    return {
      trainer: this,
      plugin: hook.plugin,
      step,
      phase,
      criticIndex,
      rng: this.streams.plugin(hook.plugin),
      report: (name, value) => scalars.add(`${hook.plugin}/${name}`, value),
    };
  }

  private trainableVariables(model: LayersModel): tf.Variable[] {
    return model.trainableWeights.map((w) => w.read() as tf.Variable);
  }

  /** skipUpdate, transformGrads, apply; the gradients are disposed in every case. */
  private applyGrads(optimizer: tf.Optimizer, grads: tf.NamedTensorMap, step: number, phase: Phase, criticIndex: number, scalars: StepScalars): void {
    let final = grads;
    try {
      const ctx = (hook: BoundHook) => this.contextFor(hook, step, phase, criticIndex, scalars);
      if (this.hooks.collect<boolean>('skipUpdate', step, phase, (hook) => [ctx(hook)]).some((r) => r.value === true)) return;
      final = this.hooks.waterfall('transformGrads', step, phase, grads, (hook, g) => [g, ctx(hook)], (old, next, hook) => {
        if (typeof next !== 'object' || Object.keys(next).length === 0) {
          throw new PluginError(hook.plugin, 'hook "transformGrads"', 'returned no gradients; return true from skipUpdate to skip an update');
        }
        disposeReplaced(old, next);
      });
      optimizer.applyGradients(final);
    } finally {
      tf.dispose(Object.values(final));
      if (final !== grads) tf.dispose(Object.values(grads));
    }
  }

  private discriminate = (x: tf.Tensor, labels?: tf.Tensor): tf.Tensor =>
    this.disc.apply(modelInputs(this.disc, x, labels), { training: true }) as tf.Tensor;

  /**
   * `discriminate` behind the plugins' `augment` waterfall, for one phase. Runs inside the gradient computation:
   * intermediate tensors belong to the phase's scope.
   */
  private augmentedDiscriminate(step: number, phase: Phase, criticIndex: number, scalars: StepScalars): (x: tf.Tensor, labels?: tf.Tensor) => tf.Tensor {
    if (this.hooks.active('augment', step, phase).length === 0) return this.discriminate;
    return (x, labels) => {
      const input = this.hooks.waterfall('augment', step, phase, x, (hook, current) => [current, this.contextFor(hook, step, phase, criticIndex, scalars)], (_old, next, hook) => {
        if (!(next instanceof tf.Tensor)) throw new PluginError(hook.plugin, 'hook "augment"', 'must return a tensor or nothing');
      });
      return this.discriminate(input, labels);
    };
  }

  /**
   * One discriminator update on `batch`: loss + loss terms, gradients, apply. With `runHooks` false it skips
   * skipUpdate/transformGrads/afterApply, which is what an unrolling plugin wants for its lookahead updates.
   */
  discriminatorUpdate(batch: Batch, options: DiscriminatorUpdateOptions = {}): void {
    const optimizer = options.optimizer ?? this.optimizers.discriminator;
    const step = options.step ?? this.completed + 1;
    const criticIndex = options.criticIndex ?? 0;
    const scalars = options.scalars ?? new StepScalars();
    const z = this.sampleLatent(batch.x.shape[0], options.rng);
    const fake = tf.tidy(() => this.gen.apply(modelInputs(this.gen, z, batch.labels), { training: true }) as tf.Tensor);
    const discriminate = this.augmentedDiscriminate(step, 'D', criticIndex, scalars);
    try {
      if (this.needsShapeCheck) {
        checkSampleShapes(batch.x, fake, this.disc);
        this.needsShapeCheck = false;
      }
      const { value, grads } = optimizer.computeGradients(() => {
        const realLogits = discriminate(batch.x, batch.labels);
        const fakeLogits = discriminate(fake, batch.labels);
        const loss = this.loss.discriminatorLoss(realLogits, fakeLogits);
        scalars.add('d_loss', loss);
        const lossCtx = { real: batch.x, fake, labels: batch.labels, realLogits, fakeLogits, discriminate, generator: this.gen, discriminator: this.disc };
        return addLossTerms(this.hooks, loss, (hook) => ({ ...lossCtx, ...this.contextFor(hook, step, 'D', criticIndex, scalars) }), { step, phase: 'D' }, scalars);
      }, this.trainableVariables(this.disc));
      value.dispose();
      if (options.runHooks === false) {
        optimizer.applyGradients(grads);
        tf.dispose(Object.values(grads));
      } else {
        this.applyGrads(optimizer, grads, step, 'D', criticIndex, scalars);
      }
    } finally {
      z.dispose();
      fake.dispose();
      if (!options.scalars) scalars.dispose();
    }
  }

  private async beforePhase(step: number, phase: Phase, criticIndex: number, scalars: StepScalars): Promise<void> {
    await this.hooks.sequential('beforePhase', step, phase, (hook) => [this.contextFor(hook, step, phase, criticIndex, scalars)]);
  }

  private afterApply(step: number, phase: Phase, criticIndex: number, scalars: StepScalars): void {
    this.hooks.sync('afterApply', step, phase, (hook) => [this.contextFor(hook, step, phase, criticIndex, scalars)]);
  }

  private async discriminatorPhase(step: number, criticIndex: number, scalars: StepScalars): Promise<void> {
    await this.beforePhase(step, 'D', criticIndex, scalars);
    const pulled = await this.nextBatch();
    let batch = pulled;
    try {
      batch = this.hooks.waterfall(
        'transformBatch',
        step,
        'D',
        pulled,
        (hook, b) => [b, this.contextFor(hook, step, 'D', criticIndex, scalars)],
        (old, next, hook) => {
          if (!next || !(next.x instanceof tf.Tensor)) {
            throw new PluginError(hook.plugin, 'hook "transformBatch"', 'must return a batch { x: tensor, labels?: tensor } or nothing');
          }
          disposeBatch(old, next);
        },
      );
    } catch (error) {
      disposeBatch(pulled);
      throw error;
    }
    disposeBatch(this.lastBatch, batch);
    this.lastBatch = batch;
    this.discriminatorUpdate(batch, { step, criticIndex, scalars, runHooks: true });
    this.afterApply(step, 'D', criticIndex, scalars);
    await this.bus.emit('phase:end', { step, phase: 'D', criticIndex });
  }

  private async generatorPhase(step: number, scalars: StepScalars): Promise<void> {
    await this.beforePhase(step, 'G', 0, scalars);
    const real = this.lastBatch!;
    const z = this.sampleLatent(real.x.shape[0]);
    const discriminate = this.augmentedDiscriminate(step, 'G', 0, scalars);
    try {
      const { value, grads } = this.optimizers.generator.computeGradients(() => {
        const fake = this.gen.apply(modelInputs(this.gen, z, real.labels), { training: true }) as tf.Tensor;
        const fakeLogits = discriminate(fake, real.labels);
        // Relativistic-style losses may want D(real); computed only when the loss declares the parameter.
        const realLogits = this.loss.generatorLoss.length >= 2 ? discriminate(real.x, real.labels) : undefined;
        const lossCtx = { real: real.x, fake, labels: real.labels, fakeLogits, realLogits, discriminate, generator: this.gen, discriminator: this.disc };
        const contextFor = (hook: BoundHook) => ({ ...lossCtx, ...this.contextFor(hook, step, 'G', 0, scalars) });
        const base = this.loss.generatorLoss(fakeLogits, realLogits);
        scalars.add('g_loss', base);
        const loss = this.hooks.waterfall(
          'generatorLoss',
          step,
          'G',
          base,
          (hook, current) => [current, contextFor(hook)],
          (_old, next, hook) => {
            if (!(next instanceof tf.Tensor) || next.size !== 1) {
              throw new PluginError(hook.plugin, 'hook "generatorLoss"', 'must return a scalar tensor or nothing');
            }
            scalars.add(`G/${hook.plugin}`, next);
          },
        );
        return addLossTerms(this.hooks, tf.reshape(loss, []) as tf.Scalar, contextFor, { step, phase: 'G' }, scalars);
      }, this.trainableVariables(this.gen));
      value.dispose();
      this.applyGrads(this.optimizers.generator, grads, step, 'G', 0, scalars);
    } finally {
      z.dispose();
    }
    this.afterApply(step, 'G', 0, scalars);
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
    await this.hooks.sequential('setup', undefined, undefined, () => [this]);
  }

  /**
   * Asks the loop to stop after the current step; `train()` then writes a checkpoint (if configured) and resolves.
   * Asked before `train()` (a Ctrl-C while a checkpoint loads), the next `train()` stops before its first step.
   */
  stop(): void {
    this.stopRequested = true;
  }

  private async runStep(step: number): Promise<Record<string, number>> {
    const scalars = new StepScalars();
    try {
      await this.hooks.sequential('beforeStep', step, undefined, (hook) => {
        const { phase: _p, criticIndex: _c, ...ctx } = this.contextFor(hook, step, 'D', 0, scalars);
        return [ctx];
      });
      for (let c = 0; c < this.nCritic; c++) await this.discriminatorPhase(step, c, scalars);
      await this.generatorPhase(step, scalars);
      // The updated weights are checked in the same device read as the scalars: no extra sync per step.
      const probes = weightProbes({ generator: this.gen, discriminator: this.disc }, this.options.maxWeightNorm);
      const read = await scalars.read(probes.tensor);
      for (const [name, value] of Object.entries(read.scalars)) {
        if (!Number.isFinite(value)) throw new NonFiniteLossError(step, name, value, this.lastCheckpoint);
      }
      await probes.check(read.extra, step, this.lastCheckpoint);
      return read.scalars;
    } finally {
      scalars.dispose();
    }
  }

  async train(): Promise<TrainResult> {
    if (this.running) throw new GantryError('train() is already running');
    this.running = true;
    const startStep = this.completed;
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
        lastScalars = this.options.stepRunner ? await this.options.stepRunner(() => this.runStep(step), step) : await this.runStep(step);
        this.completed = step;
        await this.bus.emit('step:end', { step, scalars: lastScalars, stepMs: performance.now() - started });
        if (every > 0 && step % every === 0 && this.options.checkpoint) {
          await this.saveCheckpoint();
          savedAt = step;
        }
      }
      // Nothing new to save when no step ran (stopped at once after a restore: the restored checkpoint is the latest).
      if (this.options.checkpoint && savedAt !== this.completed && this.completed > startStep) await this.saveCheckpoint();
      await this.bus.emit('run:end', { step: this.completed, reason });
      return { steps: this.completed, reason, lastScalars, lastCheckpoint: this.lastCheckpoint };
    } catch (error) {
      const err = error instanceof Error ? error : new Error(String(error));
      await this.bus.emit('run:end', { step: this.completed, reason: 'error', error: err }).catch(() => undefined);
      throw err;
    } finally {
      this.running = false;
      this.stopRequested = false;
      disposeBatch(this.lastBatch);
      this.lastBatch = undefined;
      // Every teardown runs, whatever the others did: each closes its own files.
      await this.hooks.settled('teardown', () => [this], (e) => console.error(e.message));
    }
  }

  // ---------------------------------------------------------------- checkpoints

  /** Writes a checkpoint of the whole training state into the configured store (or `dir`) and returns its path. */
  async saveCheckpoint(dir: string | CheckpointStore | undefined = this.options.checkpoint?.dir): Promise<string> {
    if (!dir) throw new GantryError('saveCheckpoint needs a folder (pass one or set the checkpoint option)');
    const { gen: generator, disc: discriminator, optimizers, streams, loss, nCritic, normalGenerator } = this;
    const batchesConsumed = this.data.batchesConsumed;
    const state = { step: this.completed, generator, discriminator, optimizers, streams, batchesConsumed, loss: loss.name, nCritic, normalGenerator };
    this.lastCheckpoint = await saveTraining(dir, this.plugins, state, this.options.checkpoint?.keep ?? 3);
    await this.bus.emit('checkpoint', { step: this.completed, dir: this.lastCheckpoint! });
    return this.lastCheckpoint!;
  }

  /**
   * Restores the full training state from a checkpoint folder, a checkpoints folder or run folder (whose `latest` is
   * used), an IndexedDB prefix in a browser, or a `CheckpointStore` (its latest). The models must be built the same
   * way as when the checkpoint was written. A damaged newest checkpoint folder is reported to `warn` (default
   * console.warn) and the newest intact one is used (see resolveCheckpointDir).
   */
  async restore(dir: string | CheckpointStore, options: { warn?: (line: string) => void } = {}): Promise<string> {
    if (this.running) throw new GantryError('restore() cannot run while training');
    const { path, step, batchesConsumed } = await restoreTraining(dir, this, this.streams, options.warn);
    this.completed = step;
    this.data.resumeAt(batchesConsumed);
    this.lastCheckpoint = path;
    return path;
  }
}

export type { StepScalars };
