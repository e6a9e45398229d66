import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { checkOptions } from '@gantry/core';
import { FidError } from './errors.js';
import { inceptionExtractor } from './extractors/inception.js';
import { mnistExtractor } from './extractors/mnist-classifier.js';
import type { FeatureExtractor } from './extractors/types.js';
import type { KidOptions } from './kid.js';
import { NpyRowWriter } from '@gantry/core';
import { compareSets, extractFeatures, type MetricReport } from './pipeline.js';
import type { PrdcOptions } from './prdc.js';
import { mnistImages, pngFolderImages, type ImageSet } from './sources.js';

/** A parsed `--real`/`--fake` argument: a ready image set, or a run folder (the CLI generates from its checkpoint). */
export type ImageSourceSpec = { kind: 'images'; set: ImageSet } | { kind: 'run'; dir: string; n?: number };

/**
 * Parses an image source: `mnist:train[:N]`, `mnist:test[:N]`, a run folder (has config.json; N samples are to be
 * generated from its latest checkpoint) or a folder of PNGs. `n` caps sources without an explicit count.
 */
export function parseImageSource(spec: string, options: { n?: number; channels?: 1 | 3 } = {}): ImageSourceSpec {
  const mnist = /^mnist:(train|test)(?::(\d+))?$/.exec(spec);
  if (mnist) {
    const count = mnist[2] !== undefined ? Number(mnist[2]) : options.n;
    return { kind: 'images', set: mnistImages(mnist[1] as 'train' | 'test', count) };
  }
  if (spec.startsWith('mnist:')) throw new FidError(`unknown MNIST source "${spec}" (use mnist:train, mnist:test, mnist:train:N or mnist:test:N)`);
  const dir = resolve(spec);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new FidError(`image source "${spec}" is neither mnist:train[:N] / mnist:test[:N] nor a folder`);
  }
  if (existsSync(join(dir, 'config.json'))) return { kind: 'run', dir, n: options.n };
  return { kind: 'images', set: pngFolderImages(dir, { n: options.n, channels: options.channels }) };
}

/** `mnist` (the bundled classifier) or a tfjs model.json path / URL (Inception-v3 pool3 or another network). */
export async function loadExtractor(spec: string, options: { outputNode?: string } = {}): Promise<FeatureExtractor> {
  if (spec === 'mnist') {
    if (options.outputNode) throw new FidError('--output-node applies to model files, not to the bundled mnist extractor');
    return mnistExtractor();
  }
  return inceptionExtractor({ model: spec, outputNode: options.outputNode });
}

export interface CompareImageSetsOptions {
  extractor: FeatureExtractor;
  /** KID options, or false to skip it. Default: 100 subsets of min(1000, N). */
  kid?: boolean | KidOptions;
  prdc?: boolean | PrdcOptions;
  /** Inception Score of the fake set (needs a classifier extractor). */
  inceptionScore?: boolean;
  batchSize?: number;
  /** Folder for real.npy and fake.npy (float32 [N, dims]). */
  featuresOut?: string;
  onProgress?: (which: 'real' | 'fake', done: number, total: number) => void;
  quiet?: boolean;
}

export interface ImageSetReport extends MetricReport {
  real: string;
  fake: string;
}

/** Extracts both sets (streaming; features kept only when a metric or the feature files need them) and compares. */
export async function compareImageSets(real: ImageSet, fake: ImageSet, options: CompareImageSetsOptions): Promise<ImageSetReport> {
  checkOptions('compareImageSets', options, ['extractor', 'kid', 'prdc', 'inceptionScore', 'batchSize', 'featuresOut', 'onProgress', 'quiet']);
  const kid = options.kid ?? true;
  const keepFeatures = Boolean(kid) || Boolean(options.prdc);
  if (options.featuresOut) mkdirSync(options.featuresOut, { recursive: true });
  const extract = async (which: 'real' | 'fake', set: ImageSet) => {
    const writer = options.featuresOut ? new NpyRowWriter(join(options.featuresOut, `${which}.npy`), options.extractor.dims) : undefined;
    try {
      return await extractFeatures(set.batches(options.batchSize), options.extractor, {
        keepFeatures,
        keepProbabilities: which === 'fake' && Boolean(options.inceptionScore),
        onProgress: (done) => options.onProgress?.(which, done, set.count),
        onFeatures: writer ? (block) => writer.append(block) : undefined,
      });
    } finally {
      writer?.close();
    }
  };
  const realSet = await extract('real', real);
  const fakeSet = await extract('fake', fake);
  const report = compareSets(realSet, fakeSet, { kid, prdc: options.prdc, inceptionScore: options.inceptionScore, quiet: options.quiet });
  return { ...report, real: real.label, fake: fake.label };
}

/** One-line-per-metric text of a report, each number with N, extractor and resize. */
export function formatReport(report: ImageSetReport): string {
  const lines = [
    `real: ${report.real}`,
    `fake: ${report.fake}`,
    `extractor: ${report.extractor} (${report.dims} dims), resize: ${report.resize}`,
    `FID ${report.fid.toFixed(4)}  (N real ${report.n_real}, N fake ${report.n_fake})`,
  ];
  if (report.kid) {
    lines.push(
      `KID ${report.kid.value.toExponential(4)} ± ${report.kid.std.toExponential(2)}  ` +
        `(${report.kid.subsets} subsets of ${report.kid.subsetSize}; N real ${report.n_real}, N fake ${report.n_fake})`,
    );
  }
  if (report.prdc) {
    const p = report.prdc;
    lines.push(
      `precision ${p.precision.toFixed(4)}, recall ${p.recall.toFixed(4)} (k = ${p.kPrecisionRecall}); ` +
        `density ${p.density.toFixed(4)}, coverage ${p.coverage.toFixed(4)} (k = ${p.kDensityCoverage})`,
    );
  }
  if (report.inceptionScore) {
    const s = report.inceptionScore;
    lines.push(`IS ${s.value.toFixed(4)} ± ${s.std.toFixed(4)}  (${s.splits} splits of the ${s.n} fake samples)`);
  }
  for (const w of report.warnings) lines.push(`warning: ${w}`);
  return lines.join('\n');
}

/** The `--json` object: the metrics with what they were computed from. */
export function reportJson(report: ImageSetReport): Record<string, unknown> {
  return {
    fid: report.fid,
    kid: report.kid?.value ?? null,
    kid_std: report.kid?.std ?? null,
    ...(report.prdc
      ? { precision: report.prdc.precision, recall: report.prdc.recall, density: report.prdc.density, coverage: report.prdc.coverage }
      : {}),
    ...(report.inceptionScore ? { is: report.inceptionScore.value, is_std: report.inceptionScore.std } : {}),
    n_real: report.n_real,
    n_fake: report.n_fake,
    dims: report.dims,
    extractor: report.extractor,
    resize: report.resize,
    real: report.real,
    fake: report.fake,
    warnings: report.warnings,
  };
}
