import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { GantryError } from '@gantry/core';

type LayerArgs = NonNullable<ConstructorParameters<typeof tfl.layers.Layer>[0]>;

function checkDegree(degree: number, where: string): void {
  if (!Number.isInteger(degree) || degree < 1) throw new GantryError(`${where}: degree must be a positive integer, got ${degree}`);
}

/**
 * Packs every `degree` consecutive samples of a batch into one (Lin et al. 2018): samples i·m … i·m + m − 1 form pack
 * i. Flat samples [B, F] become [B/m, m·F] (features concatenated in sample order); images [B, H, W, C] become
 * [B/m, H, W, m·C] (channels concatenated, as PacGAN does for images). B must be a multiple of m.
 */
export function packSamples(x: tf.Tensor, degree: number): tf.Tensor {
  checkDegree(degree, 'packSamples');
  const [batch, ...element] = x.shape;
  if (batch % degree !== 0) {
    throw new GantryError(`PacGAN: a batch of ${batch} samples cannot be packed ${degree} at a time; use a batch size that is a multiple of ${degree}`);
  }
  const packs = batch / degree;
  if (x.rank === 2) return tf.reshape(x, [packs, degree * element[0]]);
  if (x.rank === 4) {
    const [h, w, c] = element;
    return tf.tidy(() => tf.reshape(tf.transpose(tf.reshape(x, [packs, degree, h, w, c]), [0, 2, 3, 1, 4]), [packs, h, w, degree * c]));
  }
  throw new GantryError(`PacGAN packs flat samples [batch, features] or images [batch, H, W, C]; got shape [${x.shape.join(', ')}]`);
}

export interface PackArgs extends LayerArgs {
  /** m: samples per pack. */
  degree: number;
}

/** `packSamples` as a layer: put it first in a discriminator (it has no weights). */
export class Pack extends tfl.layers.Layer {
  static readonly className = 'GantryPack';
  readonly degree: number;

  constructor(args: PackArgs) {
    const { degree, ...layerArgs } = args;
    super(layerArgs);
    checkDegree(degree, 'Pack');
    this.degree = degree;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
    if (shape.length === 2) return [null, shape[1] == null ? null : this.degree * shape[1]];
    if (shape.length === 4) return [null, shape[1], shape[2], shape[3] == null ? null : this.degree * shape[3]];
    throw new GantryError(`Pack expects [batch, features] or [batch, H, W, C] inputs; got [${shape.join(', ')}]`);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return packSamples(Array.isArray(inputs) ? inputs[0] : inputs, this.degree);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), degree: this.degree };
  }
}
tf.serialization.registerClass(Pack);

/**
 * A discriminator over single samples built from `inner`, a discriminator over packs: the returned model takes
 * [B, …] samples, packs them with `Pack` and gives `inner`'s B/m outputs. It shares `inner`'s layers and weights.
 */
export function packDiscriminator(inner: tfl.LayersModel, degree: number): tfl.LayersModel {
  checkDegree(degree, 'packDiscriminator');
  if (inner.inputs.length !== 1) throw new GantryError(`PacGAN needs a discriminator with one input; "${inner.name}" has ${inner.inputs.length}`);
  const packedShape = inner.inputs[0].shape.slice(1);
  const last = packedShape.length - 1;
  const size = packedShape[last];
  if (size == null || size % degree !== 0 || (packedShape.length !== 1 && packedShape.length !== 3)) {
    throw new GantryError(
      `PacGAN degree ${degree}: the discriminator "${inner.name}" must take [batch, ${degree}·features] or [batch, H, W, ${degree}·C] packs; its input is [batch, ${packedShape.join(', ')}]`,
    );
  }
  const elementShape = packedShape.map((d, i) => (i === last ? size / degree : d)) as number[];
  const input = tfl.input({ shape: elementShape });
  const output = inner.apply(new Pack({ degree }).apply(input)) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: output, name: `${inner.name}_packed${degree}` });
}
