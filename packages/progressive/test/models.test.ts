import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { ProgressiveGan, downsample, fadeReal, padImages, upsample2x } from '../src/index.js';
import '@tensorflow/tfjs-backend-cpu';
import { useCpuBackend, values } from '@gantry/core/testing';

beforeAll(useCpuBackend);

const gan = () => new ProgressiveGan({ latentDim: 8, channels: 1, resolution: 16, filters: [6, 5, 4], seed: 3 });

describe('ProgressiveGan', () => {
  it('has the right shapes at every stage, stable and fading', () => {
    const g = gan();
    expect(g.resolutions).toEqual([4, 8, 16]);
    const z = tf.randomNormal([3, 8], 0, 1, 'float32', 1);
    for (let s = 0; s < 3; s++) {
      const r = g.resolutions[s];
      for (const fading of s > 0 ? [false, true] : [false]) {
        const out = g.generator(s, fading).predict(z) as tf.Tensor;
        expect(out.shape).toEqual([3, r, r, 1]);
        const logits = g.discriminator(s, fading).predict(out) as tf.Tensor;
        expect(logits.shape).toEqual([3, 1]);
        tf.dispose([out, logits]);
      }
    }
    expect(() => g.generator(0, true)).toThrow(/no fade-in/);
    expect(() => g.discriminator(3)).toThrow(/does not exist/);
    z.dispose();
  });

  it('shares weights between stage models, and stage s+1 only adds its own block', () => {
    const g = gan();
    const w0 = new Set(g.generator(0).trainableWeights);
    const w1 = g.generator(1).trainableWeights;
    const fade1 = g.generator(1, true).trainableWeights;
    // Stage 1 drops only toRGB_4 and adds block 8 + toRGB_8; the fade model keeps toRGB_4 too.
    expect(w1.filter((w) => w0.has(w)).length).toBe(w0.size - 2);
    expect(new Set(fade1)).toEqual(new Set([...w0, ...w1]));
    // Everything of the last fade models, plus toRGB_4 and fromRGB_4 (kernel, bias) and the 8×8 fade α of G and D.
    const last = new Set([...g.generator(2, true).weights, ...g.discriminator(2, true).weights]);
    expect(g.allWeights().length).toBe(last.size + 2 + 2 + 2);
  });

  for (const stage of [1, 2]) {
    it(`stage ${stage} generator: α = 0 is exactly the upsampled old output, α = 1 exactly the new one`, () => {
      const g = gan();
      const z = tf.randomNormal([4, 8], 0, 1, 'float32', 7);
      const old = upsample2x(g.generator(stage - 1).predict(z) as tf.Tensor4D);
      const fresh = g.generator(stage).predict(z) as tf.Tensor;
      g.setAlpha(stage, 0);
      const at0 = g.generator(stage, true).predict(z) as tf.Tensor;
      g.setAlpha(stage, 1);
      const at1 = g.generator(stage, true).predict(z) as tf.Tensor;
      g.setAlpha(stage, 0.25);
      const mid = g.generator(stage, true).predict(z) as tf.Tensor;
      expect(values(at0)).toEqual(values(old));
      expect(values(at1)).toEqual(values(fresh));
      expect(values(at0)).not.toEqual(values(at1));
      const o = values(old);
      const f = values(fresh);
      values(mid).forEach((v, i) => expect(v).toBeCloseTo(0.75 * o[i] + 0.25 * f[i], 6));
      tf.dispose([z, old, fresh, at0, at1, mid]);
    });

    it(`stage ${stage} discriminator: α = 0 is exactly D_{s−1}(avgpool(x)), α = 1 exactly D_s(x)`, () => {
      const g = gan();
      const r = g.resolutions[stage];
      const x = tf.tanh(tf.randomNormal([4, r, r, 1], 0, 1, 'float32', 9)) as tf.Tensor4D;
      const pooled = tf.avgPool(x, 2, 2, 'valid');
      const old = g.discriminator(stage - 1).predict(pooled) as tf.Tensor;
      const fresh = g.discriminator(stage).predict(x) as tf.Tensor;
      g.setAlpha(stage, 0);
      const at0 = g.discriminator(stage, true).predict(x) as tf.Tensor;
      g.setAlpha(stage, 1);
      const at1 = g.discriminator(stage, true).predict(x) as tf.Tensor;
      expect(values(at0)).toEqual(values(old));
      expect(values(at1)).toEqual(values(fresh));
      expect(values(at0)).not.toEqual(values(at1));
      tf.dispose([x, pooled, old, fresh, at0, at1]);
    });
  }

  it('puts layersBeforeFinalBlock in front of the final discriminator block of every stage', () => {
    const marker = tfl.layers.activation({ activation: 'linear', name: 'before_final' });
    const g = new ProgressiveGan({ latentDim: 8, resolution: 16, filters: 4, layersBeforeFinalBlock: () => [marker] });
    for (let s = 0; s < 3; s++) {
      for (const fading of s > 0 ? [false, true] : [false]) {
        const layers = g.discriminator(s, fading).layers;
        const at = layers.indexOf(marker);
        expect(at).toBeGreaterThan(0);
        expect(layers[at + 1].name).toBe('d_4_conv');
      }
    }
  });

  it('stage models serialize and load back (custom layers registered)', async () => {
    const g = gan();
    g.setAlpha(2, 0.3);
    const model = g.generator(2, true);
    const copy = await tfl.models.modelFromJSON({ modelTopology: model.toJSON(null, false) } as never);
    copy.setWeights(model.getWeights());
    const z = tf.randomNormal([2, 8], 0, 1, 'float32', 2);
    const a = model.predict(z) as tf.Tensor;
    const b = copy.predict(z) as tf.Tensor;
    expect(values(b)).toEqual(values(a));
    tf.dispose([z, a, b]);
  });
});

describe('image helpers', () => {
  it('pads 28 → 32 with -1 and average-pools exactly', () => {
    const x = tf.ones([1, 28, 28, 1]);
    const padded = padImages(x, 32);
    expect(padded.shape).toEqual([1, 32, 32, 1]);
    const v = values(padded);
    expect(v[0]).toBe(-1);
    expect(v[2 * 32 + 2]).toBe(1);
    expect(v[1 * 32 + 2]).toBe(-1);
    expect(v.filter((p) => p === 1).length).toBe(28 * 28);
    const pooled = downsample(padded, 4);
    expect(pooled.shape).toEqual([1, 4, 4, 1]);
    // Corner 8×8 cell: 2 padded rows + 2 padded columns → 36 ones and 28 minus-ones out of 64.
    expect(values(pooled)[0]).toBeCloseTo((36 - 28) / 64, 7);
    tf.dispose([x, padded, pooled]);
  });

  it('fades real images between the coarse and the full version', () => {
    const x = tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], [1, 4, 4, 1]);
    const coarse = fadeReal(x, 0);
    expect(values(coarse)).toEqual([3.5, 3.5, 5.5, 5.5, 3.5, 3.5, 5.5, 5.5, 11.5, 11.5, 13.5, 13.5, 11.5, 11.5, 13.5, 13.5]);
    const full = fadeReal(x, 1);
    expect(values(full)).toEqual(values(x));
    const half = fadeReal(x, 0.5);
    values(half).forEach((v, i) => expect(v).toBeCloseTo(0.5 * values(coarse)[i] + 0.5 * (i + 1), 6));
    tf.dispose([x, coarse, full, half]);
  });
});
