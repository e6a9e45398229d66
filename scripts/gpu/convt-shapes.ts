/**
 * Times tfjs-webgpu's two Conv2DBackpropInput programs (naive loop, implicit GEMM) on the reference models' shapes,
 * one JSON line per shape, batch and program: node .gpu/convt.mjs [--batches 64,1024] [--reps 20]
 */
import * as tf from '@tensorflow/tfjs-core';
import { initWebGpu } from '@gantry/engine';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const batches = arg('batches', '64,1024').split(',').map(Number);
const reps = Number(arg('reps', '20'));

// [name, dy H×W×C, dx H×W×C]: 4×4 kernels, stride 2, 'same' (the DCGAN generator's transposed convolutions and the
// critic's input gradients have these two shapes).
const shapes: [string, number[], number[]][] = [
  ['7x7x128->14x14x64', [7, 7, 128], [14, 14, 64]],
  ['14x14x64->28x28x1', [14, 14, 64], [28, 28, 1]],
];

async function main(): Promise<void> {
  await initWebGpu(); // Gantry leaves Conv2DBackpropInput to tfjs, so the flag picks the program
  for (const batch of batches) {
    for (const [name, dyShape, dxShape] of shapes) {
      const dy = tf.randomNormal([batch, ...dyShape]);
      const filter = tf.randomNormal([4, 4, dxShape[2], dyShape[2]]);
      for (const naive of [true, false]) {
        tf.env().set('WEBGPU_USE_NAIVE_CONV2D_TRANSPOSE', naive);
        const run = () => tf.conv2dTranspose(dy as tf.Tensor4D, filter as tf.Tensor4D, [batch, ...dxShape] as [number, number, number, number], 2, 'same');
        for (let i = 0; i < 3; i++) await run().data();
        const started = performance.now();
        let last: tf.Tensor | undefined;
        for (let i = 0; i < reps; i++) {
          last?.dispose();
          last = run();
        }
        await last!.data();
        last!.dispose();
        const ms = (performance.now() - started) / reps;
        process.stdout.write(JSON.stringify({ kind: 'convt', shape: name, batch, program: naive ? 'naive' : 'matmul', ms: +ms.toFixed(3) }) + '\n');
      }
      tf.dispose([dy, filter]);
    }
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stdout.write(JSON.stringify({ kind: 'fatal', error: String(err instanceof Error ? err.stack : err) }) + '\n');
    process.exit(2);
  },
);
