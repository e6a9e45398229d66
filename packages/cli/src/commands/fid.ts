import { resolve } from 'node:path';
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import * as tf from '@tensorflow/tfjs-core';
import { GantryError, Rng, Trainer } from '@gantry/core';
import { useBackend, type BackendName } from '@gantry/engine';
import {
  centerCrop,
  compareImageSets,
  formatReport,
  loadExtractor,
  parseImageSource,
  reportJson,
  type ImageSet,
  type ImageSetReport,
} from '@gantry/fid';
import { buildForRun, experimentOfRun, readRunConfig } from '../run-config.js';
import { intArg } from './train.js';

export interface FidFlags {
  real: string;
  fake: string;
  extractor: string;
  outputNode?: string;
  n?: number;
  json?: boolean;
  featuresOut?: string;
  kid: boolean;
  kidSubsets: number;
  kidSubsetSize?: number;
  prdc?: boolean;
  is?: boolean;
  batch: number;
  seed: number;
  backend: string;
  quiet?: boolean;
  crop?: number;
}

/** Samples a run folder generates when no count is given. */
const DEFAULT_RUN_SAMPLES = 10000;

/**
 * N samples from the sampling generator (the EMA copy when the run used one) of a run folder's latest checkpoint,
 * generated a batch at a time from a seeded latent stream; conditional runs cycle through the classes.
 */
export async function runFolderImages(runDir: string, n: number, seed: number): Promise<ImageSet> {
  const config = await readRunConfig(runDir);
  const experiment = await experimentOfRun(config);
  const setup = await buildForRun(experiment, config);
  const trainer = new Trainer({ ...setup, steps: config.steps, batchSize: config.batchSize, seed: config.seed });
  await trainer.restore(runDir);
  await trainer.setup();
  const imageShape = trainer.dataShape;
  if (imageShape.length !== 3) throw new GantryError(`run ${runDir} generates shape [${imageShape.join(', ')}], not images: FID needs images`);
  const classes = trainer.conditional ? trainer.numClasses : undefined;
  return {
    label: `${runDir} (${n} samples from step ${trainer.step}, latent seed ${seed})`,
    count: n,
    imageShape,
    async *batches(batchSize = 250) {
      const rng = new Rng(seed);
      for (let done = 0; done < n; done += batchSize) {
        const count = Math.min(batchSize, n - done);
        const z = trainer.sampleLatent(count, rng);
        const labels = classes ? tf.tensor1d(Array.from({ length: count }, (_, i) => (done + i) % classes), 'int32') : undefined;
        const images = trainer.generate(z, labels);
        z.dispose();
        labels?.dispose();
        yield images as tf.Tensor4D;
      }
    },
  };
}

async function resolveSource(spec: string, flags: FidFlags, channels: 1 | 3): Promise<ImageSet> {
  const parsed = parseImageSource(spec, { n: flags.n, channels });
  const set = parsed.kind === 'images' ? parsed.set : await runFolderImages(parsed.dir, parsed.n ?? DEFAULT_RUN_SAMPLES, flags.seed);
  return flags.crop ? centerCrop(set, flags.crop) : set;
}

/** Computes FID (and KID, optionally precision/recall, IS) between two image sources; prints text or JSON. */
export async function fidCommand(flags: FidFlags): Promise<ImageSetReport> {
  await useBackend(flags.backend as BackendName, { quiet: flags.json || flags.quiet });
  const extractor = await loadExtractor(flags.extractor, { outputNode: flags.outputNode });
  try {
    const channels = flags.extractor === 'mnist' ? 1 : 3;
    const real = await resolveSource(flags.real, flags, channels);
    const fake = await resolveSource(flags.fake, flags, channels);
    const showBar = !flags.json && !flags.quiet && process.stderr.isTTY === true;
    const bars = showBar
      ? new cliProgress.MultiBar(
          { format: '{which} |{bar}| {value}/{total} images  {duration_formatted}', stream: process.stderr, hideCursor: true },
          cliProgress.Presets.shades_classic,
        )
      : undefined;
    const started: Partial<Record<'real' | 'fake', cliProgress.SingleBar>> = {};
    let report: ImageSetReport;
    try {
      report = await compareImageSets(real, fake, {
        extractor,
        kid: flags.kid ? { subsets: flags.kidSubsets, subsetSize: flags.kidSubsetSize, seed: flags.seed } : false,
        prdc: flags.prdc,
        inceptionScore: flags.is,
        batchSize: flags.batch,
        featuresOut: flags.featuresOut ? resolve(flags.featuresOut) : undefined,
        quiet: flags.json,
        onProgress: bars
          ? (which, done, total) => {
              started[which] ??= bars.create(total, 0, { which: which.padEnd(4) });
              started[which]!.update(done);
            }
          : undefined,
      });
    } finally {
      bars?.stop();
    }
    if (flags.json) console.log(JSON.stringify(reportJson(report)));
    else if (!flags.quiet) console.log(formatReport(report));
    return report;
  } finally {
    extractor.dispose();
  }
}

export function registerFid(program: Command): void {
  program
    .command('fid')
    .description('FID (and KID) between two image sources: mnist:train[:N], mnist:test[:N], a run folder or a PNG folder')
    .requiredOption('--real <source>', 'reference images')
    .requiredOption('--fake <source>', 'images to evaluate')
    .option('--extractor <name>', 'mnist (bundled classifier) or a tfjs model.json path/URL (Inception-v3 pool3)', 'mnist')
    .option('--output-node <name>', 'graph node or layer to read features from (model files only)')
    .option('--n <n>', `images per source without an explicit count (run folders: default ${DEFAULT_RUN_SAMPLES})`, intArg('--n', 1))
    .option('--json', 'print one JSON object: {fid, kid, n_real, n_fake, dims, extractor, ...}')
    .option('--features-out <dir>', 'write real.npy and fake.npy (float32 [N, dims])')
    .option('--no-kid', 'skip KID')
    .option('--kid-subsets <n>', 'KID subsets', intArg('--kid-subsets', 1), 100)
    .option('--kid-subset-size <n>', 'KID subset size (default min(1000, N))', intArg('--kid-subset-size', 1))
    .option('--prdc', 'also precision/recall (k = 3) and density/coverage (k = 5)')
    .option('--is', 'also the Inception Score of the fake set (classifier extractors)')
    .option('--crop <px>', 'centre-crop larger images to px×px first (28 for MNIST padded to 32)', intArg('--crop', 1))
    .option('--batch <n>', 'images per extractor call', intArg('--batch', 1), 250)
    .option('--seed <n>', 'seed of generated latents and KID subsets', intArg('--seed', 0), 0)
    .option('--backend <name>', 'auto | wasm | cpu | tensorflow | webgpu', 'auto')
    .option('--quiet', 'print nothing but errors')
    .action(async (flags: FidFlags) => {
      await fidCommand(flags);
    });
}
