import * as tf from '@tensorflow/tfjs-core';
import { PluginError } from './errors.js';
import type { GantryPlugin, PluginStateSnapshot } from './plugin.js';
import type { Trainer } from './trainer.js';

type Snapshots = Record<string, PluginStateSnapshot>;

/** Disposes the tensors of plugin snapshots: what `save` returned, and what a checkpoint read back, is the core's. */
export function disposeSnapshots(snapshots: Snapshots): void {
  for (const snapshot of Object.values(snapshots)) tf.dispose(Object.values(snapshot.tensors ?? {}));
}

/**
 * Every plugin's `state.save()`, by plugin name. Errors are PluginErrors naming the plugin; on one, the snapshots
 * already taken are disposed.
 */
export async function savePluginStates(plugins: readonly GantryPlugin[]): Promise<Snapshots> {
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
export async function loadPluginStates(plugins: readonly GantryPlugin[], snapshots: Snapshots, trainer: Trainer): Promise<void> {
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
