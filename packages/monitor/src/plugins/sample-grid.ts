import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { checkOptions, definePlugin, GantryError, Rng, writeOrExplain, type Trainer } from '@gantry/core';
import { encodeImageGrid, encodeScatterPlot, type EncodedImage } from '../images.js';
import '../events.js';
import { stepName } from './util.js';
import { gridLabels } from './grid-labels.js';

export interface SampleGridOptions {
  /** Folder for `step-NNNNNN.png`, e.g. `<run>/samples`. */
  dir: string;
  /** Write a grid every N steps (and at the end of the run). */
  every: number;
  /** Samples per image: default 64 for images, 1024 points for 2-D vector data. */
  count?: number;
  /** Seed of the fixed noise (the same images are tracked over the run). Default 1234. */
  seed?: number;
}


/**
 * Renders the generator's output for fixed noise every N steps: image data ([h, w, c], c = 1 or 3, values in
 * [-1, 1]) as a grid PNG, 2-D vector data as a scatter plot. Conditional generators get one row per class (row k
 * shows class k), 10 samples a class unless `count` says otherwise.
 * Emits `monitor:samples` so other plugins (TensorBoard, W&B, the report) reuse the image.
 */
export function sampleGrid(options: SampleGridOptions) {
  checkOptions('sampleGrid', options, ['dir', 'every', 'count', 'seed']);
  if (!options?.dir) throw new GantryError('sampleGrid needs a dir');
  if (!Number.isInteger(options.every) || options.every < 1) {
    throw new GantryError(`sampleGrid option "every" must be a positive integer, got ${options.every}`);
  }
  let z: tf.Tensor2D | undefined;
  let labels: tf.Tensor1D | undefined;
  let cols = 8;
  let lastWritten = -1;
  let warned = false;

  const release = () => {
    z?.dispose();
    labels?.dispose();
    z = labels = undefined;
  };

  const write = async (trainer: Trainer, step: number) => {
    if (!z || step === lastWritten) return;
    const out = trainer.generate(z, labels);
    const shape = out.shape;
    let data: Float32Array;
    try {
      data = (await out.data()) as Float32Array;
    } finally {
      out.dispose();
    }
    let encoded: EncodedImage;
    let kind: 'grid' | 'scatter';
    if (shape.length === 2 && shape[1] === 2) {
      encoded = encodeScatterPlot(data);
      kind = 'scatter';
    } else if ((shape.length === 4 && (shape[3] === 1 || shape[3] === 3)) || shape.length === 3) {
      encoded = encodeImageGrid(data, shape, { cols });
      kind = 'grid';
    } else {
      if (!warned) console.warn(`sampleGrid: cannot draw generator output of shape [${shape.join(', ')}]; skipping samples`);
      warned = true;
      return;
    }
    fs.mkdirSync(options.dir, { recursive: true });
    const file = path.join(options.dir, `${stepName(step)}.png`);
    writeOrExplain(file, encoded.png.byteLength, 'the sample grid', () => fs.writeFileSync(file, encoded.png));
    lastWritten = step;
    await trainer.bus.emit('monitor:samples', { step, file, kind, ...encoded });
  };

  return definePlugin({
    name: 'sample-grid',
    on: {
      'run:start': ({ trainer }) => {
        release();
        const isVector = trainer.dataShape.length === 1;
        let count = options.count ?? (isVector ? 1024 : 64);
        cols = Math.ceil(Math.sqrt(count));
        const n = trainer.conditional ? trainer.numClasses : undefined;
        if (trainer.conditional && !n) throw new GantryError('sampleGrid: the generator is conditional but the number of classes is unknown');
        if (n) {
          // One row per class: 10 samples a class by default, or `count` spread over the classes.
          cols = options.count ? Math.ceil(options.count / n) : 10;
          count = n * cols;
        }
        z = trainer.sampleLatent(count, new Rng(options.seed ?? 1234));
        if (n) labels = tf.tensor1d(gridLabels(count, cols, n), 'int32');
        lastWritten = -1;
      },
      'step:end': { every: options.every, handler: ({ step }, trainer) => write(trainer, step) },
      'run:end': async ({ step, reason }, trainer) => {
        if (reason !== 'error' && step > 0) await write(trainer, step);
      },
    },
    hooks: { teardown: release },
  });
}
