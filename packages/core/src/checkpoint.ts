import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { indexedDbCheckpoints, newestIntact, type CheckpointPart, type CheckpointStore } from './checkpoint-store.js';
import { GantryError } from './errors.js';
import type { NormalGenerator } from './normal.js';
import type { PluginStateSnapshot } from './plugin.js';
import type { RngState } from './random.js';

type NamedTensor = { name: string; tensor: tf.Tensor };

/** Checkpoint layout version; bump when the files change meaning. */
export const CHECKPOINT_FORMAT = 1;

export interface CheckpointMeta {
  /** The core's random stream. */
  rng: RngState;
  /** Draws taken by each plugin's random stream that has drawn (absent: 0; checkpoints written before plugins had their own streams have none). */
  pluginRng?: Record<string, number>;
  batchesConsumed: number;
  loss: string;
  nCritic: number;
  /** The Trainer's normalGenerator (absent in checkpoints written before the option: 'tfjs'). */
  normalGenerator?: NormalGenerator;
}

export interface CheckpointContents {
  step: number;
  generator: LayersModel;
  discriminator: LayersModel;
  optimizers: { generator: tf.Optimizer; discriminator: tf.Optimizer };
  plugins: Record<string, PluginStateSnapshot>;
  meta: CheckpointMeta;
  keep: number;
}

export const stepFolderName = (step: number) => `step-${String(step).padStart(6, '0')}`;

/**
 * How a checkpoint location given as a string is opened: a folder in Node (`@gantry/core`'s main entry installs the
 * file store), an IndexedDB prefix in a browser (the default here, so the browser entry needs no Node module).
 */
export interface CheckpointLocations {
  store(location: string): CheckpointStore;
  /**
   * A checkpoint from a string a user gave `restore()`: for folders also a run folder or one checkpoint's folder;
   * `warn` hears when a damaged newest checkpoint is passed over.
   */
  find(location: string, warn?: (line: string) => void): Promise<{ store: CheckpointStore; name: string }>;
}

let locations: CheckpointLocations = {
  store: indexedDbCheckpoints,
  find: (location, warn) => findCheckpoint(indexedDbCheckpoints(location), warn),
};

/** Replaces how string checkpoint locations are opened (the Node entry installs folders). */
export function setCheckpointLocations(next: CheckpointLocations): void {
  locations = next;
}

export const checkpointStoreAt = (location: string | CheckpointStore): CheckpointStore =>
  typeof location === 'string' ? locations.store(location) : location;

/**
 * The checkpoint to restore from a location: a store's newest intact one (its latest unless that is damaged), or (for
 * strings) what the installed locations find.
 */
export async function findCheckpoint(
  location: string | CheckpointStore,
  warn?: (line: string) => void,
): Promise<{ store: CheckpointStore; name: string }> {
  if (typeof location === 'string') return locations.find(location, warn);
  return { store: location, name: await newestIntact(location, await location.latest(), warn) };
}

const HIDDEN_PREFIX = '__optimizer__/';

/**
 * Optimizer variables that getWeights() leaves out (Adam's running β₁ᵗ and β₂ᵗ). setWeights recomputes them as
 * β^(t+1) in one pow, which differs from the running product in the last bit; saving them makes resume exact.
 */
function hiddenOptimizerState(optimizer: tf.Optimizer): NamedTensor[] {
  return Object.entries(optimizer)
    .filter(([, value]) => value instanceof tf.Variable)
    .map(([key, value]) => ({ name: `${HIDDEN_PREFIX}${key}`, tensor: value as tf.Variable }));
}

async function saveTensors(handler: tf.io.IOHandler, tensors: NamedTensor[]): Promise<void> {
  const { data, specs } = await tf.io.encodeWeights(tensors);
  await handler.save!({ weightSpecs: specs, weightData: data });
}

async function loadTensors(handler: tf.io.IOHandler): Promise<NamedTensor[]> {
  const { weightSpecs = [], weightData } = await handler.load!();
  const map = tf.io.decodeWeights(weightData ?? new ArrayBuffer(0), weightSpecs);
  return weightSpecs.map((s) => ({ name: s.name, tensor: map[s.name] }));
}

async function loadJson<T>(store: CheckpointStore, name: string, part: CheckpointPart): Promise<T> {
  return (await store.reader(name, part).load!()).modelTopology as T;
}

/** Restores saved weights into an already-built model, by position, checking every shape. */
async function restoreModelWeights(model: LayersModel, handler: tf.io.IOHandler, role: string): Promise<void> {
  const artifacts = await handler.load!();
  const decoded = tf.io.decodeWeights(artifacts.weightData!, artifacts.weightSpecs!);
  const values = artifacts.weightSpecs!.map((s) => decoded[s.name]);
  try {
    const weights = model.weights;
    if (weights.length !== values.length) {
      throw new GantryError(
        `Checkpoint ${role} has ${values.length} weights but the model has ${weights.length}: build the model the same way`,
      );
    }
    weights.forEach((w, i) => {
      if (w.shape.join() !== values[i].shape.join()) {
        throw new GantryError(
          `Checkpoint ${role} weight ${i} (${artifacts.weightSpecs![i].name}) has shape [${values[i].shape}] but the model's is [${w.shape}]`,
        );
      }
    });
    model.setWeights(values);
  } finally {
    tf.dispose(values);
  }
}

