import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { GantryError } from '@gantry/core';
import {
  ELIGIBLE_CLASSES,
  type EligibleClassName,
  kernelAsMatrix,
  outputAxis,
  powerIteration,
  sigmaEstimate,
} from './power-iteration.js';

type Layer = tfl.layers.Layer;
type LayerArgs = NonNullable<ConstructorParameters<typeof tfl.layers.Layer>[0]>;
type Kwargs = Parameters<Layer['call']>[1];

export interface SpectralNormalizationArgs extends LayerArgs {
  /** The layer to normalize: a Dense, Conv2D or Conv2DTranspose layer (built or not). */
  layer: Layer;
  /** Power-iteration rounds per training forward pass (Miyato et al. and torch use 1). */
  powerIterations?: number;
  /** Floor of the norms in the power iteration (torch's default 1e-12). */
  epsilon?: number;
}

/** The part of Dense / Conv2D / Conv2DTranspose this wrapper touches (private in the tfjs typings). */
interface HasKernel {
  kernel: { read(): tf.Tensor } | null;
}

export function isEligibleLayer(layer: Layer): boolean {
  return (ELIGIBLE_CLASSES as readonly string[]).includes(layer.getClassName());
}

function deserializeLayer(config: tf.serialization.ConfigDict): Layer {
  const className = config.className as string;
  const entry = tf.serialization.SerializationMap.getMap().classNameMap[className];
  if (!entry) throw new GantryError(`SpectralNormalization: unknown inner layer class "${className}"`);
  const [cls, fromConfig] = entry;
  return fromConfig(cls, config.config as tf.serialization.ConfigDict) as unknown as Layer;
}

/**
 * Spectral normalization (Miyato et al. 2018) of a Dense, Conv2D or Conv2DTranspose layer, with the semantics of
 * `torch.nn.utils.spectral_norm`: the kernel is viewed as a matrix with the output channels as rows, a persistent
 * vector `u` (a non-trainable weight, saved with the model) is refined by power iteration on every training forward
 * pass, and the layer runs with W/σ, σ = uᵀWv, gradients flowing through σ with u and v held constant.
 * With `training` false (predict, evaluation) the stored u is used and not updated.
 *
 * Weights, in order: the inner layer's (kernel, bias) then `u`. Built under this layer's name, so a wrapped layer
 * named `d1` has weights `d1/kernel`, `d1/bias`, `d1/u`.
 */
export class SpectralNormalization extends tfl.layers.Layer {
  static readonly className = 'SpectralNormalization';
  readonly layer: Layer;
  readonly powerIterations: number;
  readonly epsilon: number;
  private u: tfl.LayerVariable | null = null;
  private outAxis = -1;

  constructor(args: SpectralNormalizationArgs) {
    const { layer, powerIterations = 1, epsilon = 1e-12, ...layerArgs } = args;
    super(layerArgs);
    if (!layer || !isEligibleLayer(layer)) {
      throw new GantryError(
        `SpectralNormalization wraps ${ELIGIBLE_CLASSES.join(', ')} layers; got ${layer ? layer.getClassName() : layer}`,
      );
    }
    if (!Number.isInteger(powerIterations) || powerIterations < 1) {
      throw new GantryError(`SpectralNormalization: powerIterations must be an integer ≥ 1, got ${powerIterations}`);
    }
    this.layer = layer;
    this.powerIterations = powerIterations;
    this.epsilon = epsilon;
  }

  // Trainability and weights are the inner layer's, plus u (never trainable).
  override get trainable(): boolean {
    return this.layer != null ? this.layer.trainable : false;
  }

  override set trainable(value: boolean) {
    if (this.layer != null) this.layer.trainable = value;
  }

  override get trainableWeights(): tfl.LayerVariable[] {
    return this.layer.trainableWeights;
  }

  override get nonTrainableWeights(): tfl.LayerVariable[] {
    return this.u ? [...this.layer.nonTrainableWeights, this.u] : this.layer.nonTrainableWeights;
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
    if (!this.layer.built) {
      this.layer.build(shape);
      this.layer.built = true;
    }
    const kernel = this.kernelVariable();
    this.outAxis = outputAxis(this.layer.getClassName() as EligibleClassName, kernel.shape.length);
    this.u = this.addWeight(
      'u',
      [kernel.shape[this.outAxis]],
      'float32',
      tfl.initializers.randomNormal({ mean: 0, stddev: 1 }),
      undefined,
      false,
    );
    this.built = true;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape | tfl.Shape[] {
    return this.layer.computeOutputShape(inputShape);
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor | tf.Tensor[] {
    return tf.tidy(() => {
      const training = kwargs?.['training'] === true;
      const kernelVar = this.kernelVariable();
      const kernel = kernelVar.read();
      const matrix = kernelAsMatrix(kernel, this.outAxis);
      const { u, v } = powerIteration(
        matrix,
        this.u!.read() as tf.Tensor1D,
        training ? this.powerIterations : 0,
        this.epsilon,
      );
      if (training) this.u!.write(u);
      const normalized = tf.div(kernel, sigmaEstimate(matrix, u, v));
      // Dense, Conv2D and Conv2DTranspose read their kernel through `this.kernel.read()` in call(): substituting the
      // normalized kernel for one call runs the stock layer (padding, strides, activation, bias) on W/σ.
      const inner = this.layer as unknown as HasKernel;
      const original = inner.kernel;
      inner.kernel = { read: () => normalized };
      try {
        return this.layer.call(inputs, kwargs);
      } finally {
        inner.kernel = original;
      }
    });
  }

  /** The current estimate of the kernel's largest singular value from the stored u (no update). Caller disposes. */
  sigma(): tf.Scalar {
    return tf.tidy(() => {
      const matrix = kernelAsMatrix(this.kernelVariable().read(), this.outAxis);
      const { u, v } = powerIteration(matrix, this.u!.read() as tf.Tensor1D, 0, this.epsilon);
      return sigmaEstimate(matrix, u, v);
    });
  }

  /** The kernel the layer computes with, W/σ (from the stored u, no update). Caller disposes. */
  normalizedKernel(): tf.Tensor {
    return tf.tidy(() => tf.div(this.kernelVariable().read(), this.sigma()));
  }

  private kernelVariable(): tfl.LayerVariable {
    const kernel = (this.layer as unknown as HasKernel).kernel;
    if (kernel == null) throw new GantryError(`SpectralNormalization(${this.name}): the inner layer has no kernel yet`);
    return kernel as tfl.LayerVariable;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      layer: { className: this.layer.getClassName(), config: this.layer.getConfig() },
      powerIterations: this.powerIterations,
      epsilon: this.epsilon,
    };
  }

  static override fromConfig<T extends tf.serialization.Serializable>(
    cls: tf.serialization.SerializableConstructor<T>,
    config: tf.serialization.ConfigDict,
  ): T {
    const { layer, ...rest } = config;
    return new cls({ ...rest, layer: deserializeLayer(layer as tf.serialization.ConfigDict) });
  }
}
tf.serialization.registerClass(SpectralNormalization);

/** `spectralNormalization({ layer: tfl.layers.dense({ units: 1 }) })`: SpectralNormalization as a factory. */
export function spectralNormalization(args: SpectralNormalizationArgs): SpectralNormalization {
  return new SpectralNormalization(args);
}
