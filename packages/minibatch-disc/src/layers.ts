import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { GantryError } from '@gantry/core';

type LayerArgs = NonNullable<ConstructorParameters<typeof tfl.layers.Layer>[0]>;
type Kwargs = Parameters<tfl.layers.Layer['call']>[1];
type Initializer = ReturnType<typeof tfl.initializers.randomNormal>;

function single(x: tf.Tensor | tf.Tensor[]): tf.Tensor {
  return Array.isArray(x) ? x[0] : x;
}

function singleShape(shape: tfl.Shape | tfl.Shape[]): tfl.Shape {
  return (Array.isArray(shape[0]) ? shape[0] : shape) as tfl.Shape;
}

/** An initializer instance, or its serialized form `{ className, config }` (what a saved model holds). */
function resolveInitializer(init: Initializer | tf.serialization.ConfigDict | undefined, fallback: () => Initializer): Initializer {
  if (init == null) return fallback();
  if (typeof (init as Initializer).apply === 'function') return init as Initializer;
  const { className, config } = init as { className: string; config: tf.serialization.ConfigDict };
  const entry = tf.serialization.SerializationMap.getMap().classNameMap[className];
  if (!entry) throw new GantryError(`Unknown initializer class "${className}"`);
  return entry[1](entry[0], config ?? {}) as unknown as Initializer;
}

// ------------------------------------------------------------------------------------------------------------------
// Minibatch discrimination (Salimans et al. 2016, "Improved Techniques for Training GANs", §3.2)
// ------------------------------------------------------------------------------------------------------------------

export interface MinibatchDiscriminationArgs extends LayerArgs {
  /** B: number of kernels, i.e. of features appended per sample. */
  kernels: number;
  /** C: dimension of each kernel's projection. */
  dims: number;
  /** Initializer of T (shape [A, B·C]). Default: normal with stddev 0.05, as in the paper's code. */
  kernelInitializer?: Initializer | tf.serialization.ConfigDict;
}

/**
 * Minibatch discrimination, exactly as in the paper: for features f(x_i) ∈ R^A (input [N, A]) and a learned tensor
 * T ∈ R^{A×B×C}, M_i = f(x_i)·T ∈ R^{B×C}; c_b(i, j) = exp(−‖M_{i,b} − M_{j,b}‖₁); o(x_i)_b = Σ_{j≠i} c_b(i, j).
 * The output is [f(x_i), o(x_i)]: shape [N, A + B]. Flatten convolutional features first.
 * Cost: O(N²·B·C) per batch.
 */
export class MinibatchDiscrimination extends tfl.layers.Layer {
  static readonly className = 'MinibatchDiscrimination';
  readonly kernels: number;
  readonly dims: number;
  private readonly kernelInitializer: Initializer;
  private kernel: tfl.LayerVariable | null = null;

  constructor(args: MinibatchDiscriminationArgs) {
    const { kernels, dims, kernelInitializer, ...layerArgs } = args;
    super(layerArgs);
    for (const [key, value] of [
      ['kernels', kernels],
      ['dims', dims],
    ] as const) {
      if (!Number.isInteger(value) || value < 1) {
        throw new GantryError(`minibatchDiscrimination: ${key} must be a positive integer, got ${value}`);
      }
    }
    this.kernels = kernels;
    this.dims = dims;
    this.kernelInitializer = resolveInitializer(kernelInitializer, () =>
      tfl.initializers.randomNormal({ mean: 0, stddev: 0.05 }),
    );
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const shape = singleShape(inputShape);
    if (shape.length !== 2 || shape[1] == null) {
      throw new GantryError(
        `minibatchDiscrimination expects features of shape [batch, A]; got [${shape.join(', ')}] (add a flatten layer first)`,
      );
    }
    this.kernel = this.addWeight('kernel', [shape[1], this.kernels * this.dims], 'float32', this.kernelInitializer);
    this.built = true;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const shape = singleShape(inputShape);
    return [shape[0], (shape[1] as number) + this.kernels];
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      const x = single(inputs);
      const n = x.shape[0];
      const m = tf.reshape(tf.matMul(x, this.kernel!.read()), [n, this.kernels, this.dims]);
      // ‖M_{i,b} − M_{j,b}‖₁ for every pair: [N, N, B].
      const l1 = tf.sum(tf.abs(tf.sub(tf.expandDims(m, 1), tf.expandDims(m, 0))), -1);
      // Σ_j includes j = i, where c = exp(0) = 1 exactly: subtract it.
      const o = tf.sub(tf.sum(tf.exp(tf.neg(l1)), 1), 1);
      return tf.concat([x, o], -1);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      kernels: this.kernels,
      dims: this.dims,
      kernelInitializer: {
        className: this.kernelInitializer.getClassName(),
        config: this.kernelInitializer.getConfig(),
      },
    };
  }
}
tf.serialization.registerClass(MinibatchDiscrimination);

