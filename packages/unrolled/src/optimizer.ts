import * as tf from '@tensorflow/tfjs-core';
import { GantryError } from '@gantry/core';
import { tapeNode } from './tape.js';

type OptimizerClass = { fromConfig(cls: unknown, config: tf.serialization.ConfigDict): tf.Optimizer };

/**
 * An independent optimizer of the same class and settings with a copy of the state (step count, moments).
 * Updating it leaves the original untouched: tfjs optimizer variables are replaced on assignment, never mutated,
 * so the copy may start out sharing their data.
 */
export async function copyOptimizer(optimizer: tf.Optimizer): Promise<tf.Optimizer> {
  const cls = optimizer.constructor as unknown as OptimizerClass;
  if (typeof cls.fromConfig !== 'function') {
    throw new GantryError(`Cannot copy optimizer ${optimizer.getClassName()}: it has no fromConfig`);
  }
  const copy = cls.fromConfig(cls, optimizer.getConfig());
  const state = await optimizer.getWeights();
  try {
    await copy.setWeights(state);
  } finally {
    // The first entry (step count) is a fresh tensor; the rest are the original's live variables.
    state[0]?.tensor.dispose();
  }
  return copy;
}

/** What functional unrolling needs to know to mirror the discriminator's optimizer update rule. */
export type UpdateRule =
  | { kind: 'sgd'; learningRate: number }
  | {
      kind: 'adam';
      learningRate: number;
      beta1: number;
      beta2: number;
      epsilon: number;
      /** Updates applied so far (the next update is number iterations + 1). */
      iterations: number;
      /** Current moments by trainable-weight position; undefined where not created yet (zeros). */
      m: (tf.Tensor | undefined)[];
      v: (tf.Tensor | undefined)[];
    };

/** Reads the update rule and current state of an SGD or Adam optimizer (the moments are its live variables). */
export async function readUpdateRule(optimizer: tf.Optimizer, learningRate?: number): Promise<UpdateRule> {
  const kind = optimizer.getClassName();
  const config = optimizer.getConfig() as Record<string, number>;
  if (kind === 'SGD') return { kind: 'sgd', learningRate: learningRate ?? config.learningRate };
  if (kind !== 'Adam') {
    throw new GantryError(`Full unrolling mirrors SGD or Adam discriminator optimizers, not ${kind}`);
  }
  const state = await optimizer.getWeights();
  const iterations = (await state[0].tensor.data())[0];
  state[0].tensor.dispose();
  const moments = state.slice(1).map((s) => s.tensor);
  const half = moments.length / 2;
  return {
    kind: 'adam',
    learningRate: learningRate ?? config.learningRate,
    beta1: config.beta1,
    beta2: config.beta2,
    epsilon: config.epsilon,
    iterations,
    m: moments.slice(0, half),
    v: moments.slice(half),
  };
}

/** Adam's bias corrections for one update: 1 − β₁^t and 1 − β₂^t. */
export interface AdamCorrections {
  beta1: tf.Scalar;
  beta2: tf.Scalar;
}

/**
 * The bias corrections of Adam update j (j lookahead updates already taken), computed by the same ops as inside
 * `functionalUpdate`, so equal bit for bit. They are constants of the lookahead: computed before the generator's
 * gradient tape opens, they cost no tape nodes and no copies of saved inputs (four ops and six copies per update
 * when computed on the tape). The caller owns them.
 */
export function adamCorrections(rule: Extract<UpdateRule, { kind: 'adam' }>, j: number): AdamCorrections {
  // tfjs keeps accBeta = β^(t) with t the 1-based number of the update being applied.
  const t = rule.iterations + 1 + j;
  return tf.tidy(() => ({
    beta1: tf.sub(1, tf.pow(tf.scalar(rule.beta1), tf.scalar(t))) as tf.Scalar,
    beta2: tf.sub(1, tf.pow(tf.scalar(rule.beta2), tf.scalar(t))) as tf.Scalar,
  }));
}

/**
 * One update of `params` with gradients `grads`, written with differentiable ops so gradients flow through it.
 * `j` counts the lookahead updates already taken. Matches tfjs's SGD and Adam updates op for op. `corrections`:
 * Adam's `adamCorrections(rule, j)` computed beforehand (else computed here).
 */
