/**
 * The engine's reference DCGAN-MNIST models (packages/engine/src/reference-models.ts, issue 3's spec):
 *   G: dense -> 7x7x128, conv2dTranspose 64 k4 s2 same, batchnorm, relu, conv2dTranspose 1 k4 s2 same, tanh
 *   D: conv2d 64 k4 s2 same, leaky relu 0.2, conv2d 128 k4 s2 same, leaky relu 0.2, flatten, dense 1
 * and one training step (one D update, one G update) for the non-saturating and the WGAN-GP (lambda = 10) losses; the
 * WGAN-GP loss and penalty are @gantry/loss-wgan's.
 * scripts/gpu/torch_bench.py builds the same models in PyTorch.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { REFERENCE_LATENT_DIM, randomNormalFast, referenceDiscriminator, referenceGenerator } from '@gantry/engine';
import { gradientPenaltyLoss, wgan } from '@gantry/loss-wgan';

export const LATENT = REFERENCE_LATENT_DIM;
export const buildGenerator = (): tfl.LayersModel => referenceGenerator();
export const buildDiscriminator = (): tfl.LayersModel => referenceDiscriminator();

export type BenchLoss = 'nonsat' | 'wgangp';

export interface StepRig {
  G: tfl.LayersModel;
  D: tfl.LayersModel;
  step: () => tf.Scalar;
  dispose: () => void;
}

export interface RigOptions {
  /** Seeded noise for reproducible comparisons across backends (default: unseeded tf.randomNormal/randomUniform). */
  seed?: number;
  /** Latent noise from Gantry's GPU generator (randomNormalFast) instead of tf.randomNormal. */
  gpuRng?: boolean;
}

/** Sets up models, optimizers and a fixed real batch on the active backend; `step()` returns the D loss (caller disposes). */
export function makeRig(loss: BenchLoss, batch: number, options: RigOptions = {}): StepRig {
  let seed = options.seed;
  const nextSeed = () => (seed === undefined ? undefined : (seed = (seed * 1103515245 + 12345) % 2147483648));
  const normal = (shape: number[]) =>
    options.gpuRng ? randomNormalFast(shape, 0, 1, nextSeed()) : tf.randomNormal(shape, 0, 1, 'float32', nextSeed());
  const uniform = (shape: number[], lo = 0, hi = 1) => tf.randomUniform(shape, lo, hi, 'float32', nextSeed());
  const G = buildGenerator();
  const D = buildDiscriminator();
  const gVars = G.trainableWeights.map((w) => w.read() as tf.Variable);
  const dVars = D.trainableWeights.map((w) => w.read() as tf.Variable);
  const optD = loss === 'nonsat' ? tf.train.adam(2e-4, 0.5, 0.999) : tf.train.adam(1e-4, 0, 0.9);
  const optG = loss === 'nonsat' ? tf.train.adam(2e-4, 0.5, 0.999) : tf.train.adam(1e-4, 0, 0.9);
  const real = tf.tidy(() => uniform([batch, 28, 28, 1], -1, 1));
  const disc = (x: tf.Tensor) => D.apply(x, { training: true }) as tf.Tensor;
  const gen = (z: tf.Tensor) => G.apply(z, { training: true }) as tf.Tensor;
  const softplus = (x: tf.Tensor) => tf.softplus(x);
  const wganLoss = wgan();

  const step = (): tf.Scalar => {
    const z1 = normal([batch, LATENT]);
    const fake = tf.tidy(() => gen(z1));
    const { value: dLoss, grads: dGrads } = optD.computeGradients(() => {
      const realLogits = disc(real);
      const fakeLogits = disc(fake);
      if (loss === 'nonsat') {
        // -log sigmoid(r) - log(1 - sigmoid(f)) = softplus(-r) + softplus(f)
        return tf.add(tf.mean(softplus(tf.neg(realLogits))), tf.mean(softplus(fakeLogits))) as tf.Scalar;
      }
      const eps = uniform([batch, 1, 1, 1]);
      const { penalty } = gradientPenaltyLoss(disc, real, fake, eps, { lambda: 10 });
      return tf.add(wganLoss.discriminatorLoss(realLogits, fakeLogits), penalty) as tf.Scalar;
    }, dVars);
    optD.applyGradients(dGrads as tf.NamedTensorMap as Parameters<typeof optD.applyGradients>[0]);
    tf.dispose([z1, fake, ...Object.values(dGrads)]);

    const z2 = normal([batch, LATENT]);
    const { value: gLoss, grads: gGrads } = optG.computeGradients(() => {
      const logits = disc(gen(z2));
      return loss === 'nonsat' ? (tf.mean(softplus(tf.neg(logits))) as tf.Scalar) : wganLoss.generatorLoss(logits);
    }, gVars);
    optG.applyGradients(gGrads as tf.NamedTensorMap as Parameters<typeof optG.applyGradients>[0]);
    tf.dispose([z2, gLoss, ...Object.values(gGrads)]);
    return dLoss;
  };

  return {
    G,
    D,
    step,
    dispose: () => {
      real.dispose();
      optD.dispose();
      optG.dispose();
      G.dispose();
      D.dispose();
    },
  };
}
