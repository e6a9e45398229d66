import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers';
import type { DataSource } from '@gantry/core';

export { useCpuBackend, values } from '@gantry/core/testing';

/** Endless batches of side × side single-channel images in [-1, 1], a pure function of (seed, start). */
export function images(side: number): DataSource {
  return {
    name: `images-${side}`,
    elementShape: [side, side, 1],
    *batches({ batchSize, seed, start }) {
      for (let i = start; ; i++) yield { x: tf.tidy(() => tf.tanh(tf.randomNormal([batchSize, side, side, 1], 0, 1, 'float32', seed + i))) };
    },
  };
}

