import { checkOptions, definePlugin, GantryError } from '@gantry/core';
import { COLORSPACE } from '../tensorboard/events.js';
import { EventFileWriter } from '../tensorboard/writer.js';
import '../events.js';
import { onceWarner } from './util.js';

export interface TensorBoardOptions {
  /** Folder for `events.out.tfevents.*` (point `tensorboard --logdir` at it or its parent). */
  dir: string;
  /** Write step scalars every N steps; default 1. */
  every?: number;
}

/**
 * TensorBoard event files written in TypeScript: step scalars (`d_loss`, `g_loss`, loss terms, reported scalars),
 * eval metrics as `eval/<name>`, and the sample images from `sampleGrid` under the tag `samples`. A write error
 * becomes a warning; it never stops training.
 */
export function tensorboard(options: TensorBoardOptions) {
  checkOptions('tensorboard', options, ['dir', 'every']);
  if (!options?.dir) throw new GantryError('tensorboard needs a dir');
  const every = options.every ?? 1;
  let writer: EventFileWriter | undefined;
  const warn = onceWarner('tensorboard');
  const guard = (what: string, fn: (w: EventFileWriter) => void) => {
    if (!writer) return;
    try {
      fn(writer);
    } catch (error) {
      warn(what, `could not write ${what} to ${writer.file}: ${error instanceof Error ? error.message : String(error)}`);
    }
  };
  const close = () => {
    writer?.close();
    writer = undefined;
  };

  return definePlugin({
    name: 'tensorboard',
    on: {
      'run:start': () => {
        close();
        try {
          writer = new EventFileWriter(options.dir);
        } catch (error) {
          warn('open', `cannot create an event file in ${options.dir}: ${error instanceof Error ? error.message : String(error)}`);
        }
      },
      'step:end': { every, handler: ({ step, scalars }) => guard('scalars', (w) => w.addScalars(step, scalars)) },
      eval: ({ step, metrics }) =>
        guard('eval', (w) => w.addScalars(step, Object.fromEntries(Object.entries(metrics).map(([k, v]) => [`eval/${k}`, v])))),
      'monitor:samples': ({ step, png, width, height, channels }) =>
        guard('image', (w) =>
          w.addImage(step, 'samples', { width, height, colorspace: channels === 1 ? COLORSPACE.grayscale : COLORSPACE.rgb, encoded: png }),
        ),
    },
    hooks: { teardown: close },
  });
}
