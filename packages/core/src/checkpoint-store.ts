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
  /**
   * What is wrong with checkpoint `name` (`<part> <problem>`: missing, wrong size, checksum mismatch against the
   * manifest written with it), or undefined when it is intact. A store without it is trusted.
   */
  damage?(name: string): Promise<string | undefined>;
}

/** A checkpoint's manifest: the size and SHA-256 of each of its other files or parts. */
export interface CheckpointManifest {
  files: Record<string, { size: number; sha256: string }>;
}

/** The step of a checkpoint named `step-NNNNNN` (numbers, not names, order checkpoints). */
export const checkpointStep = (name: string): number => Number(/^step-(\d+)$/.exec(name)?.[1] ?? Number.NaN);

/**
 * The newest intact checkpoint of a store: `latest` first, then every other checkpoint, highest step first, each
 * verified with `store.damage`. When the newest is damaged, `warn` gets one line naming the problem and the checkpoint
 * used; when none is intact, one line names every problem.
 */
export async function newestIntact(store: CheckpointStore, latest: string | undefined, warn: (line: string) => void = console.warn): Promise<string> {
  const others = (await store.list()).filter((name) => name !== latest).sort((a, b) => checkpointStep(b) - checkpointStep(a));
  const candidates = latest === undefined ? others : [latest, ...others];
  if (candidates.length === 0) throw new GantryError(`No checkpoint found in ${store.location}`);
  const problems: string[] = [];
  for (const name of candidates) {
    const damage = await store.damage?.(name);
    if (damage === undefined) {
      if (problems.length > 0) warn(`Checkpoint ${store.path(candidates[0])} is damaged (${problems[0]}); using ${store.path(name)}, the newest intact one`);
      return name;
    }
    problems.push(damage);
  }
  throw new GantryError(`No intact checkpoint in ${store.location}: ${problems.join('; ')}`);
}

const INDEXEDDB = 'indexeddb://';
/** The IndexedDB entry beside a checkpoint's parts that holds its manifest. */
const MANIFEST_PART = 'manifest';

/** tfjs's IndexedDB IOHandler (saves and loads) for a URL; tfjs registers it only where IndexedDB exists. */
function indexedDbHandler(url: string): tf.io.IOHandler {
  const [handler] = tf.io.getSaveHandlers(url);
  if (!handler) throw new GantryError(`No IndexedDB in this environment for ${url}: in Node, checkpoint to a folder`);
  return handler;
}

/** SHA-256 (WebCrypto: browsers and Node) of bytes, as hex. */
async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Size and SHA-256 of one checkpoint part as IndexedDB holds it: the JSON of its topology and weight specs followed by
 * its weight bytes.
 */
async function partDigest(artifacts: tf.io.ModelArtifacts): Promise<{ size: number; sha256: string }> {
  const json = new TextEncoder().encode(JSON.stringify({ modelTopology: artifacts.modelTopology ?? null, weightSpecs: artifacts.weightSpecs ?? null }));
  const weights = new Uint8Array(artifacts.weightData === undefined ? new ArrayBuffer(0) : tf.io.CompositeArrayBuffer.join(artifacts.weightData));
  const bytes = new Uint8Array(json.byteLength + weights.byteLength);
  bytes.set(json);
  bytes.set(weights, json.byteLength);
  return { size: bytes.byteLength, sha256: await sha256Hex(bytes) };
}

/**
 * Checkpoints in the browser's IndexedDB through tfjs's IndexedDB IOHandler: part P of checkpoint N is the model
 * `indexeddb://<prefix>/<N>/<P>`, `…/<N>/manifest` holds each part's size and SHA-256 (as a run folder's
 * `manifest.json` does), and `indexeddb://<prefix>/latest` names the newest complete one. The manifest and then
 * `latest` are written last, so a tab closed in the middle of a write leaves the previous checkpoint as the latest.
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
      const manifest: CheckpointManifest = { files: {} };
      return {
        handler: (part) => ({
          async save(artifacts) {
            manifest.files[part] = await partDigest(artifacts);
            return indexedDbHandler(url(name, part)).save!(artifacts);
          },
        }),
        async commit() {
          await indexedDbHandler(url(name, MANIFEST_PART)).save!({ modelTopology: manifest });
          await indexedDbHandler(url('latest')).save!({ modelTopology: { latest: name } });
          return url(name);
        },
      };
    },
    async damage(name) {
      const stored = await tf.io.listModels();
      // Checkpoints written before manifests existed have none and pass (as folders do).
      if (!(url(name, MANIFEST_PART) in stored)) return url(name, 'state') in stored ? undefined : `${url(name, 'state')} is missing`;
      const manifest = (await indexedDbHandler(url(name, MANIFEST_PART)).load!()).modelTopology as CheckpointManifest;
      for (const [part, expected] of Object.entries(manifest.files ?? {})) {
        const key = url(name, part);
        if (!(key in stored)) return `${key} is missing`;
        const actual = await partDigest(await indexedDbHandler(key).load!());
        if (actual.size !== expected.size) return `${key} has ${actual.size} bytes, its manifest says ${expected.size}`;
        if (actual.sha256 !== expected.sha256) return `${key} does not match its checksum`;
      }
      return undefined;
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
