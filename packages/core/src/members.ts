import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { GantryError } from './errors.js';

/**
 * Independent models trained as one ("members"): S models of the same Dense-chain architecture become one model whose
 * Dense layers carry a leading member axis (kernel [S, in, out], one batched matrix product for all members), so a
 * step of S small models costs the kernel calls of one. Tiny models are dispatch-bound, which makes S seeds of a toy
 * experiment nearly as cheap as one.
 *
 * Layout: a batch of N = S·n rows is member-major (rows m·n … m·n + n − 1 belong to member m), at the model's input
 * and output alike, so data, latents, losses and the trainer see an ordinary [N, features] batch. Member m's rows
 * only ever meet member m's weights; a loss that is a mean over rows is (1/S)·Σ of the members' own losses, so every
 * member's gradient is its own divided by S. Adam is per element and invariant to that scale except through ε: give
 * the optimizers ε/S (`memberEpsilon`) and every member's update equals the one it would take alone, up to rounding.
 */
export class MemberDense extends tfl.layers.Layer {
  static readonly className = 'GantryMemberDense';
  readonly members: number;
  readonly units: number;
  readonly useBias: boolean;
  kernel?: tfl.LayerVariable;
  bias?: tfl.LayerVariable;

  constructor(args: { members: number; units: number; useBias?: boolean; inputShape?: number[]; name?: string; trainable?: boolean }) {
    const { members, units, useBias, ...layerArgs } = args;
    super(layerArgs);
    if (!Number.isInteger(members) || members < 1) throw new GantryError(`MemberDense: members must be a positive integer, got ${members}`);
    if (!Number.isInteger(units) || units < 1) throw new GantryError(`MemberDense: units must be a positive integer, got ${units}`);
    this.members = members;
    this.units = units;
    this.useBias = useBias ?? true;
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
    const inputDim = shape[shape.length - 1];
    if (shape.length !== 2 || inputDim == null) {
      throw new GantryError(`MemberDense "${this.name}" takes [batch, features] inputs; got [${shape.join(', ')}]`);
    }
    // Glorot-uniform per member (fans of one member's [in, out] kernel); `stackMembers` overwrites it anyway.
    const limit = Math.sqrt(6 / (inputDim + this.units));
    this.kernel = this.addWeight('kernel', [this.members, inputDim, this.units], 'float32', tfl.initializers.randomUniform({ minval: -limit, maxval: limit }));
    if (this.useBias) this.bias = this.addWeight('bias', [this.members, 1, this.units], 'float32', tfl.initializers.zeros());
    this.built = true;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
    return [shape[0], this.units];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    return tf.tidy(() => {
      const y = tf.matMul(toMemberAxis(x, this.members), this.kernel!.read());
      return fromMemberAxis(this.bias ? tf.add(y, this.bias.read()) : y);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), members: this.members, units: this.units, useBias: this.useBias };
  }
}
tf.serialization.registerClass(MemberDense);

/** [S·n, …] member-major rows → [S, n, …]. */
export function toMemberAxis(x: tf.Tensor, members: number): tf.Tensor {
  if (x.shape[0] % members !== 0) {
    throw new GantryError(`A batch of ${x.shape[0]} rows cannot be split among ${members} members; use a multiple of ${members}`);
  }
  return tf.reshape(x, [members, x.shape[0] / members, ...x.shape.slice(1)]);
}

/** [S, n, …] → [S·n, …] member-major rows. */
export function fromMemberAxis(x: tf.Tensor): tf.Tensor {
  const [members, rows, ...rest] = x.shape;
  return tf.reshape(x, [members * rows!, ...rest]);
}

/**
 * Concatenates member-major batches so that the result is member-major too: member m's rows of every part, in order
 * (a plain concat would put members 0 and 1 of the first part into member 0's rows). One member: `tf.concat`.
 */
export function concatMembers(parts: readonly tf.Tensor[], members: number): tf.Tensor {
  if (members === 1) return tf.concat(parts as tf.Tensor[]);
  return tf.tidy(() => fromMemberAxis(tf.concat(parts.map((p) => toMemberAxis(p, members)), 1)));
}

/** The inverse of `concatMembers`: splits a member-major batch into parts of `sizes` rows (each a multiple of S). */
export function splitMembers(x: tf.Tensor, sizes: readonly number[], members: number): tf.Tensor[] {
  if (members === 1) return tf.split(x, sizes as number[]);
  return tf.tidy(() => tf.split(toMemberAxis(x, members), sizes.map((s) => s / members), 1).map(fromMemberAxis));
}

/** Member m's rows of a member-major batch. */
export function memberRows(x: tf.Tensor, members: number, member: number): tf.Tensor {
  const n = x.shape[0] / members;
  if (!Number.isInteger(n)) throw new GantryError(`A batch of ${x.shape[0]} rows cannot be split among ${members} members`);
  return tf.slice(x, member * n, n);
}

