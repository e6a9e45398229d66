import type * as tfl from '@tensorflow/tfjs-layers';
import { GantryError, checkOptions, definePlugin, type GantryPlugin } from '@gantry/core';
import { Pack, packDiscriminator } from './pack.js';

export interface PacganOptions {
  /** m: samples the discriminator judges together. Default 2 (PacGAN2; the paper reports m = 2, 3, 4). */
  degree?: number;
}

export interface PacganPlugin extends GantryPlugin {
  readonly degree: number;
}

const isPacked = (model: tfl.LayersModel, degree: number) => model.layers.some((l) => l instanceof Pack && l.degree === degree);

/**
 * PacGAN (Lin et al. 2018, "PacGAN: The power of two samples in generative adversarial networks"): the
 * discriminator sees m samples concatenated, all real or all generated, and gives one decision per pack, which
 * penalizes a generator whose samples lack diversity. Give the trainer a discriminator over packs (input
 * m × the sample size); at setup the plugin puts it behind a `Pack` layer, so every loss, penalty and plugin sees a
 * discriminator over single samples whose output has one row per pack. Batch sizes must be multiples of m; a batch
 * of B samples makes B/m packs (PacGAN's code draws m batches of B for B packs: use m× the batch size to match).
 */
export function pacgan(options: PacganOptions = {}): PacganPlugin {
  checkOptions('pacgan', options, ['degree']);
  const degree = options.degree ?? 2;
  if (!Number.isInteger(degree) || degree < 1) throw new GantryError(`pacgan degree must be a positive integer, got ${degree}`);
  return definePlugin({
    name: 'pacgan',
    degree,
    hooks: {
      setup(trainer) {
        if (!isPacked(trainer.discriminator, degree)) trainer.setModels({ discriminator: packDiscriminator(trainer.discriminator, degree) });
      },
    },
  });
}
