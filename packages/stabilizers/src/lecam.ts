import * as tf from '@tensorflow/tfjs-core';
import { GantryError, checkOptions, definePlugin, type GantryPlugin, type LossContext } from '@gantry/core';

export interface LecamOptions {
  /**
   * λ, the regularizer's weight. No universal default: the authors use 0.2–0.3 for BigGAN on CIFAR (hinge loss) and
   * 1e-6 / 3e-7 for StyleGAN2 on CIFAR / FFHQ, whose logits are far larger.
   */
  lambda: number;
  /** Decay of the anchors' moving averages. Default 0.99 (the authors' StyleGAN2 code). */
  decay?: number;
}

export interface LecamPlugin extends GantryPlugin {
  /**
   * The current anchors (α_R, α_F), bias-corrected; undefined before the first discriminator phase. Asynchronous: the
   * anchors live on the device, and WebGPU in Node has no synchronous read.
   */
  anchors(): Promise<{ real: number; fake: number } | undefined>;
}

/**
 * LeCam regularization (Tseng et al. 2021) for training with limited data: λ·(E[relu(D(x) − α_F)²] +
 * E[relu(α_R − D(G(z)))²]), where α_R and α_F are exponential moving averages of the mean D(real) and D(fake). It keeps
 * D's outputs for real data from drifting far above those for fakes. The relu (only outputs past the other kind's
 * anchor are pulled back) and the bias-corrected average (α = v / (1 − decayⁿ) after n updates) follow the authors'
 * StyleGAN2 code. The anchors move once per discriminator phase, before the term is computed, from the batch's
 * outputs (no gradient flows into them); they live on the device while a run trains (no read per step; read back and freed when it ends) and are checkpointed with the
 * update count, so a resumed run continues exactly. Reports `lecam/anchor_real` and `lecam/anchor_fake`.
 */
export function lecam(options: LecamOptions): LecamPlugin {
  checkOptions('lecam', options, ['lambda', 'decay']);
  const { lambda } = options;
  const decay = options.decay ?? 0.99;
  if (typeof lambda !== 'number' || !(lambda >= 0) || !Number.isFinite(lambda)) {
    throw new GantryError(`lecam: lambda is required and must be ≥ 0 (e.g. lecam({ lambda: 0.3 })), got ${lambda}`);
  }
  if (!(decay >= 0 && decay < 1)) throw new GantryError(`lecam: decay must be in [0, 1), got ${decay}`);

  // The moving sums live on the device while a run trains; when it ends they are read back into `parked` and freed,
  // so no tensor outlives the run, and the next train() (or a checkpoint taken between runs) starts from them.
  let sums: { real: tf.Variable; fake: tf.Variable } | undefined;
  let parked = { real: 0, fake: 0 };
  let updates = 0;
  const ensure = () =>
    (sums ??= tf.tidy(() => ({ real: tf.variable(tf.scalar(parked.real), false), fake: tf.variable(tf.scalar(parked.fake), false) })));
  const readSums = async () => {
    if (!sums) return parked;
    const [real, fake] = await Promise.all([sums.real.data(), sums.fake.data()]);
    return { real: real[0], fake: fake[0] };
  };

  return definePlugin({
    name: 'lecam',
    async anchors() {
      if (updates === 0) return undefined;
      const correction = 1 - decay ** updates;
      const { real, fake } = await readSums();
      return { real: real / correction, fake: fake / correction };
    },
    hooks: {
      async teardown() {
        if (!sums) return;
        parked = await readSums();
        tf.dispose([sums.real, sums.fake]);
        sums = undefined;
      },
      lossTerms: {
        phase: 'D',
        handler: (ctx: LossContext) => {
          if (!ctx.realLogits) throw new GantryError('lecam: the discriminator phase has no D(real)');
          const { real, fake } = ensure();
          const realLogits = ctx.realLogits;
          tf.tidy(() => {
            real.assign(tf.add(tf.mul(real, decay), tf.mul(tf.mean(realLogits), 1 - decay)));
            fake.assign(tf.add(tf.mul(fake, decay), tf.mul(tf.mean(ctx.fakeLogits), 1 - decay)));
          });
          updates += 1;
          const correction = 1 - decay ** updates;
          return tf.tidy(() => {
            // Reading the variables detaches the anchors from the tape: D's gradient comes only through its outputs.
            const anchorReal = tf.div(real, correction) as tf.Scalar;
            const anchorFake = tf.div(fake, correction) as tf.Scalar;
            ctx.report('anchor_real', anchorReal);
            ctx.report('anchor_fake', anchorFake);
            const realTerm = tf.mean(tf.square(tf.relu(tf.sub(realLogits, anchorFake))));
            const fakeTerm = tf.mean(tf.square(tf.relu(tf.sub(anchorReal, ctx.fakeLogits))));
            return tf.mul(lambda, tf.add(realTerm, fakeTerm)) as tf.Scalar;
          });
        },
      },
    },
    state: {
      save: () => {
        // Copies: what save() returns belongs to the core, which disposes it once written.
        const tensors: Record<string, tf.Tensor> = sums
          ? { real: tf.clone(sums.real), fake: tf.clone(sums.fake) }
          : updates > 0
            ? { real: tf.scalar(parked.real), fake: tf.scalar(parked.fake) }
            : {};
        return { json: { updates, decay }, tensors };
      },
      load(snapshot) {
        const json = (snapshot.json ?? {}) as { updates?: number };
        updates = json.updates ?? 0;
        const tensors = snapshot.tensors ?? {};
        if (sums) tf.dispose([sums.real, sums.fake]);
        sums = undefined;
        parked = { real: 0, fake: 0 };
        const { real, fake } = ensure();
        if (tensors.real) real.assign(tensors.real);
        if (tensors.fake) fake.assign(tensors.fake);
      },
    },
  });
}
