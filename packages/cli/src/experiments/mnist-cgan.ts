import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { nonSaturating } from '@gantry/core';
import { ema } from '@gantry/stabilizers';
import { defineExperiment, evalFid } from './types.js';

const CLASSES = 10;

/**
 * Class-conditional generator: [z, one-hot(y)] concatenated, then the reference DCGAN generator's layers with batch
 * norm and ReLU after the dense layer as in Radford et al. (dense 7·7·128 + batch norm + ReLU → convT 64 + batch norm
 * + ReLU → convT 1, tanh); the reference model feeds the dense output linearly into the first transposed convolution.
 */
export function conditionalGenerator(latentDim = 100, classes = CLASSES): tfl.LayersModel {
  const z = tfl.input({ shape: [latentDim], name: 'z' });
  const label = tfl.input({ shape: [classes], name: 'label' });
  let h = tfl.layers.concatenate({ name: 'g_concat' }).apply([z, label]) as tfl.SymbolicTensor;
  h = tfl.layers.dense({ units: 7 * 7 * 128, name: 'g_dense' }).apply(h) as tfl.SymbolicTensor;
  h = tfl.layers.batchNormalization({ name: 'g_bn0' }).apply(h) as tfl.SymbolicTensor;
  h = tfl.layers.reLU({ name: 'g_relu0' }).apply(h) as tfl.SymbolicTensor;
  h = tfl.layers.reshape({ targetShape: [7, 7, 128], name: 'g_reshape' }).apply(h) as tfl.SymbolicTensor;
  h = tfl.layers.conv2dTranspose({ filters: 64, kernelSize: 4, strides: 2, padding: 'same', name: 'g_deconv1' }).apply(h) as tfl.SymbolicTensor;
  h = tfl.layers.batchNormalization({ name: 'g_bn1' }).apply(h) as tfl.SymbolicTensor;
  h = tfl.layers.reLU({ name: 'g_relu1' }).apply(h) as tfl.SymbolicTensor;
  const image = tfl.layers
    .conv2dTranspose({ filters: 1, kernelSize: 4, strides: 2, padding: 'same', activation: 'tanh', name: 'g_deconv2' })
    .apply(h) as tfl.SymbolicTensor;
  return tfl.model({ inputs: [z, label], outputs: image, name: 'conditional_generator' });
}

/**
 * Projection discriminator (Miyato & Koyama 2018): D(x, y) = ψ(φ(x)) + ⟨embed(y), φ(x)⟩, with φ the reference DCGAN
 * discriminator's convolutional trunk (conv 64 → leaky ReLU → conv 128 → leaky ReLU → flatten), ψ a linear output and
 * embed(y) a class embedding (a bias-free dense layer on the one-hot label) of φ's width. The class enters only
 * through the inner product, which is what the paper derives for a log-linear conditional model.
 */
export function projectionDiscriminator(classes = CLASSES): tfl.LayersModel {
  const image = tfl.input({ shape: [28, 28, 1], name: 'image' });
  const label = tfl.input({ shape: [classes], name: 'label' });
  let h = tfl.layers.conv2d({ filters: 64, kernelSize: 4, strides: 2, padding: 'same', name: 'd_conv1' }).apply(image) as tfl.SymbolicTensor;
  h = tfl.layers.leakyReLU({ alpha: 0.2, name: 'd_lrelu1' }).apply(h) as tfl.SymbolicTensor;
  h = tfl.layers.conv2d({ filters: 128, kernelSize: 4, strides: 2, padding: 'same', name: 'd_conv2' }).apply(h) as tfl.SymbolicTensor;
  h = tfl.layers.leakyReLU({ alpha: 0.2, name: 'd_lrelu2' }).apply(h) as tfl.SymbolicTensor;
  const features = tfl.layers.flatten({ name: 'd_flatten' }).apply(h) as tfl.SymbolicTensor;
  const unconditional = tfl.layers.dense({ units: 1, name: 'd_psi' }).apply(features) as tfl.SymbolicTensor;
  const embedding = tfl.layers.dense({ units: 7 * 7 * 128, useBias: false, name: 'd_embed' }).apply(label) as tfl.SymbolicTensor;
  const projection = tfl.layers.dot({ axes: 1, name: 'd_projection' }).apply([embedding, features]) as tfl.SymbolicTensor;
  const logit = tfl.layers.add({ name: 'd_logit' }).apply([unconditional, projection]) as tfl.SymbolicTensor;
  return tfl.model({ inputs: [image, label], outputs: logit, name: 'projection_discriminator' });
}

/**
 * Class-conditional DCGAN on MNIST: the conditional generator above, a projection discriminator, the non-saturating
 * loss, DCGAN's Adam(2e-4, β1 0.5) and an EMA generator with StyleGAN2's ramp-up for samples and evaluation. Fake
 * batches use the real batch's labels. Every 500 steps and at the last the bundled MNIST classifier scores 10000
 * samples (1000 a class): FID against the test set and `class_acc`, how often the classifier reads the class the
 * generator was asked for, in one `eval` row.
 */
export default defineExperiment({
  name: 'mnist-cgan',
  description:
    'Class-conditional DCGAN on MNIST: one-hot label concatenated to z, projection discriminator (Miyato & Koyama 2018), non-saturating loss, Adam(2e-4, 0.5), EMA generator; FID and class accuracy every 500 steps',
  defaults: { steps: 3000, batchSize: 64, sampleEvery: 100, checkpointEvery: 500 },
  needs: { mnist: ['train'] },
  build: (ctx) => ({
    generator: conditionalGenerator(),
    discriminator: projectionDiscriminator(),
    data: ctx.mnist({ split: 'train' }),
    loss: nonSaturating(),
    optimizers: { generator: tf.train.adam(2e-4, 0.5, 0.999), discriminator: tf.train.adam(2e-4, 0.5, 0.999) },
    plugins: [ema({ beta: 0.999, rampup: 0.05 }), ...evalFid(ctx, 500)],
  }),
});
