import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { checkpointDamage, manifestText, MANIFEST_FILE } from './checkpoint-manifest.js';
import { CHECKPOINT_PARTS, newestIntact, type CheckpointPart, type CheckpointStore } from './checkpoint-store.js';
import { DiskFullError, freeBytes, isDiskFull } from './disk-full.js';
import { GantryError } from './errors.js';
import { removeTempLeftovers, tempName } from './temp-files.js';

const toArrayBuffer = (buf: Buffer): ArrayBuffer => buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;

function concatWeightData(data: tf.io.WeightData | undefined): ArrayBuffer {
  if (data === undefined) return new ArrayBuffer(0);
  return Array.isArray(data) ? tf.io.concatenateArrayBuffers(data) : data;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
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

const saved = (): tf.io.SaveResult => ({ modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } });

/** Model artifacts as the standard tfjs files, `model.json` and `weights.bin`, in memory. */
function modelFiles(artifacts: tf.io.ModelArtifacts): { modelJson: Uint8Array; weights: Uint8Array } {
  const modelJson = {
    format: artifacts.format ?? 'layers-model',
    generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy ?? null,
    modelTopology: artifacts.modelTopology,
    weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs ?? [] }],
  };
  return { modelJson: Buffer.from(JSON.stringify(modelJson)), weights: Buffer.from(concatWeightData(artifacts.weightData)) };
}

/**
 * Saves a LayersModel in the standard tfjs format (`model.json` + `weights.bin`) without tfjs-node, so
 * `tf.loadLayersModel` (with any custom layers registered) reads it back.
 */
export async function saveModel(model: LayersModel, dir: string): Promise<void> {
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const { modelJson, weights } = modelFiles(artifacts);
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'model.json'), modelJson);
      await writeFile(join(dir, 'weights.bin'), weights);
      return saved();
    }),
  );
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

/**
 * The files of one checkpoint part: a model as `<part>/model.json` + `weights.bin`, tensors as `<part>.json` (their
 * specs) + `<part>.bin`, a JSON document as `<part>.json`.
 */
function partFiles(part: CheckpointPart, artifacts: tf.io.ModelArtifacts): [string, Uint8Array][] {
  const kind = CHECKPOINT_PARTS[part];
  if (kind === 'model') {
    const { modelJson, weights } = modelFiles(artifacts);
    return [
      [`${part}/model.json`, modelJson],
      [`${part}/weights.bin`, weights],
    ];
  }
  if (kind === 'tensors') {
    return [
      [`${part}.json`, Buffer.from(JSON.stringify({ specs: artifacts.weightSpecs ?? [] }, null, 1))],
      [`${part}.bin`, Buffer.from(concatWeightData(artifacts.weightData))],
    ];
  }
  return [[`${part}.json`, Buffer.from(JSON.stringify(artifacts.modelTopology, null, 1))]];
}

/** Loads one part of the checkpoint folder `dir`. */
function partReader(dir: string, part: CheckpointPart): tf.io.IOHandler {
  const kind = CHECKPOINT_PARTS[part];
  return {
    async load() {
      if (kind === 'model') return readModelArtifacts(join(dir, part));
      if (kind === 'tensors') {
        const { specs } = await readJson<{ specs: tf.io.WeightsManifestEntry[] }>(join(dir, `${part}.json`));
        return { weightSpecs: specs, weightData: toArrayBuffer(await readFile(join(dir, `${part}.bin`))) };
      }
      return { modelTopology: await readJson<object>(join(dir, `${part}.json`)) };
    },
  };
}

/**
 * Checkpoints as folders `<root>/step-NNNNNN/` (a run folder's `checkpoints/`). Every part is encoded in memory first;
 * at commit the files go to a temporary folder, `manifest.json` (sizes, checksums) last, which is renamed when
 * complete, and `latest` is replaced atomically after that, so a crash never leaves a half-written checkpoint as the
 * latest. A full disk removes what was written and says which checkpoint is still intact.
 */
export function fileCheckpoints(root: string): CheckpointStore {
  return {
    location: root,
    path: (name) => join(root, name),
    async begin(name) {
      const files = new Map<string, Uint8Array>();
      return {
        handler: (part) => ({
          async save(artifacts) {
            for (const [path, data] of partFiles(part, artifacts)) files.set(path, data);
            return saved();
          },
        }),
        async commit() {
          files.set(MANIFEST_FILE, Buffer.from(manifestText(files)));
          await mkdir(root, { recursive: true });
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
            const previous = await readFile(join(root, 'latest'), 'utf8').then(
              (n) => join(root, n.trim()),
              () => undefined,
            );
            throw new DiskFullError(writing, needed, free, {
              what: 'the checkpoint',
              detail: previous ? `; the previous checkpoint ${previous} is intact` : '; no earlier checkpoint exists',
            });
          }
          await rm(final, { recursive: true, force: true });
          await rename(tmp, final);
          await rename(latestTmp, join(root, 'latest'));
          return final;
        },
      };
    },
    async latest() {
      const file = join(root, 'latest');
      if (!(await exists(file))) return undefined;
      const name = (await readFile(file, 'utf8')).trim();
      return (await exists(join(root, name, 'state.json'))) ? name : undefined;
    },
    reader: (name, part) => partReader(join(root, name), part),
    async list() {
      return (await listCheckpointSteps(root)).map((s) => s.name);
    },
    async remove(name) {
      await rm(join(root, name), { recursive: true, force: true });
    },
    async removeLeftovers() {
      await removeTempLeftovers(root);
    },
    async damage(name) {
      const path = join(root, name);
      return (await exists(join(path, 'state.json'))) ? checkpointDamage(path) : `${join(path, 'state.json')} is missing`;
    },
  };
}

/** Step folders of a checkpoints folder, newest (highest step) first: numbers, not names, decide the order. */
export async function listCheckpointSteps(root: string): Promise<{ name: string; step: number }[]> {
  const names = await readdir(root).catch(() => [] as string[]);
  return names
    .filter((n) => /^step-\d+$/.test(n))
    .map((name) => ({ name, step: Number(name.slice(5)) }))
    .sort((a, b) => b.step - a.step);
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
    return join(root, await newestIntact(fileCheckpoints(root), latest, warn));
  }
  throw new GantryError(`No checkpoint found in ${dir} (expected state.json, a "latest" file or checkpoints/latest)`);
}

/** `resolveCheckpointDir` as a file store and a checkpoint name (how the Node entry opens string locations). */
export async function findCheckpointFolder(dir: string, warn?: (line: string) => void): Promise<{ store: CheckpointStore; name: string }> {
  const path = await resolveCheckpointDir(dir, warn);
  return { store: fileCheckpoints(dirname(path)), name: basename(path) };
}
