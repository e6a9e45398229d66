import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { FidError } from '../errors.js';

export const isUrl = (source: string) => /^https?:\/\//i.test(source);

/**
 * Reads a tfjs model file (layers or graph format) and every weight shard its manifest lists, from the local disk,
 * as model artifacts. tfjs's own file:// handler lives in tfjs-node, which Gantry does not require.
 */
export async function readModelFile(modelJsonPath: string): Promise<tf.io.ModelArtifacts> {
  const path = resolve(modelJsonPath);
  let json: tf.io.ModelJSON;
  try {
    json = JSON.parse(await readFile(path, 'utf8')) as tf.io.ModelJSON;
  } catch (error) {
    throw new FidError(`cannot read model file ${path}: ${(error as Error).message}`);
  }
  if (!json.modelTopology) throw new FidError(`${path} is not a tfjs model.json (no modelTopology)`);
  const base = dirname(path);
  return tf.io.getModelArtifactsForJSON(json, async (manifest) => {
    const specs: tf.io.WeightsManifestEntry[] = [];
    const buffers: ArrayBuffer[] = [];
    for (const group of manifest) {
      specs.push(...group.weights);
      for (const shard of group.paths) {
        const file = resolve(base, shard);
        let bytes: Buffer;
        try {
          bytes = await readFile(file);
        } catch (error) {
          throw new FidError(`cannot read weight file ${file} listed in ${path}: ${(error as Error).message}`);
        }
        buffers.push(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
      }
    }
    return [specs, tf.io.concatenateArrayBuffers(buffers)];
  });
}

/** True when the artifacts hold a graph model (TF GraphDef nodes) rather than a Keras-style layers model. */
export function isGraphModel(artifacts: { format?: string; modelTopology?: unknown }): boolean {
  if (artifacts.format === 'graph-model') return true;
  if (artifacts.format === 'layers-model') return false;
  const topology = artifacts.modelTopology as Record<string, unknown> | undefined;
  return topology !== undefined && Array.isArray(topology.node);
}
