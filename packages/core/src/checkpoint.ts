import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { checkpointDamage, manifestText, MANIFEST_FILE } from './checkpoint-manifest.js';
import { DiskFullError, freeBytes, isDiskFull } from './disk-full.js';
import { GantryError } from './errors.js';
import type { PluginStateSnapshot } from './plugin.js';
import type { RngState } from './random.js';
import { tempName } from './temp-files.js';

type NamedTensor = { name: string; tensor: tf.Tensor };

/** Checkpoint layout version; bump when the files change meaning. */
export const CHECKPOINT_FORMAT = 1;

export interface CheckpointMeta {
  rng: RngState;
  batchesConsumed: number;
  loss: string;
  nCritic: number;
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

const toArrayBuffer = (buf: Buffer): ArrayBuffer => buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;

function concatWeightData(data: tf.io.WeightData): ArrayBuffer {
  return Array.isArray(data) ? tf.io.concatenateArrayBuffers(data) : data;
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

/** Named tensors as `<name>.json` (specs) + `<name>.bin` (little-endian data), added to `files`. */
async function encodeTensors(files: Map<string, Uint8Array>, name: string, tensors: NamedTensor[]): Promise<void> {
  const { data, specs } = await tf.io.encodeWeights(tensors);
  files.set(`${name}.json`, Buffer.from(JSON.stringify({ specs }, null, 1)));
  files.set(`${name}.bin`, Buffer.from(data));
}

/** JSON of a checkpoint file; a damaged one is named in one line instead of a bare SyntaxError. */
async function readJson<T>(file: string): Promise<T> {
  const text = await readFile(file, 'utf8');
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    throw new GantryError(`${file} is damaged: ${(error as Error).message}`);
  }
}

async function readTensors(dir: string, name: string): Promise<NamedTensor[]> {
  const { specs } = await readJson<{ specs: tf.io.WeightsManifestEntry[] }>(join(dir, `${name}.json`));
  const data = toArrayBuffer(await readFile(join(dir, `${name}.bin`)));
  const map = tf.io.decodeWeights(data, specs);
  return specs.map((s) => ({ name: s.name, tensor: map[s.name] }));
}

/** A LayersModel in the standard tfjs format: `model.json` and `weights.bin`, in memory. */
async function modelFiles(model: LayersModel): Promise<{ modelJson: Uint8Array; weights: Uint8Array }> {
  let files: { modelJson: Uint8Array; weights: Uint8Array } | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const modelJson = {
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }],
      };
      files = { modelJson: Buffer.from(JSON.stringify(modelJson)), weights: Buffer.from(concatWeightData(artifacts.weightData!)) };
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return files!;
}

/**
 * Saves a LayersModel in the standard tfjs format (`model.json` + `weights.bin`) without tfjs-node, so
 * `tf.loadLayersModel` (with any custom layers registered) reads it back.
 */
export async function saveModel(model: LayersModel, dir: string): Promise<void> {
  const { modelJson, weights } = await modelFiles(model);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'model.json'), modelJson);
  await writeFile(join(dir, 'weights.bin'), weights);
}

/** Reads a folder written by saveModel (or any single-shard-list tfjs layers model) as model artifacts. */
export async function readModelArtifacts(dir: string): Promise<tf.io.ModelArtifacts> {
  const modelJson = await readJson<{ modelTopology: object; format?: string; generatedBy?: string; convertedBy?: string | null; weightsManifest: tf.io.WeightsManifestConfig }>(
    join(dir, 'model.json'),
  );
  const specs: tf.io.WeightsManifestEntry[] = [];
  const buffers: ArrayBuffer[] = [];
  for (const group of modelJson.weightsManifest) {
    specs.push(...group.weights);
    for (const path of group.paths) buffers.push(toArrayBuffer(await readFile(join(dir, path))));
  }
  return {
    modelTopology: modelJson.modelTopology,
    format: modelJson.format,
    generatedBy: modelJson.generatedBy,
    convertedBy: modelJson.convertedBy ?? null,
    weightSpecs: specs,
    weightData: tf.io.concatenateArrayBuffers(buffers),
  };
}

