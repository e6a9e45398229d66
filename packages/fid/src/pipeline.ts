import * as tf from '@tensorflow/tfjs-core';
import { GantryError, checkOptions, type DataSource } from '@gantry/core';
import { FidError } from './errors.js';
import type { FeatureExtractor } from './extractors/types.js';
import type { FeatureSet } from './features.js';
import { frechetDistance, type FrechetResult } from './frechet.js';
import { inceptionScore, type InceptionScoreOptions, type InceptionScoreResult } from './inception-score.js';
import { kernelInceptionDistance, type KidOptions, type KidResult } from './kid.js';
import { precisionRecallDensityCoverage, type PrdcOptions, type PrdcResult } from './prdc.js';
import { FeatureStats, type FeatureMoments } from './stats.js';

/** Image batches [B, H, W, C] in [-1, 1]; whoever iterates takes ownership of each tensor and disposes it. */
export type ImageBatches = Iterable<tf.Tensor4D> | AsyncIterable<tf.Tensor4D>;

export interface ExtractOptions {
  /** Keep every feature vector in memory (needed for KID, precision/recall and feature files). Default false. */
  keepFeatures?: boolean;
  /** Keep class probabilities too (Inception Score); needs an extractor with `classify`. Default false. */
  keepProbabilities?: boolean;
  /** Called with the number of images done after each batch. */
  onProgress?: (done: number) => void;
  /** Called with each batch's features (rows × dims, float32), e.g. to stream them to a file. */
  onFeatures?: (features: Float32Array) => void;
}

/** What one pass of an extractor over a set of images produced. */
export interface ExtractedSet {
  stats: FeatureStats;
  n: number;
  dims: number;
  extractor: string;
  resize: string;
  features?: FeatureSet;
  probabilities?: FeatureSet;
}

/** Grows a float32 buffer of rows as batches arrive. */
class RowBuffer {
  private data = new Float32Array(0);
  rows = 0;
  constructor(readonly dims: number) {}

  push(block: Float32Array): void {
    const needed = (this.rows + block.length / this.dims) * this.dims;
    if (needed > this.data.length) {
      const grown = new Float32Array(Math.max(needed, this.data.length * 2));
      grown.set(this.data.subarray(0, this.rows * this.dims));
      this.data = grown;
    }
    this.data.set(block, this.rows * this.dims);
    this.rows += block.length / this.dims;
  }

  toSet(): FeatureSet {
    return { data: this.data.slice(0, this.rows * this.dims), n: this.rows, dims: this.dims };
  }
}

async function checkRange(images: tf.Tensor4D): Promise<void> {
  const [lo, hi] = tf.tidy(() => [tf.min(images), tf.max(images)]);
  const [min, max] = [(await lo.data())[0], (await hi.data())[0]];
  tf.dispose([lo, hi]);
  if (!Number.isFinite(min) || !Number.isFinite(max)) throw new FidError('images contain NaN or Infinity');
  if (min < -1.001 || max > 1.001) {
    throw new FidError(`images must lie in [-1, 1] but span [${min}, ${max}]` + (max > 1.5 ? ' (for 8-bit pixels use x / 127.5 - 1)' : ''));
  }
}

/**
 * Runs an extractor over image batches: streaming float64 statistics always, features and class probabilities in
 * memory only when asked for. Each batch is disposed after use; the first one is checked to lie in [-1, 1].
 */
export async function extractFeatures(images: ImageBatches, extractor: FeatureExtractor, options: ExtractOptions = {}): Promise<ExtractedSet> {
  checkOptions('extractFeatures', options, ['keepFeatures', 'keepProbabilities', 'onProgress', 'onFeatures']);
  if (options.keepProbabilities && !extractor.classify) {
    throw new FidError(`extractor ${extractor.name} is not a classifier: it has no class probabilities for the Inception Score`);
  }
  const stats = new FeatureStats(extractor.dims);
  const kept = options.keepFeatures ? new RowBuffer(extractor.dims) : undefined;
  let probabilities: RowBuffer | undefined;
  let checked = false;
  let resize = extractor.resize;
  for await (const batch of images as AsyncIterable<tf.Tensor4D>) {
    try {
      if (!checked) {
        await checkRange(batch);
        resize = extractor.resizeFor?.(batch.shape.slice(1)) ?? extractor.resize;
        checked = true;
      }
      const features = extractor.extract(batch);
      const values = (await features.data()) as Float32Array;
      features.dispose();
      if (values.length !== batch.shape[0] * extractor.dims) {
        throw new FidError(`extractor ${extractor.name} returned ${values.length / batch.shape[0]} features per image, expected ${extractor.dims}`);
      }
      stats.add(values);
      kept?.push(values);
      options.onFeatures?.(values);
      if (options.keepProbabilities) {
        const p = extractor.classify!(batch);
        const pv = (await p.data()) as Float32Array;
        probabilities ??= new RowBuffer(p.shape[1]);
        p.dispose();
        probabilities.push(pv);
      }
    } finally {
      batch.dispose();
    }
    options.onProgress?.(stats.n);
  }
  return {
    stats,
    n: stats.n,
    dims: extractor.dims,
    extractor: extractor.name,
    resize,
    features: kept?.toSet(),
    probabilities: probabilities?.toSet(),
  };
}

