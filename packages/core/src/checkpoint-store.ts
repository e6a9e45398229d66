import * as tf from '@tensorflow/tfjs-core';
import { GantryError } from './errors.js';

/**
 * The parts of a checkpoint, each saved and loaded through a tfjs IOHandler as ModelArtifacts: the two models (topology
 * and weights), the optimizers' and plugins' tensors (weight specs and data only), and two JSON documents (in
 * `modelTopology`).
 */
export const CHECKPOINT_PARTS = {
  generator: 'model',
  discriminator: 'model',
  'optimizer-generator': 'tensors',
  'optimizer-discriminator': 'tensors',
  plugins: 'tensors',
  'plugins-state': 'json',
  state: 'json',
} as const;

export type CheckpointPart = keyof typeof CHECKPOINT_PARTS;

/** A checkpoint being written: its parts become visible together when `commit` makes it the latest. */
export interface CheckpointWriter {
  handler(part: CheckpointPart): tf.io.IOHandler;
  /** Makes the checkpoint complete and the latest; returns where it lives (a folder, an indexeddb:// URL). */
  commit(): Promise<string>;
}

/**
 * Where checkpoints live: files in a folder (Node, `@gantry/core`'s main entry) or IndexedDB (a browser). Both hold
 * the same parts with the same contents, so a run resumes exactly from either.
 */
export interface CheckpointStore {
  /** Shown in messages: a folder or an `indexeddb://` prefix. */
  readonly location: string;
  begin(name: string): Promise<CheckpointWriter>;
  /** The name of the newest complete checkpoint, if any. */
  latest(): Promise<string | undefined>;
  /** Loads one part of a complete checkpoint. */
  reader(name: string, part: CheckpointPart): tf.io.IOHandler;
  /** Names of the complete checkpoints (any order). */
  list(): Promise<string[]>;
  remove(name: string): Promise<void>;
  /** Where checkpoint `name` lives (what `commit` returned for it). */
  path(name: string): string;
  /** Removes what killed runs left half-written (a folder store's temporary folders); called when training starts. */
  removeLeftovers?(): Promise<void>;
}

const INDEXEDDB = 'indexeddb://';

/** tfjs's IndexedDB IOHandler (saves and loads) for a URL; tfjs registers it only where IndexedDB exists. */
function indexedDbHandler(url: string): tf.io.IOHandler {
  const [handler] = tf.io.getSaveHandlers(url);
  if (!handler) throw new GantryError(`No IndexedDB in this environment for ${url}: in Node, checkpoint to a folder`);
  return handler;
}

/**
 * Checkpoints in the browser's IndexedDB through tfjs's IndexedDB IOHandler: part P of checkpoint N is the model
 * `indexeddb://<prefix>/<N>/<P>`, and `indexeddb://<prefix>/latest` names the newest complete one. It is written last,
 * so a tab closed in the middle of a write leaves the previous checkpoint as the latest.
 */
export function indexedDbCheckpoints(prefix: string): CheckpointStore {
  if (!prefix || prefix.includes('://')) throw new GantryError(`indexedDbCheckpoints: give a plain prefix such as "my-run", got "${prefix}"`);
  const url = (...parts: string[]) => `${INDEXEDDB}${[prefix, ...parts].join('/')}`;
  const keysOf = async (name: string) => Object.keys(await tf.io.listModels()).filter((key) => key.startsWith(url(name, '')));
  const remove = async (name: string) => {
    for (const key of await keysOf(name)) await tf.io.removeModel(key);
  };
  return {
    location: url(),
    path: (name) => url(name),
    async begin(name) {
      // Leftovers of a write that never committed.
      await remove(name);
      return {
        handler: (part) => indexedDbHandler(url(name, part)),
        async commit() {
          await indexedDbHandler(url('latest')).save!({ modelTopology: { latest: name } });
          return url(name);
        },
      };
    },
    async latest() {
      if (!(url('latest') in (await tf.io.listModels()))) return undefined;
      const pointer = await indexedDbHandler(url('latest')).load!();
      return (pointer.modelTopology as { latest: string }).latest;
    },
    reader: (name, part) => indexedDbHandler(url(name, part)),
    async list() {
      // Complete checkpoints have their last-written part, the state.
      return Object.keys(await tf.io.listModels())
        .filter((key) => key.startsWith(url('')))
        .map((key) => /^([^/]+)\/state$/.exec(key.slice(url('').length))?.[1])
        .filter((name): name is string => name !== undefined);
    },
    remove,
  };
}