/** Restores saved weights into an already-built model, by position, checking every shape. */
async function restoreModelWeights(model: LayersModel, dir: string, role: string): Promise<void> {
  const artifacts = await readModelArtifacts(dir);
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

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/**
 * Writes the whole training state into `<root>/step-NNNNNN/`. Every file is encoded first; they go to a temporary
 * folder, `manifest.json` (sizes, checksums) last, which is renamed when complete, and `latest` is replaced
 * atomically after that, so a crash never leaves a half-written checkpoint as the latest.
 */
export async function writeCheckpoint(root: string, contents: CheckpointContents): Promise<string> {
  const files = new Map<string, Uint8Array>();
  for (const role of ['generator', 'discriminator'] as const) {
    const { modelJson, weights } = await modelFiles(contents[role]);
    files.set(`${role}/model.json`, modelJson);
    files.set(`${role}/weights.bin`, weights);
  }
  for (const role of ['generator', 'discriminator'] as const) {
    const optimizer = contents.optimizers[role];
    await encodeTensors(files, `optimizer-${role}`, [...(await optimizer.getWeights()), ...hiddenOptimizerState(optimizer)]);
  }
  const pluginJson: Record<string, unknown> = {};
  const pluginTensors: NamedTensor[] = [];
  for (const [plugin, snapshot] of Object.entries(contents.plugins)) {
    pluginJson[plugin] = { json: snapshot.json ?? null, tensors: Object.keys(snapshot.tensors ?? {}) };
    for (const [key, tensor] of Object.entries(snapshot.tensors ?? {})) {
      pluginTensors.push({ name: `${plugin}/${key}`, tensor });
    }
  }
  await encodeTensors(files, 'plugins', pluginTensors);
  files.set('plugins-state.json', Buffer.from(JSON.stringify(pluginJson, null, 1)));
  const state = { format: CHECKPOINT_FORMAT, step: contents.step, savedAt: new Date().toISOString(), ...contents.meta };
  files.set('state.json', Buffer.from(JSON.stringify(state, null, 1)));
  files.set(MANIFEST_FILE, Buffer.from(manifestText(files)));

  await mkdir(root, { recursive: true });
  const name = stepFolderName(contents.step);
  const tmp = join(root, `.${tempName(name)}`);
  const final = join(root, name);
  const latestTmp = join(root, `.${tempName('latest')}`);
  const needed = [...files.values()].reduce((sum, data) => sum + data.byteLength, 0);
  const free = await freeBytes(root);
  let writing = '';
  try {
    await rm(tmp, { recursive: true, force: true });
    for (const [path, data] of files) {
      writing = join(final, path);
      await mkdir(dirname(join(tmp, path)), { recursive: true });
      await writeFile(join(tmp, path), data);
    }
    writing = join(root, 'latest');
    await writeFile(latestTmp, `${name}\n`);
  } catch (error) {
    // Nothing half-written stays behind to keep the disk full; `latest` still names the previous checkpoint.
    await rm(tmp, { recursive: true, force: true });
    await rm(latestTmp, { force: true });
    if (!isDiskFull(error)) throw error;
    const previous = await readFile(join(root, 'latest'), 'utf8').then((n) => join(root, n.trim()), () => undefined);
    throw new DiskFullError(writing, needed, free, {
      what: 'the checkpoint',
      detail: previous ? `; the previous checkpoint ${previous} is intact` : '; no earlier checkpoint exists',
    });
  }
  await rm(final, { recursive: true, force: true });
  await rename(tmp, final);
  await rename(latestTmp, join(root, 'latest'));
  await pruneCheckpoints(root, contents.keep, name);
  return final;
}

/** Step folders of a checkpoints folder, newest (highest step) first: numbers, not names, decide the order. */
export async function listCheckpointSteps(root: string): Promise<{ name: string; step: number }[]> {
  const names = await readdir(root).catch(() => [] as string[]);
  return names
    .filter((n) => /^step-\d+$/.test(n))
    .map((name) => ({ name, step: Number(name.slice(5)) }))
    .sort((a, b) => b.step - a.step);
}

/** Keeps the `keep` highest steps and whatever `latest` names; removes older step folders. */
async function pruneCheckpoints(root: string, keep: number, latest: string): Promise<void> {
  if (keep <= 0) return;
  const steps = await listCheckpointSteps(root);
  for (const { name } of steps.slice(keep)) {
    if (name !== latest) await rm(join(root, name), { recursive: true, force: true });
  }
}

/**
 * The checkpoint to load from a checkpoint folder, a checkpoints folder (`latest`) or a run folder
 * (`checkpoints/latest`). Each is verified against its manifest; when the newest is damaged, `warn` gets one line
 * and the newest intact one is used. Refuses, naming the damaged file, when none is intact.
 */
export async function resolveCheckpointDir(dir: string, warn: (line: string) => void = console.warn): Promise<string> {
  if (await exists(join(dir, 'state.json'))) {
    const damage = await checkpointDamage(dir);
    if (damage) throw new GantryError(`Checkpoint ${dir} is damaged: ${damage}`);
    return dir;
  }
  for (const root of [dir, join(dir, 'checkpoints')]) {
    const latestFile = join(root, 'latest');
    if (!(await exists(latestFile))) continue;
    const latest = (await readFile(latestFile, 'utf8')).trim();
    // `latest` first, then every other step folder, newest first.
    const candidates = [latest, ...(await listCheckpointSteps(root)).map((s) => s.name).filter((n) => n !== latest)];
    const problems: string[] = [];
    for (const name of candidates) {
      const path = join(root, name);
      const damage = (await exists(join(path, 'state.json'))) ? await checkpointDamage(path) : `${join(path, 'state.json')} is missing`;
      if (!damage) {
        if (problems.length > 0) warn(`Checkpoint ${join(root, latest)} is damaged (${problems[0]}); using ${path}, the newest intact one`);
        return path;
      }
      problems.push(damage);
    }
    throw new GantryError(`No intact checkpoint in ${root}: ${problems.join('; ')}`);
  }
  throw new GantryError(`No checkpoint found in ${dir} (expected state.json, a "latest" file or checkpoints/latest)`);
}

export interface RestoredState {
  step: number;
  meta: CheckpointMeta;
  plugins: Record<string, PluginStateSnapshot>;
}

/** Reads a checkpoint's step, metadata and plugin state (the caller owns and disposes the plugin tensors). */
export async function readCheckpointState(path: string): Promise<RestoredState> {
  const state = await readJson<CheckpointMeta & { format: number; step: number }>(join(path, 'state.json'));
  if (state.format !== CHECKPOINT_FORMAT) {
    throw new GantryError(`Checkpoint ${path} has format ${state.format}; this version reads format ${CHECKPOINT_FORMAT}`);
  }
  const pluginJson = await readJson<Record<string, { json: unknown; tensors: string[] }>>(join(path, 'plugins-state.json'));
  const pluginTensors = await readTensors(path, 'plugins');
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
  path: string,
  into: { generator: LayersModel; discriminator: LayersModel; optimizers: { generator: tf.Optimizer; discriminator: tf.Optimizer } },
): Promise<void> {
  await restoreModelWeights(into.generator, join(path, 'generator'), 'generator');
  await restoreModelWeights(into.discriminator, join(path, 'discriminator'), 'discriminator');
  for (const role of ['generator', 'discriminator'] as const) {
    const optimizer = into.optimizers[role];
    const tensors = await readTensors(path, `optimizer-${role}`);
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
