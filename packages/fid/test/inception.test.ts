import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { saveModel, withSeed } from '@gantry/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inceptionExtractor, isGraphModel, readModelFile } from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'gantry-inception-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let layersModel: tfl.LayersModel;

beforeAll(async () => {
  await tf.setBackend('cpu');
  // A stand-in for Inception-v3 with the same interface: [B, 8, 8, 3] in [-1, 1] → conv → global pool ("pool3").
  layersModel = withSeed(5, () => {
    const input = tfl.input({ shape: [8, 8, 3] });
    const conv = tfl.layers.conv2d({ filters: 6, kernelSize: 3, activation: 'relu', name: 'mixed' }).apply(input) as tfl.SymbolicTensor;
    const pool = tfl.layers.globalAveragePooling2d({ name: 'pool3' }).apply(conv) as tfl.SymbolicTensor;
    const logits = tfl.layers.dense({ units: 4, name: 'logits' }).apply(pool) as tfl.SymbolicTensor;
    return tfl.model({ inputs: input, outputs: logits });
  });
  await saveModel(layersModel, join(dir, 'layers'));

  // A hand-written graph model (the format tfjs-converter writes for TF-Hub Inception): channel means, then a MatMul.
  const graph = {
    format: 'graph-model',
    generatedBy: 'gantry test',
    convertedBy: 'hand',
    modelTopology: {
      node: [
        { name: 'images', op: 'Placeholder', attr: { dtype: { type: 'DT_FLOAT' }, shape: { shape: { dim: [{ size: '-1' }, { size: '8' }, { size: '8' }, { size: '3' }] } } } },
        { name: 'axes', op: 'Const', attr: { dtype: { type: 'DT_INT32' }, value: { tensor: { dtype: 'DT_INT32', tensorShape: { dim: [{ size: '2' }] } } } } },
        { name: 'w', op: 'Const', attr: { dtype: { type: 'DT_FLOAT' }, value: { tensor: { dtype: 'DT_FLOAT', tensorShape: { dim: [{ size: '3' }, { size: '2' }] } } } } },
        { name: 'pool', op: 'Mean', input: ['images', 'axes'], attr: { keep_dims: { b: false }, T: { type: 'DT_FLOAT' }, Tidx: { type: 'DT_INT32' } } },
        { name: 'features', op: 'MatMul', input: ['pool', 'w'], attr: { transpose_a: { b: false }, transpose_b: { b: false }, T: { type: 'DT_FLOAT' } } },
      ],
      library: {},
      versions: { producer: 1 },
    },
    weightsManifest: [
      {
        paths: ['group1-shard1of1.bin'],
        weights: [
          { name: 'axes', shape: [2], dtype: 'int32' },
          { name: 'w', shape: [3, 2], dtype: 'float32' },
        ],
      },
    ],
  };
  const bytes = new Uint8Array(8 + 24);
  new Int32Array(bytes.buffer, 0, 2).set([1, 2]);
  new Float32Array(bytes.buffer, 8, 6).set([1, 0, 0, 1, 2, -1]);
  writeFileSync(join(dir, 'graph.json'), JSON.stringify(graph));
  writeFileSync(join(dir, 'group1-shard1of1.bin'), bytes);
});

afterAll(() => layersModel.dispose());

/** 3 gray 5×5 images in [-1, 1]. */
const grayImages = () => tf.tidy(() => tf.sub(tf.mul(tf.randomUniform([3, 5, 5, 1], 0, 1, 'float32', 17), 2), 1) as tf.Tensor4D);

