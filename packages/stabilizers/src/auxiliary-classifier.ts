import * as tf from '@tensorflow/tfjs-core';
import { GantryError, checkOptions, definePlugin, nonSaturating, type GanLoss, type GantryPlugin, type LossContext } from '@gantry/core';

export interface AuxiliaryClassifierOptions {
  /** Number of classes K: the discriminator outputs [N, 1 + K] (column 0 the real/fake logit, then K class logits). */
  classes: number;
  /** The adversarial loss applied to column 0. Default non-saturating (as AC-GAN). */
  loss?: GanLoss;
  /** Weight of the classification terms. Default 1. */
  weight?: number;
}

/** Mean softmax cross-entropy of class logits [N, K] against integer labels [N]. */
export function classCrossEntropy(classLogits: tf.Tensor, labels: tf.Tensor, classes: number): tf.Scalar {
  return tf.tidy(() => {
    const target = tf.oneHot(tf.cast(tf.reshape(labels, [-1]), 'int32'), classes);
    return tf.neg(tf.mean(tf.sum(tf.mul(target, tf.logSoftmax(classLogits)), 1))) as tf.Scalar;
  });
}

/**
 * AC-GAN (Odena et al. 2017; the tfjs-examples mnist-acgan recipe): the discriminator also classifies. Its output is
 * [N, 1 + K]; `loss` sees only column 0, and the plugin `ac` adds the classes' cross-entropy: in the D phase on real
 * images with their labels and on generated images with the labels they were generated for, in the G phase on the
 * generated images (G wants its samples recognised as the class it was asked for). Spread the result into the
 * Trainer options: `{ ...auxiliaryClassifier({ classes: 10 }), plugins: [...] }` — `plugins` holds the `ac` plugin.
 * Reports `D/ac` and `G/ac`.
 */
export function auxiliaryClassifier(options: AuxiliaryClassifierOptions): { loss: GanLoss; plugins: GantryPlugin[] } {
  checkOptions('auxiliaryClassifier', options, ['classes', 'loss', 'weight']);
  const { classes } = options;
  const weight = options.weight ?? 1;
  if (!Number.isInteger(classes) || classes < 2) throw new GantryError(`auxiliaryClassifier: classes must be an integer ≥ 2, got ${classes}`);
  if (!(weight >= 0)) throw new GantryError(`auxiliaryClassifier: weight must be ≥ 0, got ${weight}`);
  const base = options.loss ?? nonSaturating();
  const source = (logits: tf.Tensor) => {
    if (logits.rank !== 2 || logits.shape[1] !== 1 + classes) {
      throw new GantryError(`auxiliaryClassifier: the discriminator must output [N, ${1 + classes}] (1 + classes), got [${logits.shape}]`);
    }
    return tf.slice(logits, [0, 0], [-1, 1]);
  };
  const classLogits = (logits: tf.Tensor) => tf.slice(logits, [0, 1], [-1, classes]);
  const loss: GanLoss = {
    name: `ac-${base.name}`,
    discriminatorLoss: (real, fake) => tf.tidy(() => base.discriminatorLoss(source(real), source(fake))),
    generatorLoss:
      base.generatorLoss.length >= 2
        ? (fake, real) => tf.tidy(() => base.generatorLoss(source(fake), real && source(real)))
        : (fake) => tf.tidy(() => base.generatorLoss(source(fake))),
  };
  const plugin = definePlugin({
    name: 'ac',
    hooks: {
      lossTerms: (ctx: LossContext) => {
        if (!ctx.labels) throw new GantryError('auxiliaryClassifier: the batch has no labels');
        const labels = ctx.labels;
        return tf.tidy(() => {
          const onFake = classCrossEntropy(classLogits(ctx.fakeLogits), labels, classes);
          const total = ctx.phase === 'D' && ctx.realLogits ? tf.add(onFake, classCrossEntropy(classLogits(ctx.realLogits), labels, classes)) : onFake;
          return tf.mul(total, weight) as tf.Scalar;
        });
      },
    },
  });
  return { loss, plugins: [plugin] };
}
