import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { Trainer, withSeed } from '@gantry/core';
import { SpectralNormalization, spectralNorm, spectralNormLayers, spectralNormalize } from '../src/index.js';
import { run } from './helpers.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function snConvNet(): tfl.Sequential {
  return withSeed(1, () =>
    tfl.sequential({
      layers: [
        new SpectralNormalization({
          inputShape: [8, 8, 2],
          layer: tfl.layers.conv2d({ filters: 4, kernelSize: 3, strides: 2, padding: 'same' }),
        }),
        tfl.layers.leakyReLU({ alpha: 0.2 }),
        new SpectralNormalization({
          layer: tfl.layers.conv2dTranspose({ filters: 3, kernelSize: 3, strides: 2, padding: 'same' }),
          powerIterations: 2,
        }),
        tfl.layers.flatten(),
        new SpectralNormalization({ layer: tfl.layers.dense({ units: 1 }) }),
      ],
    }),
  );
}

async function roundTrip(model: tfl.LayersModel): Promise<tfl.LayersModel> {
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      saved = artifacts;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  // Through JSON, as a file would go.
  const topology = JSON.parse(JSON.stringify(saved!.modelTopology));
  return tfl.loadLayersModel(tf.io.fromMemory({ modelTopology: topology, weightSpecs: saved!.weightSpecs, weightData: saved!.weightData }));
}

describe('serialization', () => {
  it('a saved and reloaded model gives identical outputs, in inference and in the next training pass', async () => {
    const model = snConvNet();
    const x = tf.randomNormal([3, 8, 8, 2], 0, 1, 'float32', 2);
    for (let i = 0; i < 3; i++) run(model, x, true).dispose(); // move u away from its initial value
    const reloaded = await roundTrip(model);
    expect(reloaded.layers.map((l) => l.getClassName())).toEqual(model.layers.map((l) => l.getClassName()));
    expect((reloaded.layers[2] as SpectralNormalization).powerIterations).toBe(2);
    expect(reloaded.weights.map((w) => w.originalName)).toEqual(model.weights.map((w) => w.originalName));
    expect(model.weights.filter((w) => w.originalName.endsWith('/u'))).toHaveLength(3);

    const a = model.predict(x) as tf.Tensor;
    const b = reloaded.predict(x) as tf.Tensor;
    expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
    const ta = model.apply(x, { training: true }) as tf.Tensor;
    const tb = reloaded.apply(x, { training: true }) as tf.Tensor;
    expect(Array.from(tb.dataSync())).toEqual(Array.from(ta.dataSync()));
    tf.dispose([x, a, b, ta, tb]);
    model.dispose();
    reloaded.dispose();
  });
});