export function functionalUpdate(
  rule: UpdateRule,
  params: readonly tf.Tensor[],
  grads: readonly tf.Tensor[],
  state: { m: tf.Tensor[]; v: tf.Tensor[] },
  j: number,
  corrections?: AdamCorrections,
): tf.Tensor[] {
  if (rule.kind === 'sgd') return params.map((p, i) => tf.add(p, tf.mul(grads[i], tf.scalar(-rule.learningRate))));
  const { beta1, beta2 } = corrections ?? adamCorrections(rule, j);
  return params.map((p, i) => {
    const [next, m, v] = adamStep(rule, p, grads[i], state.m[i], state.v[i], beta1, beta2);
    state.m[i] = m;
    state.v[i] = v;
    return next;
  });
}

/**
 * Adam's update of one weight tensor as one node of the gradient tape: [p', m', v'] from (p, g, m, v). Recorded op
 * by op, the update put 14 nodes and 22 copies of saved tensors on the generator's tape per lookahead update; as one
 * node it keeps 7. Its backward pass is what tfjs's gradients of those ops compute, op for op and operand for
 * operand (RealDiv, Multiply, Add, Sqrt, Maximum, Square), so the generator's gradient is the same to the bit
 * (tested), less the Casts and Reshapes that change nothing and the recomputed square root.
 */
function adamStep(
  rule: Extract<UpdateRule, { kind: 'adam' }>,
  p: tf.Tensor,
  g: tf.Tensor,
  m: tf.Tensor,
  v: tf.Tensor,
  oneMinusAccBeta1: tf.Scalar,
  oneMinusAccBeta2: tf.Scalar,
): tf.Tensor[] {
  const { beta1, beta2, epsilon, learningRate } = rule;
  return tapeNode(
    { p, g, m, v },
    (save) => {
      const mNext = tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1));
      const vNext = tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2));
      const mHat = tf.div(mNext, oneMinusAccBeta1);
      const vHat = tf.div(vNext, oneMinusAccBeta2);
      // sqrt has an infinite slope at 0, and a weight whose gradient has always been exactly 0 (a dead ReLU unit)
      // has v = 0: ∞·0 would poison the second-order gradient with NaN. The floor changes no value that matters.
      const root = tf.sqrt(tf.maximum(vHat, 1e-30));
      const denominator = tf.add(root, epsilon);
      save([g, mHat, vHat, root, denominator, oneMinusAccBeta1, oneMinusAccBeta2]);
      return [tf.add(tf.mul(tf.div(mHat, denominator), -learningRate), p), mNext, vNext];
    },
    ([dNext, dMNext, dVNext], saved) => {
      const [gSaved, mHat, vHat, root, denominator, c1, c2] = saved;
      // tfjs passes zeros for an output nothing downstream uses (the last update's moments).
      const dStep = tf.mul(dNext, -learningRate); // Multiply: dy · b
      const dMHat = tf.div(dStep, denominator); // RealDiv, a: dy / b
      const dDenominator = tf.neg(tf.div(tf.mul(dStep, mHat), tf.square(denominator))); // RealDiv, b: −(dy · a) / b²
      const dRoot = tf.div(dDenominator, tf.mul(root, 2)); // Sqrt: dy / (2√x)
      const dVHat = tf.mul(dRoot, tf.cast(tf.greaterEqual(vHat, 1e-30), 'float32')); // Maximum, a: dy · (a ≥ b)
      const dM = tf.add(dMNext, tf.div(dMHat, c1)); // this update's use of m' and the next update's
      const dV = tf.add(dVNext, tf.div(dVHat, c2));
      const dGSquared = tf.mul(dV, 1 - beta2);
      const dG = tf.add(tf.mul(dGSquared, tf.mul(gSaved, 2)), tf.mul(dM, 1 - beta1)); // Square: dy · 2x
      return {
        p: () => tf.reshape(dNext, p.shape),
        g: () => dG,
        m: () => tf.mul(dM, beta1),
        v: () => tf.mul(dV, beta2),
      };
    },
  );
}
