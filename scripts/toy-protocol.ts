/**
 * The 2-D mixture GANs of the published mode-collapse protocols, shared by `mode-coverage.ts` (coverage) and
 * `toy-speed.ts` (where a step's time goes). See mode-coverage.ts for what the protocols are and where they come from.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { Trainer, memberEpsilon, minimax, nonSaturating, stackMemberPairs, withSeed, type GanLoss, type GantryPlugin, type NormalGenerator, type StepRunner } from '@gantry/core';
import { grid, ring, type Mixture2D } from '@gantry/datasets';
import { unrolled } from '@gantry/unrolled';

export const LATENT_DIM = 256;

export interface Protocol {
  generator(seed: number): tfl.LayersModel;
  discriminator(inputDim: number, seed: number): tfl.LayersModel;
  loss: () => GanLoss;
  learningRates: { generator: number; discriminator: number };
}

/**
 * Dense MLP; with `orthogonalGain`, every kernel is a random orthogonal matrix times the gain (the reference's
 * `tf.orthogonal_initializer(gain=1.4)`; tfjs-layers' own orthogonal initializer fails under tfjs-core 4 with
 * "rMat.flatten is not a function"), drawn from `seed`.
 */
export function mlp(name: string, sizes: number[], activation: 'tanh' | 'relu', seed: number, orthogonalGain?: number): tfl.LayersModel {
  const model = tfl.sequential({
    name,
    layers: sizes.slice(1).map((units, i) =>
      tfl.layers.dense({ ...(i === 0 ? { inputShape: [sizes[0]] } : {}), units, activation: i < sizes.length - 2 ? activation : 'linear' }),
    ),
  });
  if (orthogonalGain !== undefined) {
    model.layers.forEach((layer, i) => {
      const [kernel, bias] = layer.getWeights();
      const [rows, cols] = kernel.shape;
      const q = tf.tidy(() => {
        // QR of a tall Gaussian matrix: Q has orthonormal columns; transpose when the kernel is wide.
        const tall = tf.randomNormal([Math.max(rows, cols), Math.min(rows, cols)], 0, 1, 'float32', seed * 101 + i);
        const [qTall] = tf.linalg.qr(tall);
        return tf.mul(rows >= cols ? qTall : tf.transpose(qTall), orthogonalGain);
      });
      layer.setWeights([q, bias]);
      q.dispose(); // getWeights() returns the live variable values: kernel and bias stay
    });
  }
  return model;
}

export const PROTOCOLS: Record<string, Protocol> = {
  reference: {
    generator: (seed) => mlp('generator', [LATENT_DIM, 128, 128, 2], 'tanh', seed, 1.4),
    discriminator: (d, seed) => mlp('discriminator', [d, 128, 128, 1], 'tanh', seed + 7, 1.4),
    loss: minimax,
    learningRates: { generator: 1e-3, discriminator: 1e-4 },
  },
  gantry: {
    generator: (seed) => mlp('generator', [LATENT_DIM, 128, 128, 2], 'relu', seed),
    discriminator: (d, seed) => mlp('discriminator', [d, 128, 1], 'relu', seed),
    loss: nonSaturating,
    learningRates: { generator: 1e-3, discriminator: 1e-3 },
  },
};

export async function variantPlugins(variant: string): Promise<{ plugins: GantryPlugin[]; pack: number }> {
  if (variant === 'gan') return { plugins: [], pack: 1 };
  if (variant === 'unrolled') return { plugins: [unrolled({ steps: 5, mode: 'full' })], pack: 1 };
  if (variant === 'unrolled-first-order') return { plugins: [unrolled({ steps: 5, mode: 'first-order' })], pack: 1 };
  const m = /^pacgan(\d+)$/.exec(variant);
  if (m) {
    const { pacgan } = await import('@gantry/pacgan');
    return { plugins: [pacgan({ degree: Number(m[1]) })], pack: Number(m[1]) };
  }
  throw new Error(`unknown variant "${variant}"`);
}