describe('inceptionExtractor', () => {
  it('reads a layers model from disk and reproduces its outputs after gray→RGB and bilinear resizing', async () => {
    const extractor = await inceptionExtractor({ model: join(dir, 'layers', 'model.json'), outputNode: 'pool3', imageShape: [5, 5, 1] });
    expect(extractor.dims).toBe(6);
    expect(extractor.name).toBe('inception-v3-pool3:layers/model.json#pool3');
    expect(extractor.resize).toBe('bilinear to 8×8 (half-pixel centres), gray copied to RGB, range [-1, 1]');
    const images = grayImages();
    const features = extractor.extract(images);
    const pool3 = tfl.model({ inputs: layersModel.inputs, outputs: layersModel.getLayer('pool3').output as tfl.SymbolicTensor });
    const expected = tf.tidy(() => pool3.predict(tf.image.resizeBilinear(tf.tile(images, [1, 1, 1, 3]), [8, 8], false, true)) as tf.Tensor);
    expect(features.shape).toEqual([3, 6]);
    expect(Array.from(features.dataSync())).toEqual(Array.from(expected.dataSync()));
    tf.dispose([images, features, expected]);
    extractor.dispose();
  });

  it('maps [-1, 1] onto the input range the network expects', async () => {
    const extractor = await inceptionExtractor({ model: join(dir, 'layers', 'model.json'), inputRange: [0, 255] });
    const images = tf.fill([1, 8, 8, 3], 0) as tf.Tensor4D;
    const features = extractor.extract(images);
    const expected = tf.tidy(() => layersModel.predict(tf.fill([1, 8, 8, 3], 127.5)) as tf.Tensor);
    const [got, want] = [features.dataSync(), expected.dataSync()];
    for (let i = 0; i < want.length; i++) expect(got[i]).toBeCloseTo(want[i], 4);
    expect(extractor.dims).toBe(4);
    tf.dispose([images, features, expected]);
    extractor.dispose();
  });

  it('reads a graph model with its weight shards and runs a named node', async () => {
    const artifacts = await readModelFile(join(dir, 'graph.json'));
    expect(isGraphModel(artifacts)).toBe(true);
    const images = grayImages();
    const means = tf.tidy(() => tf.mean(tf.image.resizeBilinear(images, [8, 8], false, true), [1, 2, 3]).dataSync());
    const pooled = await inceptionExtractor({ model: join(dir, 'graph.json'), outputNode: 'pool' });
    const full = await inceptionExtractor({ model: join(dir, 'graph.json') });
    expect([pooled.dims, full.dims]).toEqual([3, 2]);
    const p = pooled.extract(images).arraySync();
    const f = full.extract(images).arraySync();
    for (let b = 0; b < 3; b++) {
      // Gray copied to three channels: every channel mean equals the image mean; w = [[1, 0], [0, 1], [2, -1]].
      for (const v of p[b]) expect(v).toBeCloseTo(means[b], 5);
      expect(f[b][0]).toBeCloseTo(3 * means[b], 5);
      expect(f[b][1]).toBeCloseTo(0, 5);
    }
    images.dispose();
    pooled.dispose();
    full.dispose();
  });

  it('loads layers and graph models from an http URL (a local server, no download)', async () => {
    const server = createServer((req, res) => {
      try {
        const body = readFileSync(join(dir, decodeURIComponent(req.url!.slice(1))));
        res.writeHead(200);
        res.end(body);
      } catch {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const images = grayImages();
      const fromUrl = await inceptionExtractor({ model: `${base}/layers/model.json`, outputNode: 'pool3' });
      const fromDisk = await inceptionExtractor({ model: join(dir, 'layers', 'model.json'), outputNode: 'pool3' });
      expect(fromUrl.name).toBe(`inception-v3-pool3:${base}/layers/model.json#pool3`);
      const [a, b] = [fromUrl.extract(images), fromDisk.extract(images)];
      expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
      const graph = await inceptionExtractor({ model: `${base}/graph.json` });
      expect(graph.dims).toBe(2);
      await expect(inceptionExtractor({ model: `${base}/missing.json` })).rejects.toThrow(/cannot fetch model .*missing.json: HTTP 404/);
      tf.dispose([images, a, b]);
      [fromUrl, fromDisk, graph].forEach((x) => x.dispose());
    } finally {
      server.close();
    }
  });

  it('names the missing file or layer in one line', async () => {
    await expect(inceptionExtractor({ model: join(dir, 'nope', 'model.json') })).rejects.toThrow(/cannot read model file .*nope/);
    await expect(inceptionExtractor({ model: join(dir, 'layers', 'model.json'), outputNode: 'pool4' })).rejects.toThrow(
      /no layer "pool4"/,
    );
  });
});