/** The Adam ε that makes S members summed into one mean-over-rows loss update as each would alone (see MemberDense). */
export function memberEpsilon(epsilon: number, members: number): number {
  return epsilon / members;
}

interface DenseInternals {
  getClassName(): string;
  kernel?: tfl.LayerVariable;
  bias?: tfl.LayerVariable;
  useBias?: boolean;
  units?: number;
  getConfig(): tf.serialization.ConfigDict;
}

/** Elementwise layers that work on member-major rows as they are. */
const ELEMENTWISE: Record<string, (config: tf.serialization.ConfigDict) => tfl.layers.Layer> = {
  Activation: (c) => tfl.layers.activation({ activation: c.activation as 'relu' }),
  ReLU: (c) => tfl.layers.reLU({ maxValue: (c.maxValue as number | null) ?? undefined }),
  LeakyReLU: (c) => tfl.layers.leakyReLU({ alpha: c.alpha as number }),
};

/**
 * GAN pairs (one per seed) as one generator and one discriminator of members (`stackMembers`). A single pair is
 * returned as it is; otherwise the solo models are disposed, since the stacked ones hold copies of their weights.
 */
export function stackMemberPairs(pairs: readonly { generator: tfl.LayersModel; discriminator: tfl.LayersModel }[]): {
  generator: tfl.LayersModel;
  discriminator: tfl.LayersModel;
} {
  if (pairs.length === 1) return { generator: pairs[0].generator, discriminator: pairs[0].discriminator };
  const stack = (which: 'generator' | 'discriminator') => {
    const stacked = stackMembers(pairs.map((p) => p[which]));
    pairs.forEach((p) => p[which].dispose());
    return stacked;
  };
  return { generator: stack('generator'), discriminator: stack('discriminator') };
}

/**
 * One model that computes `models` side by side: model m is member m (its weights copied, so each keeps the
 * initialization of its own seed). The models must be chains of the same Dense, Activation, ReLU and LeakyReLU layers;
 * Dense layers become `MemberDense` followed by their activation. The caller still owns `models`.
 */
export function stackMembers(models: readonly tfl.LayersModel[], name = `${models[0]?.name ?? 'model'}_members`): tfl.LayersModel {
  if (models.length === 0) throw new GantryError('stackMembers needs at least one model');
  const members = models.length;
  const first = models[0];
  const signature = (m: tfl.LayersModel) =>
    m.layers.map((l) => `${l.getClassName()}${JSON.stringify(l.getWeights().map((w) => w.shape))}${JSON.stringify({ ...l.getConfig(), name: undefined })}`).join(' ');
  models.forEach((m, i) => {
    if (m.inputs.length !== 1 || m.outputs.length !== 1) throw new GantryError(`stackMembers: model ${i} ("${m.name}") must have one input and one output`);
    if (i > 0 && signature(m) !== signature(first)) throw new GantryError(`stackMembers: model ${i} ("${m.name}") differs in its layers from model 0 ("${first.name}")`);
  });
  const layerLists = models.map((m) => m.layers.filter((l) => l.getClassName() !== 'InputLayer'));
  const inputShape = first.inputs[0].shape.slice(1) as number[];
  if (inputShape.length !== 1) throw new GantryError(`stackMembers: models must take [batch, features] inputs; "${first.name}" takes [batch, ${inputShape.join(', ')}]`);
  const input = tfl.input({ shape: inputShape });
  let h: tfl.SymbolicTensor = input;
  const copies: [tfl.LayerVariable, tf.Tensor][] = [];
  layerLists[0].forEach((raw, i) => {
    const layer = raw as unknown as DenseInternals;
    const kind = layer.getClassName();
    if (kind === 'Dense') {
      const dense = new MemberDense({ members, units: layer.units!, useBias: layer.useBias });
      h = dense.apply(h) as tfl.SymbolicTensor;
      const weightsOf = (which: 'kernel' | 'bias') => layerLists.map((l) => (l[i] as unknown as DenseInternals)[which]!.read());
      copies.push([dense.kernel!, tf.stack(weightsOf('kernel'))]);
      if (dense.bias) copies.push([dense.bias, tf.tidy(() => tf.expandDims(tf.stack(weightsOf('bias')), 1))]);
      const activation = layer.getConfig().activation as string;
      if (activation !== 'linear') h = tfl.layers.activation({ activation: activation as 'relu' }).apply(h) as tfl.SymbolicTensor;
    } else if (ELEMENTWISE[kind]) {
      h = ELEMENTWISE[kind](raw.getConfig()).apply(h) as tfl.SymbolicTensor;
    } else {
      throw new GantryError(`stackMembers supports chains of Dense, Activation, ReLU and LeakyReLU layers; layer "${raw.name}" is ${kind}`);
    }
  });
  const stacked = tfl.model({ inputs: input, outputs: h, name });
  for (const [variable, value] of copies) {
    variable.write(value);
    value.dispose();
  }
  return stacked;
}
