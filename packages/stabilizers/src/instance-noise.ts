import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { GantryError, checkOptions, definePlugin, type GantryPlugin, type Rng } from '@gantry/core';

/**
 * Adds N(0, σ²) noise to its input in training mode, with σ set from outside (by the `instanceNoise` plugin) each
 * step. It sits at the front of the discriminator so that real and generated samples both get noise, in the
 * discriminator phase and in the generator phase alike; at σ = 0 and in inference it is the identity.
 */
export class InstanceNoise extends tfl.layers.Layer {
  static readonly className = 'GantryInstanceNoise';
  /** Current standard deviation; 0 disables the noise. */
  sigma = 0;
  /** Seeds come from here (the trainer's RNG, so runs and resumes are reproducible); unseeded when absent. */
  rng?: Rng;

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape | tfl.Shape[] {
    return inputShape;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    if (kwargs.training !== true || this.sigma === 0) return tf.clone(x);
    const sigma = this.sigma;
    const seed = this.rng?.nextSeed();
    return tf.tidy(() => tf.add(x, tf.mul(tf.randomNormal(x.shape, 0, 1, 'float32', seed), sigma)));
  }
}
tf.serialization.registerClass(InstanceNoise);

export interface InstanceNoiseOptions {
  /** Initial standard deviation of the noise (inputs live in [-1, 1]). Default 0.1. */
  sigma?: number;
  /** σ falls linearly from `sigma` at step 1 to 0 at step `annealSteps + 1` and stays 0. */
  annealSteps: number;
}

/** σ used in a (1-based) step: sigma·max(0, 1 − (step − 1)/annealSteps). */
export function annealedSigma(sigma: number, annealSteps: number, step: number): number {
  return sigma * Math.max(0, 1 - (step - 1) / annealSteps);
}

function findNoiseLayers(model: LayersModel): InstanceNoise[] {
  const found: InstanceNoise[] = [];
  const visit = (layers: tfl.layers.Layer[]) => {
    for (const layer of layers) {
      if (layer instanceof InstanceNoise) found.push(layer);
      else if (Array.isArray((layer as Partial<LayersModel>).layers)) visit((layer as LayersModel).layers);
    }
  };
  visit(model.layers);
  return found;
}

export interface InstanceNoisePlugin extends GantryPlugin {
  /** A new noise layer to put first in the discriminator (pass `inputShape` for a Sequential model). */
  layer(args?: ConstructorParameters<typeof tfl.layers.Layer>[0]): InstanceNoise;
}

/**
 * Instance noise (Sønderby et al. 2016; Arjovsky & Bottou 2017) with a linearly annealed σ: blurring both
 * distributions makes their supports overlap, so the discriminator cannot become perfect early on. The core's
 * `transformBatch` reaches only real samples, so the noise lives in a layer at the front of the discriminator
 * (`noise.layer()`); this plugin sets that layer's σ every step and reports it as `instance-noise/sigma`.
 */
export function instanceNoise(options: InstanceNoiseOptions): InstanceNoisePlugin {
  checkOptions('instanceNoise', options, ['sigma', 'annealSteps']);
  const sigma = options.sigma ?? 0.1;
  const { annealSteps } = options;
  if (!(sigma >= 0)) throw new GantryError(`instanceNoise sigma must be >= 0, got ${sigma}`);
  if (!Number.isInteger(annealSteps) || annealSteps < 1) {
    throw new GantryError(`instanceNoise annealSteps must be a positive integer, got ${annealSteps}`);
  }
  const plugin = definePlugin({
    name: 'instance-noise',
    hooks: {
      setup(trainer) {
        if (findNoiseLayers(trainer.discriminator).length === 0) {
          throw new GantryError('instanceNoise: the discriminator has no noise layer; put noise.layer() first in it');
        }
      },
      beforeStep(ctx) {
        const layers = findNoiseLayers(ctx.trainer.discriminator);
        if (layers.length === 0) throw new GantryError('instanceNoise: the discriminator has no noise layer');
        const value = annealedSigma(sigma, annealSteps, ctx.step);
        for (const layer of layers) {
          layer.sigma = value;
          layer.rng = ctx.rng;
        }
        tf.tidy(() => ctx.report('sigma', tf.scalar(value)));
      },
    },
  });
  return Object.assign(plugin, { layer: (args: ConstructorParameters<typeof tfl.layers.Layer>[0] = {}) => new InstanceNoise(args) });
}