/** ring: 8 Gaussians on radius 2, σ 0.02; grid: 5×5 at {−4, −2, 0, 2, 4}², σ `gridStd`. */
export function mixture(name: string, gridStd = 0.05): Mixture2D {
  if (name === 'ring') return ring({ modes: 8, radius: 2, std: 0.02 });
  if (name === 'grid') return grid({ size: 5, spacing: 2, std: gridStd });
  throw new Error(`unknown data "${name}" (ring or grid)`);
}

export function protocolNamed(name: string): Protocol {
  const protocol = PROTOCOLS[name];
  if (!protocol) throw new Error(`unknown protocol "${name}" (reference or gantry)`);
  return protocol;
}

/**
 * A protocol with one setting changed, for ablations (which of the protocols' differences decides an outcome):
 * either learning rate (positive, finite) or the loss (`minimax`, `non-saturating`).
 */
export function protocolWith(
  protocol: Protocol,
  changes: { generatorLearningRate?: string; discriminatorLearningRate?: string; loss?: string },
): Protocol {
  const rate = (text: string | undefined, fallback: number, option: string) => {
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!(value > 0 && Number.isFinite(value))) throw new Error(`${option} must be a positive number, got "${text}"`);
    return value;
  };
  const losses: Record<string, () => GanLoss> = { minimax, 'non-saturating': nonSaturating };
  if (changes.loss !== undefined && !(changes.loss in losses)) {
    throw new Error(`--loss must be minimax or non-saturating, got "${changes.loss}"`);
  }
  return {
    ...protocol,
    loss: changes.loss === undefined ? protocol.loss : losses[changes.loss]!,
    learningRates: {
      generator: rate(changes.generatorLearningRate, protocol.learningRates.generator, '--g-lr'),
      discriminator: rate(changes.discriminatorLearningRate, protocol.learningRates.discriminator, '--d-lr'),
    },
  };
}

/**
 * A seeded trainer for the protocol: batch 512, Adam β1 0.5, the variant's plugins. With several `seeds`, one trainer
 * trains them all as members of one model (`stackMembers`: one set of kernels per step for all seeds), each member
 * initialized from its own seed, drawing its own 512 rows of data and latents (member-major batches of 512·S rows),
 * Adam's ε divided by S so every member updates as it would alone; member 0 is the run of the first seed alone up to
 * float rounding (its rows of the trainer's streams are the ones a run alone draws).
 */
export async function toyTrainer(options: {
  protocol: Protocol;
  variant: string;
  data: Mixture2D;
  seeds: number[];
  steps: number;
  /** e.g. `captureSteps().run` (@gantry/engine): the steps as TensorFlow graphs. */
  stepRunner?: StepRunner;
  /** The Trainer's normalGenerator: 'fast' draws the latents with the ziggurat (other numbers, about 3× faster per value). */
  normalGenerator?: NormalGenerator;
}): Promise<Trainer> {
  const { protocol, variant, data, seeds, steps, stepRunner, normalGenerator } = options;
  const { plugins, pack } = await variantPlugins(variant);
  const solo = seeds.map((seed) =>
    withSeed(seed, () => ({
      generator: protocol.generator(seed),
      discriminator: protocol.discriminator(2 * pack, seed),
    })),
  );
  const members = seeds.length;
  const { generator, discriminator } = stackMemberPairs(solo);
  const epsilon = memberEpsilon(1e-8, members);
  return new Trainer({
    generator,
    discriminator,
    data,
    steps,
    batchSize: 512 * members,
    seed: seeds[0],
    loss: protocol.loss(),
    optimizers: {
      generator: tf.train.adam(protocol.learningRates.generator, 0.5, 0.999, epsilon),
      discriminator: tf.train.adam(protocol.learningRates.discriminator, 0.5, 0.999, epsilon),
    },
    plugins,
    stepRunner,
    normalGenerator,
  });
}
