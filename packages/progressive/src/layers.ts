import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { LayerVariable } from '@tensorflow/tfjs-layers';

type LayerArgs = ConstructorParameters<typeof tfl.layers.Layer>[0];

/**
 * Blends two inputs of the same shape: (1 − α)·old + α·new, with α a non-trainable weight (so it is saved with the
 * model). Written this way, α = 0 gives exactly `old` and α = 1 exactly `new`.
 */
export class FadeIn extends tfl.layers.Layer {
  static readonly className = 'GantryFadeIn';
  private alphaWeight?: LayerVariable;

  constructor(args: LayerArgs = {}) {
    super(args);
  }

  override build(): void {
    this.alphaWeight = this.addWeight('alpha', [1], 'float32', tfl.initializers.zeros(), undefined, false);
    this.built = true;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    return (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    if (!Array.isArray(inputs) || inputs.length !== 2) throw new Error('FadeIn takes two inputs: [old, new]');
    const [old, fresh] = inputs;
    return tf.tidy(() => {
      const alpha = this.alphaWeight!.read();
      return tf.add(tf.mul(old, tf.sub(1, alpha)), tf.mul(fresh, alpha));
    });
  }

  get alpha(): number {
    return this.alphaWeight ? this.alphaWeight.read().dataSync()[0] : 0;
  }

  set alpha(value: number) {
    if (!this.alphaWeight) throw new Error(`FadeIn layer "${this.name}" is not built yet`);
    tf.tidy(() => {
      this.alphaWeight!.write(tf.tensor1d([value]));
    });
  }
}
tf.serialization.registerClass(FadeIn);

/** ProGAN's pixelwise feature normalization: each pixel's feature vector scaled to unit mean square. */
export class PixelNorm extends tfl.layers.Layer {
  static readonly className = 'GantryPixelNorm';
  readonly epsilon: number;

  constructor(args: LayerArgs & { epsilon?: number } = {}) {
    super(args);
    this.epsilon = args.epsilon ?? 1e-8;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape | tfl.Shape[] {
    return inputShape;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    return tf.tidy(() => tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), this.epsilon))));
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), epsilon: this.epsilon };
  }
}
tf.serialization.registerClass(PixelNorm);