describe('spectralNormalize', () => {
  /** The reference: the original model with each wrapped kernel replaced by W/σ from the wrapper. */
  function expectSameAsNormalizedOriginal(original: tfl.LayersModel, wrapped: tfl.LayersModel, inputs: tf.Tensor | tf.Tensor[]) {
    const wrappers = spectralNormLayers(wrapped);
    const originals = wrappers.map((w) => original.getLayer(w.name));
    const saved = originals.map((l) => l.getWeights().map((t) => t.clone()));
    originals.forEach((layer, i) => {
      const normalized = wrappers[i].normalizedKernel();
      layer.setWeights([normalized, ...saved[i].slice(1)]);
      normalized.dispose();
    });
    const expected = original.predict(inputs) as tf.Tensor;
    const actual = wrapped.predict(inputs) as tf.Tensor;
    expect(tf.max(tf.abs(tf.sub(actual, expected))).dataSync()[0]).toBeLessThan(1e-5);
    originals.forEach((layer, i) => layer.setWeights(saved[i]));
    tf.dispose([expected, actual, ...saved.flat()]);
  }

  it('wraps every Dense/Conv layer of a Sequential model, keeps names and copies weights', () => {
    const model = withSeed(3, () =>
      tfl.sequential({
        layers: [
          tfl.layers.conv2d({ inputShape: [6, 6, 1], filters: 3, kernelSize: 3, padding: 'same' }),
          tfl.layers.leakyReLU(),
          tfl.layers.flatten(),
          tfl.layers.dense({ units: 5, activation: 'relu' }),
          tfl.layers.dense({ units: 1 }),
        ],
      }),
    );
    const wrapped = spectralNormalize(model);
    expect(wrapped.layers.map((l) => l.getClassName())).toEqual([
      'SpectralNormalization',
      'LeakyReLU',
      'Flatten',
      'SpectralNormalization',
      'SpectralNormalization',
    ]);
    expect(wrapped.layers.map((l) => l.name)).toEqual(model.layers.map((l) => l.name));
    const first = wrapped.layers[0] as SpectralNormalization;
    expect(Array.from(first.layer.getWeights()[0].dataSync())).toEqual(Array.from(model.layers[0].getWeights()[0].dataSync()));
    expect(wrapped.trainableWeights).toHaveLength(model.trainableWeights.length);
    expect(wrapped.nonTrainableWeights).toHaveLength(3);
    const x = tf.randomNormal([2, 6, 6, 1], 0, 1, 'float32', 4);
    expectSameAsNormalizedOriginal(model, wrapped, x);
    // The copy owns its weights: disposing the original leaves it working, with the same outputs.
    const before = wrapped.predict(x) as tf.Tensor;
    model.dispose();
    const after = wrapped.predict(x) as tf.Tensor;
    expect(Array.from(after.dataSync())).toEqual(Array.from(before.dataSync()));
    tf.dispose([x, before, after]);
  });

  it('handles a conditional functional model (two inputs) and the include filter', () => {
    const model = withSeed(5, () => {
      const image = tfl.input({ shape: [4, 4, 1] });
      const label = tfl.input({ shape: [3] });
      const h = tfl.layers.flatten().apply(tfl.layers.conv2d({ filters: 2, kernelSize: 2, name: 'conv' }).apply(image)) as tfl.SymbolicTensor;
      const joined = tfl.layers.concatenate().apply([h, label]) as tfl.SymbolicTensor;
      const hidden = tfl.layers.dense({ units: 4, activation: 'tanh', name: 'hidden' }).apply(joined) as tfl.SymbolicTensor;
      const out = tfl.layers.dense({ units: 1, name: 'out' }).apply(hidden) as tfl.SymbolicTensor;
      return tfl.model({ inputs: [image, label], outputs: out });
    });
    const all = spectralNormalize(model);
    expect(spectralNormLayers(all).map((l) => l.name)).toEqual(['conv', 'hidden', 'out']);
    const someOnly = spectralNormalize(model, { include: ({ name }) => name !== 'out' });
    expect(spectralNormLayers(someOnly).map((l) => l.name)).toEqual(['conv', 'hidden']);
    const inputs = [tf.randomNormal([3, 4, 4, 1], 0, 1, 'float32', 6), tf.cast(tf.oneHot([0, 2, 1], 3), 'float32')];
    expectSameAsNormalizedOriginal(model, all, inputs);
    expectSameAsNormalizedOriginal(model, someOnly, inputs);
    tf.dispose(inputs);
  });

  it('rejects unknown options', () => {
    const model = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [2], units: 1 })] });
    expect(() => spectralNormalize(model, { iterations: 2 } as never)).toThrow(/Unknown option "iterations"/);
  });
});

describe('spectralNorm() plugin', () => {
  function models() {
    return withSeed(7, () => {
      const generator = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [2], units: 2 })] });
      const discriminator = spectralNormalize(
        tfl.sequential({
          layers: [tfl.layers.dense({ inputShape: [2], units: 8, activation: 'relu' }), tfl.layers.dense({ units: 1 })],
        }),
      );
      return { generator, discriminator };
    });
  }
  const data = () => ({
    *[Symbol.iterator]() {
      for (;;) yield tf.randomUniform([8, 2], -1, 1);
    },
  });

  it('reports σ per layer, matching each layer, and leaks no tensors across steps', async () => {
    const { generator, discriminator } = models();
    const trainer = new Trainer({ generator, discriminator, data: data(), steps: 6, plugins: [spectralNorm({ every: 2 })] });
    const counts: number[] = [];
    const reported: Record<number, Record<string, number>> = {};
    trainer.on('step:end', ({ step, scalars }) => {
      counts.push(tf.memory().numTensors);
      reported[step] = scalars;
    });
    await trainer.train();
    const names = spectralNormLayers(discriminator).map((l) => `spectral-norm/sigma/${l.name}`);
    expect(Object.keys(reported[2]).filter((k) => k.startsWith('spectral-norm/'))).toEqual(names);
    expect(Object.keys(reported[3]).filter((k) => k.startsWith('spectral-norm/'))).toEqual([]);
    // Step 6's report follows the last D update (the G update leaves D alone): it equals each layer's sigma() now.
    for (const layer of spectralNormLayers(discriminator)) {
      const sigma = layer.sigma();
      expect(reported[6][`spectral-norm/sigma/${layer.name}`]).toBeCloseTo(sigma.dataSync()[0], 3);
      sigma.dispose();
    }
    expect(counts[5]).toBe(counts[3]);
  });

  it('fails at setup when the discriminator has no SpectralNormalization layer', async () => {
    const generator = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [2], units: 2 })] });
    const discriminator = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [2], units: 1 })] });
    const trainer = new Trainer({ generator, discriminator, data: data(), steps: 1, plugins: [spectralNorm()] });
    await expect(trainer.train()).rejects.toThrow(/no SpectralNormalization layer/);
  });
});