/**
 * Writes the whole training state as checkpoint `step-NNNNNN` of the store, each part through a tfjs IOHandler; the
 * store makes it the latest only when every part is written. Returns where it lives.
 */
export async function writeCheckpoint(location: string | CheckpointStore, contents: CheckpointContents): Promise<string> {
  const store = checkpointStoreAt(location);
  const name = stepFolderName(contents.step);
  const writer = await store.begin(name);
  await contents.generator.save(writer.handler('generator'));
  await contents.discriminator.save(writer.handler('discriminator'));
  for (const role of ['generator', 'discriminator'] as const) {
    const optimizer = contents.optimizers[role];
    const weights = await optimizer.getWeights();
    try {
      await saveTensors(writer.handler(`optimizer-${role}`), [...weights, ...hiddenOptimizerState(optimizer)]);
    } finally {
      // getWeights() makes a fresh step-count tensor; the rest are the optimizer's own variables.
      tf.dispose(weights.filter((w) => !(w.tensor instanceof tf.Variable)).map((w) => w.tensor));
    }
  }
  const pluginJson: Record<string, unknown> = {};
  const pluginTensors: NamedTensor[] = [];
  for (const [plugin, snapshot] of Object.entries(contents.plugins)) {
    pluginJson[plugin] = { json: snapshot.json ?? null, tensors: Object.keys(snapshot.tensors ?? {}) };
    for (const [key, tensor] of Object.entries(snapshot.tensors ?? {})) {
      pluginTensors.push({ name: `${plugin}/${key}`, tensor });
    }
  }
  await saveTensors(writer.handler('plugins'), pluginTensors);
  await writer.handler('plugins-state').save!({ modelTopology: pluginJson });
  await writer.handler('state').save!({
    modelTopology: { format: CHECKPOINT_FORMAT, step: contents.step, savedAt: new Date().toISOString(), ...contents.meta },
  });
  const path = await writer.commit();
  await pruneCheckpoints(store, contents.keep, name);
  return path;
}

/** Keeps the `keep` highest steps (numbers, not names, decide) and the latest; removes older checkpoints. */
async function pruneCheckpoints(store: CheckpointStore, keep: number, latest: string): Promise<void> {
  if (keep <= 0) return;
  const newestFirst = (await store.list()).sort((a, b) => Number(b.slice(5)) - Number(a.slice(5)));
  for (const old of newestFirst.slice(keep)) if (old !== latest) await store.remove(old);
}

export interface RestoredState {
  step: number;
  meta: CheckpointMeta;
  plugins: Record<string, PluginStateSnapshot>;
}

/** Reads a checkpoint's step, metadata and plugin state (the caller owns and disposes the plugin tensors). */
export async function readCheckpointState(store: CheckpointStore, name: string): Promise<RestoredState> {
  const state = await loadJson<CheckpointMeta & { format: number; step: number }>(store, name, 'state');
  if (state.format !== CHECKPOINT_FORMAT) {
    throw new GantryError(`Checkpoint ${store.path(name)} has format ${state.format}; this version reads format ${CHECKPOINT_FORMAT}`);
  }
  const pluginJson = await loadJson<Record<string, { json: unknown; tensors: string[] }>>(store, name, 'plugins-state');
  const pluginTensors = await loadTensors(store.reader(name, 'plugins'));
  const plugins: Record<string, PluginStateSnapshot> = {};
  for (const [plugin, entry] of Object.entries(pluginJson)) {
    const tensors: Record<string, tf.Tensor> = {};
    for (const key of entry.tensors) {
      const found = pluginTensors.find((t) => t.name === `${plugin}/${key}`);
      if (found) tensors[key] = found.tensor;
    }
    plugins[plugin] = { json: entry.json, tensors };
  }
  return { step: state.step, meta: state, plugins };
}

/** Loads model weights and optimizer state from a checkpoint into already-built objects. */
export async function restoreTrainingState(
  store: CheckpointStore,
  name: string,
  into: { generator: LayersModel; discriminator: LayersModel; optimizers: { generator: tf.Optimizer; discriminator: tf.Optimizer } },
): Promise<void> {
  await restoreModelWeights(into.generator, store.reader(name, 'generator'), 'generator');
  await restoreModelWeights(into.discriminator, store.reader(name, 'discriminator'), 'discriminator');
  for (const role of ['generator', 'discriminator'] as const) {
    const optimizer = into.optimizers[role];
    const tensors = await loadTensors(store.reader(name, `optimizer-${role}`));
    const hidden = tensors.filter((t) => t.name.startsWith(HIDDEN_PREFIX));
    // setWeights copies the tensors into the optimizer's new variables; dispose ours after.
    await optimizer.setWeights(tensors.filter((t) => !t.name.startsWith(HIDDEN_PREFIX)));
    for (const { name, tensor } of hidden) {
      const variable = (optimizer as unknown as Record<string, unknown>)[name.slice(HIDDEN_PREFIX.length)];
      if (variable instanceof tf.Variable) variable.assign(tensor);
    }
    tf.dispose(tensors.map((t) => t.tensor));
  }
}