/**
 * The first `n` images of a DataSource (its seed-0 stream, so the same images every time), in batches; labels are
 * dropped. Stops early, with fewer images, only if the source says it holds fewer (`size`).
 */
export async function* dataSourceImages(source: DataSource, n: number, batchSize = 250): AsyncGenerator<tf.Tensor4D> {
  const size = (source as { size?: number }).size;
  const total = size !== undefined ? Math.min(n, size) : n;
  const iterator = source.batches({ batchSize: Math.min(batchSize, size ?? batchSize), seed: 0, start: 0 });
  let done = 0;
  while (done < total) {
    const result = await iterator.next();
    if (result.done) break;
    const { x, labels } = result.value;
    labels?.dispose();
    if (x.rank !== 4) {
      x.dispose();
      throw new FidError(`FID needs image batches [B, H, W, C], but ${source.name} yields shape [${x.shape.join(', ')}]`);
    }
    const take = Math.min(x.shape[0], total - done);
    if (take < x.shape[0]) {
      const part = tf.slice(x, 0, take) as tf.Tensor4D;
      x.dispose();
      yield part;
    } else {
      yield x as tf.Tensor4D;
    }
    done += take;
  }
}

/** A generator network seen from the metrics: latents in, images out. */
export interface ImageGenerator {
  /** Images [B, H, W, C] in [-1, 1] for `count` fresh latents (and labels for conditional models), caller-owned. */
  generate(count: number, offset: number): tf.Tensor4D;
}

/** `n` generated images in batches. */
export async function* generatedImages(generator: ImageGenerator, n: number, batchSize = 250): AsyncGenerator<tf.Tensor4D> {
  for (let done = 0; done < n; done += batchSize) {
    const images = generator.generate(Math.min(batchSize, n - done), done);
    if (images.rank !== 4) {
      const shape = images.shape;
      images.dispose();
      throw new FidError(`FID needs image samples [B, H, W, C], but the generator makes shape [${shape.join(', ')}]`);
    }
    yield images;
  }
}

export interface EvaluateOptions {
  /** KID on the kept features (both sets need `keepFeatures`). `true` = default options. */
  kid?: boolean | KidOptions;
  /** Precision/recall and density/coverage on the kept features. */
  prdc?: boolean | PrdcOptions;
  /** Inception Score of the second (generated) set from kept class probabilities. */
  inceptionScore?: boolean | InceptionScoreOptions;
  quiet?: boolean;
}

/** Every number of one comparison, with what it was computed from. */
export interface MetricReport {
  fid: number;
  kid?: KidResult;
  prdc?: PrdcResult;
  inceptionScore?: InceptionScoreResult;
  frechet: FrechetResult;
  n_real: number;
  n_fake: number;
  dims: number;
  extractor: string;
  resize: string;
  warnings: string[];
}

/** Real-side input of `compareSets`: an extracted set, or precomputed moments (then only FID is possible). */
export type RealSide = ExtractedSet | (FeatureMoments & { extractor: string; resize: string; features?: FeatureSet });

function realMoments(real: RealSide): FeatureMoments {
  return 'stats' in real ? real.stats.moments() : real;
}

/** FID (always) and, when asked and possible, KID, precision/recall/density/coverage and IS between two sets. */
export function compareSets(real: RealSide, fake: ExtractedSet, options: EvaluateOptions = {}): MetricReport {
  checkOptions('compareSets', options, ['kid', 'prdc', 'inceptionScore', 'quiet']);
  if (real.extractor !== fake.extractor) {
    throw new GantryError(`cannot compare features from "${real.extractor}" with features from "${fake.extractor}"`);
  }
  const frechet = frechetDistance(realMoments(real), fake.stats.moments(), { quiet: options.quiet });
  const report: MetricReport = {
    fid: frechet.value,
    frechet,
    n_real: frechet.n1,
    n_fake: frechet.n2,
    dims: frechet.dims,
    extractor: fake.extractor,
    resize: real.resize === fake.resize ? fake.resize : `real: ${real.resize}; fake: ${fake.resize}`,
    warnings: [...frechet.warnings],
  };
  if (real.resize !== fake.resize) {
    report.warnings.push(`the two sets were preprocessed differently (${report.resize}); the resize itself moves the FID`);
  }
  const needFeatures = (what: string) => {
    if (!real.features || !fake.features) throw new FidError(`${what} needs the features of both sets (extract with keepFeatures)`);
    return [real.features, fake.features] as const;
  };
  if (options.kid) {
    const [a, b] = needFeatures('KID');
    report.kid = kernelInceptionDistance(a, b, options.kid === true ? {} : options.kid);
  }
  if (options.prdc) {
    const [a, b] = needFeatures('precision/recall');
    report.prdc = precisionRecallDensityCoverage(a, b, options.prdc === true ? {} : options.prdc);
  }
  if (options.inceptionScore) {
    if (!fake.probabilities) throw new FidError('the Inception Score needs class probabilities (extract with keepProbabilities)');
    report.inceptionScore = inceptionScore(fake.probabilities, options.inceptionScore === true ? {} : options.inceptionScore);
  }
  return report;
}
