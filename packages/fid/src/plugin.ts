import * as tf from '@tensorflow/tfjs-core';
import { GantryError, Rng, checkOptions, definePlugin, isDataSource, type DataSource, type GantryPlugin, type Trainer } from '@gantry/core';
import { mnistExtractor } from './extractors/mnist-classifier.js';
import type { FeatureExtractor } from './extractors/types.js';
import type { KidOptions } from './kid.js';
import { compareSets, dataSourceImages, extractFeatures, generatedImages, type RealSide } from './pipeline.js';

/**
 * How often the classifier agrees with the class a conditional generator was asked for, per class, accumulated on the
 * device (one read at the end, no synchronous reads).
 */
export class ClassAgreement {
  private hits: tf.Tensor1D;
  private totals = new Float64Array(0);
  constructor(readonly classes: number) {
    this.hits = tf.zeros([classes]);
    this.totals = new Float64Array(classes);
  }

  /** Counts one batch: `requested[i]` is the class image i was generated for. */
  add(extractor: FeatureExtractor, images: tf.Tensor4D, requested: readonly number[]): void {
    for (const k of requested) this.totals[k] += 1;
    const next = tf.tidy(() => {
      const probabilities = extractor.classify!(images);
      const labels = tf.tensor1d([...requested], 'int32');
      const predicted = tf.argMax(probabilities, 1);
      const wanted = tf.oneHot(labels, this.classes);
      const agree = tf.mul(wanted, tf.expandDims(tf.cast(tf.equal(predicted, labels), 'float32'), 1));
      return tf.add(this.hits, tf.sum(agree, 0)) as tf.Tensor1D;
    });
    this.hits.dispose();
    this.hits = next;
  }

  /** `{ class_acc, class_acc_0, …, class_acc_<K−1> }` (classes never requested are left out); frees the counts. */
  async read(): Promise<Record<string, number>> {
    const hits = await this.hits.data();
    this.hits.dispose();
    const out: Record<string, number> = {};
    let hitSum = 0;
    let total = 0;
    for (let k = 0; k < this.classes; k++) {
      if (this.totals[k] === 0) continue;
      out[`class_acc_${k}`] = hits[k] / this.totals[k];
      hitSum += hits[k];
      total += this.totals[k];
    }
    return { class_acc: hitSum / total, ...out };
  }
}

export interface FidPluginOptions {
  /** Evaluate every N steps (on step:end). */
  every: number;
  /** Also evaluate at the run's last step (`trainer.totalSteps`) when it is not a multiple of `every`. Default false. */
  atEnd?: boolean;
  /** Generated samples per evaluation. Default 10000 (fewer gives a biased, noisier FID: compare like with like). */
  samples?: number;
  /**
   * Real data: a DataSource (its first `realSamples` images are embedded once at setup), or precomputed moments
   * tagged with the extractor and resize they came from (FID only, unless `features` are included for KID).
   */
  real: DataSource | RealSide;
  /** Real images taken from a DataSource. Default: `samples`. */
  realSamples?: number;
  /** Default: the bundled MNIST classifier (right for MNIST-like digits only; pass an Inception extractor otherwise). */
  extractor?: FeatureExtractor;
  /** Also compute KID (true = 100 subsets of min(1000, N)). */
  kid?: boolean | KidOptions;
  /** Images per generator/extractor call. Default 250. */
  batchSize?: number;
  /** Seed of the evaluation latents: the same latents every evaluation, apart from the training stream. Default 0. */
  seed?: number;
}

const KNOWN = ['every', 'atEnd', 'samples', 'real', 'realSamples', 'extractor', 'kid', 'batchSize', 'seed'];

/**
 * Evaluates FID (and optionally KID) every `every` steps on samples of the trainer's sampling generator (the EMA
 * copy when an EMA plugin set one) and emits them as the core's `eval` event:
 * `{ step, metrics: { fid, kid?, class_acc? }, meta: { n_real, n_fake, extractor, resize, dims, kid_std?, kid_subsets? } }`.
 * A conditional generator is asked for the classes in turn; with a classifier extractor (the bundled MNIST one) the
 * row also holds `class_acc`, the share of samples classified as the class they were generated for, and
 * `class_acc_<k>` per class.
 * Real statistics are computed once, at the first evaluation, and cached.
 */
export function fid(options: FidPluginOptions): GantryPlugin {
  checkOptions('fid()', options, KNOWN);
  if (!Number.isInteger(options.every) || options.every < 1) throw new GantryError(`fid(): "every" must be a positive integer, got ${options.every}`);
  if (!options.real) throw new GantryError('fid(): "real" is required (a DataSource or precomputed statistics)');
  const samples = options.samples ?? 10000;
  const batchSize = options.batchSize ?? 250;
  const kid = options.kid ?? false;
  let extractor = options.extractor;
  let ownsExtractor = false;
  let real: RealSide | undefined;

  return definePlugin({
    name: 'fid',
    hooks: {
      async setup(trainer: Trainer) {
        if (!extractor) {
          extractor = await mnistExtractor({ imageShape: trainer.dataShape });
          ownsExtractor = true;
        }
        // Real features are extracted at the first evaluation, so sampling from a checkpoint does not pay for them.
        if (!isDataSource(options.real as DataSource)) real = options.real as RealSide;
      },
      teardown() {
        if (!ownsExtractor) return;
        extractor?.dispose();
        extractor = undefined;
        ownsExtractor = false;
      },
    },
    on: {
      'step:end': {
        every: options.atEnd ? 1 : options.every,
        handler: async ({ step }, trainer) => {
          if (step % options.every !== 0 && step !== trainer.totalSteps) return;
          if (!extractor) throw new GantryError('fid(): setup did not run');
          real ??= await extractFeatures(dataSourceImages(options.real as DataSource, options.realSamples ?? samples, batchSize), extractor, {
            keepFeatures: Boolean(kid),
          });
          const rng = new Rng(options.seed ?? 0);
          const classes = trainer.conditional ? trainer.numClasses : undefined;
          const accuracy = classes && extractor.classify ? new ClassAgreement(classes) : undefined;
          const generator = {
            generate(count: number, offset: number): tf.Tensor4D {
              const z = trainer.sampleLatent(count, rng);
              const requested = classes ? Array.from({ length: count }, (_, i) => (offset + i) % classes) : undefined;
              const labels = requested ? tf.tensor1d(requested, 'int32') : undefined;
              try {
                const images = trainer.generate(z, labels) as tf.Tensor4D;
                if (accuracy && requested) accuracy.add(extractor!, images, requested);
                return images;
              } finally {
                z.dispose();
                labels?.dispose();
              }
            },
          };
          const fake = await extractFeatures(generatedImages(generator, samples, batchSize), extractor, { keepFeatures: Boolean(kid) });
          const report = compareSets(real, fake, { kid });
          const metrics: Record<string, number> = { fid: report.fid };
          if (accuracy) Object.assign(metrics, await accuracy.read());
          const meta: Record<string, unknown> = {
            n_real: report.n_real,
            n_fake: report.n_fake,
            extractor: report.extractor,
            resize: report.resize,
            dims: report.dims,
          };
          if (report.kid) {
            metrics.kid = report.kid.value;
            meta.kid_std = report.kid.std;
            meta.kid_subsets = `${report.kid.subsets}×${report.kid.subsetSize}`;
          }
          if (report.warnings.length > 0) meta.warnings = report.warnings;
          await trainer.emit('eval', { step, metrics, meta });
        },
      },
    },
  });
}
