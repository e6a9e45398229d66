// A custom stabilizer written against the plugin API: add Gaussian noise to the discriminator's real inputs that
// fades out over the first `steps` steps, and report the noise level. Run:
//   npx tsx --conditions=@gantry/source examples/custom-stabilizer.ts
import * as tf from '@tensorflow/tfjs-core';
import { Trainer, definePlugin, withSeed } from '@gantry/core';
import { useBackend } from '@gantry/engine';
import { ring } from '@gantry/datasets';
import * as tfl from '@tensorflow/tfjs-layers';

function fadingNoise(sigma0 = 0.3, steps = 1000) {
  const sigmaAt = (step: number) => sigma0 * Math.max(0, 1 - step / steps);
  return definePlugin({
    name: 'fading-noise',
    hooks: {
      // Returning a new batch hands it to the core; the old tensors are disposed for us.
      transformBatch: (batch, ctx) => ({
        ...batch,
        x: tf.tidy(() => tf.add(batch.x, tf.randomNormal(batch.x.shape, 0, sigmaAt(ctx.step), 'float32', ctx.rng.nextSeed()))),
      }),
      beforeStep: (ctx) => ctx.report('sigma', tf.scalar(sigmaAt(ctx.step))),
    },
  });
}

await useBackend('auto');
const models = withSeed(1, () => ({
  generator: tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [16], units: 64, activation: 'relu' }), tfl.layers.dense({ units: 2 })] }),
  discriminator: tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [2], units: 64, activation: 'relu' }), tfl.layers.dense({ units: 1 })] }),
}));
const trainer = new Trainer({ ...models, data: ring(), steps: 300, batchSize: 128, plugins: [fadingNoise()] });
trainer.on('step:end', ({ step, scalars }) => {
  if (step % 100 === 0) console.log(step, scalars['fading-noise/sigma'].toFixed(3), scalars.d_loss.toFixed(3));
});
await trainer.train();
