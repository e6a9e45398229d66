/** Checkpoint orchestration for the Trainer: what goes into a checkpoint, and in which order it comes back. */
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { findCheckpoint, readCheckpointState, restoreTrainingState, writeCheckpoint } from './checkpoint.js';
import type { CheckpointStore } from './checkpoint-store.js';
import { GantryError, PluginError } from './errors.js';
import type { NormalGenerator } from './normal.js';
import type { GantryPlugin, PluginStateSnapshot } from './plugin.js';
import type { RandomStreams } from './random.js';
import type { Trainer } from './trainer.js';

type Snapshots = Record<string, PluginStateSnapshot>;

/** Disposes the tensors of plugin snapshots: what `save` returned, and what a checkpoint read back, is the core's. */
function disposeSnapshots(snapshots: Snapshots): void {
  for (const snapshot of Object.values(snapshots)) tf.dispose(Object.values(snapshot.tensors ?? {}));
}

/**
 * Every plugin's `state.save()`, by plugin name. Errors are PluginErrors naming the plugin; on one, the snapshots
 * already taken are disposed.
 */
async function savePluginStates(plugins: readonly GantryPlugin[]): Promise<Snapshots> {
  const snapshots: Snapshots = {};
  try {
    for (const plugin of plugins) {
      if (!plugin.state) continue;
      try {
        snapshots[plugin.name] = await plugin.state.save();
      } catch (error) {
        throw error instanceof PluginError ? error : new PluginError(plugin.name, 'state.save', error);
      }
    }
    return snapshots;
  } catch (error) {
    disposeSnapshots(snapshots);
    throw error;
  }
}

/** Hands each plugin its snapshot (in list order), then disposes every snapshot: plugins copy what they keep. */
async function loadPluginStates(plugins: readonly GantryPlugin[], snapshots: Snapshots, trainer: Trainer): Promise<void> {
  try {
    for (const plugin of plugins) {
      const snapshot = snapshots[plugin.name];
      if (!plugin.state || !snapshot) continue;
      try {
        await plugin.state.load(snapshot, trainer);
      } catch (error) {
        throw error instanceof PluginError ? error : new PluginError(plugin.name, 'state.load', error);
      }
    }
  } finally {
    disposeSnapshots(snapshots);
  }
}

/** The training state a checkpoint holds besides the plugins' own. */
export interface TrainingState {
  step: number;
  generator: LayersModel;
  discriminator: LayersModel;
  optimizers: { generator: tf.Optimizer; discriminator: tf.Optimizer };
  streams: RandomStreams;
  batchesConsumed: number;
  loss: string;
  nCritic: number;
  normalGenerator: NormalGenerator;
}

/** Writes the plugins' state and the training state as the store's next checkpoint; returns where it lives. */
export async function saveTraining(
  location: string | CheckpointStore,
  plugins: readonly GantryPlugin[],
  state: TrainingState,
  keep: number,
): Promise<string> {
  const pluginStates = await savePluginStates(plugins);
  try {
    const { core, plugins: pluginRng } = state.streams.getState();
    const { step, generator, discriminator, optimizers, batchesConsumed, loss, nCritic, normalGenerator } = state;
    return await writeCheckpoint(location, {
      step,
      generator,
      discriminator,
      optimizers,
      plugins: pluginStates,
      meta: { rng: core, pluginRng, batchesConsumed, loss, nCritic, normalGenerator },
      keep,
    });
  } finally {
    // What save() returned is the core's: the written snapshots are released here.
    disposeSnapshots(pluginStates);
  }
}

/**
 * Restores a checkpoint into `trainer`: plugin state first (a progressive-growing plugin swaps in the grown models, so
 * the models are read after), then model weights, optimizer state and every random stream. Returns the checkpoint's
 * path, step and the number of batches consumed.
 */
export async function restoreTraining(
  location: string | CheckpointStore,
  trainer: Trainer,
  streams: RandomStreams,
  warn?: (line: string) => void,
): Promise<{ path: string; step: number; batchesConsumed: number }> {
  const { store, name } = await findCheckpoint(location, warn);
  const state = await readCheckpointState(store, name);
  const written = state.meta.normalGenerator ?? 'tfjs';
  if (written !== trainer.normalGenerator) {
    throw new GantryError(
      `${store.path(name)} was written with normalGenerator "${written}" but this Trainer uses "${trainer.normalGenerator}": ` +
        `pass normalGenerator: "${written}" to resume it exactly`,
    );
  }
  await loadPluginStates(trainer.plugins, state.plugins, trainer);
  const { generator, discriminator, optimizers } = trainer;
  await restoreTrainingState(store, name, { generator, discriminator, optimizers });
  streams.setState({ core: state.meta.rng, plugins: state.meta.pluginRng ?? {} });
  return { path: store.path(name), step: state.step, batchesConsumed: state.meta.batchesConsumed };
}