export function minibatchDiscrimination(args: MinibatchDiscriminationArgs): MinibatchDiscrimination {
  return new MinibatchDiscrimination(args);
}

// ------------------------------------------------------------------------------------------------------------------
// Minibatch standard deviation (Karras et al. 2018, "Progressive Growing of GANs", §3)
// ------------------------------------------------------------------------------------------------------------------

/** The group size actually used for a batch: the largest divisor of `batchSize` that is ≤ `groupSize`. */
export function effectiveGroupSize(batchSize: number, groupSize: number): number {
  for (let g = Math.min(groupSize, batchSize); g > 1; g--) if (batchSize % g === 0) return g;
  return 1;
}

export interface MinibatchStdDevArgs extends LayerArgs {
  /** Samples per group (ProGAN: 4). Batches it does not divide use their largest divisor ≤ groupSize. */
  groupSize?: number;
  /** Added to the variance before the square root (ProGAN: 1e-8). */
  epsilon?: number;
}

/**
 * Minibatch standard deviation as in ProGAN: the batch of N samples is split into N/G groups of G samples (sample i
 * joins group i mod (N/G), the strided grouping of the reference code); for each group, the standard deviation of
 * every feature over the group's samples, sqrt(Var + ε) with the population variance, is averaged over all features
 * and appended to each sample of the group as one extra constant feature map: [N, H, W, C] → [N, H, W, C + 1], or
 * [N, F] → [N, F + 1] for flat features.
 *
 * G is the largest divisor of N that is ≤ groupSize, so any batch size works: with groupSize 4, N = 6 uses G = 3 and a
 * prime N such as 7 uses G = 1 (the extra map is then the constant sqrt(ε) and carries no information).
 */
export class MinibatchStdDev extends tfl.layers.Layer {
  static readonly className = 'MinibatchStdDev';
  readonly groupSize: number;
  readonly epsilon: number;

  constructor(args: MinibatchStdDevArgs = {}) {
    const { groupSize = 4, epsilon = 1e-8, ...layerArgs } = args;
    super(layerArgs);
    if (!Number.isInteger(groupSize) || groupSize < 1) {
      throw new GantryError(`minibatchStdDev: groupSize must be a positive integer, got ${groupSize}`);
    }
    this.groupSize = groupSize;
    this.epsilon = epsilon;
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const shape = singleShape(inputShape);
    if (shape.length < 2) throw new GantryError(`minibatchStdDev expects [batch, ...features]; got [${shape.join(', ')}]`);
    this.built = true;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const shape = singleShape(inputShape);
    const last = shape[shape.length - 1];
    return [...shape.slice(0, -1), last == null ? null : last + 1];
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      const x = single(inputs);
      const [n, ...features] = x.shape;
      const g = effectiveGroupSize(n, this.groupSize);
      const groups = n / g;
      const grouped = tf.reshape(x, [g, groups, ...features]);
      const centered = tf.sub(grouped, tf.mean(grouped, 0, true));
      const std = tf.sqrt(tf.add(tf.mean(tf.square(centered), 0), this.epsilon)); // [groups, ...features]
      const perGroup = tf.mean(tf.reshape(std, [groups, -1]), 1); // [groups]
      const perSample = tf.reshape(tf.tile(tf.reshape(perGroup, [1, groups]), [g, 1]), [n]);
      const map = tf.mul(
        tf.reshape(perSample, [n, ...features.map(() => 1)]),
        tf.ones([1, ...features.slice(0, -1), 1]),
      );
      return tf.concat([x, map], -1);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), groupSize: this.groupSize, epsilon: this.epsilon };
  }
}
tf.serialization.registerClass(MinibatchStdDev);

export function minibatchStdDev(args: MinibatchStdDevArgs = {}): MinibatchStdDev {
  return new MinibatchStdDev(args);
}
