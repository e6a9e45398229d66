import * as tfl from '@tensorflow/tfjs-layers';

/** Latent size of the reference DCGAN-MNIST generator. */
export const REFERENCE_LATENT_DIM = 100;

/** Image shape of the reference models: MNIST, 28×28×1, values in [-1, 1]. */
export const REFERENCE_IMAGE_SHAPE = [28, 28, 1] as const;

/**
 * The reference DCGAN-MNIST generator used by `gantry bench` and the engine's measurements:
 * z[100] → dense 7·7·128 → reshape 7×7×128 → conv2dTranspose 64, k4, s2, same → batchnorm → relu
 * → conv2dTranspose 1, k4, s2, same, tanh → 28×28×1.
 */
export function referenceGenerator(latentDim = REFERENCE_LATENT_DIM): tfl.Sequential {
  return tfl.sequential({
    name: 'reference_generator',
    layers: [
      tfl.layers.dense({ inputShape: [latentDim], units: 7 * 7 * 128, name: 'g_dense' }),
      tfl.layers.reshape({ targetShape: [7, 7, 128], name: 'g_reshape' }),
      tfl.layers.conv2dTranspose({ filters: 64, kernelSize: 4, strides: 2, padding: 'same', name: 'g_deconv1' }),
      tfl.layers.batchNormalization({ name: 'g_bn1' }),
      tfl.layers.reLU({ name: 'g_relu1' }),
      tfl.layers.conv2dTranspose({
        filters: 1,
        kernelSize: 4,
        strides: 2,
        padding: 'same',
        activation: 'tanh',
        name: 'g_deconv2',
      }),
    ],
  });
}

/**
 * The reference DCGAN-MNIST discriminator (critic for WGAN-GP: no normalization, raw output):
 * 28×28×1 → conv2d 64, k4, s2, same → leaky relu 0.2 → conv2d 128, k4, s2, same → leaky relu 0.2 → flatten → dense 1.
 */
export function referenceDiscriminator(): tfl.Sequential {
  return tfl.sequential({
    name: 'reference_discriminator',
    layers: [
      tfl.layers.conv2d({
        inputShape: [...REFERENCE_IMAGE_SHAPE],
        filters: 64,
        kernelSize: 4,
        strides: 2,
        padding: 'same',
        name: 'd_conv1',
      }),
      tfl.layers.leakyReLU({ alpha: 0.2, name: 'd_lrelu1' }),
      tfl.layers.conv2d({ filters: 128, kernelSize: 4, strides: 2, padding: 'same', name: 'd_conv2' }),
      tfl.layers.leakyReLU({ alpha: 0.2, name: 'd_lrelu2' }),
      tfl.layers.flatten({ name: 'd_flatten' }),
      tfl.layers.dense({ units: 1, name: 'd_dense' }),
    ],
  });
}
