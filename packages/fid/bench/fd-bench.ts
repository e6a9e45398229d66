/**
 * Benchmark: streaming float64 statistics and the Fréchet distance for two sets of N × D features (default
 * 10000 × 2048, the size of an Inception pool3 FID on 10k samples).
 *
 *   npx tsx --conditions=@gantry/source packages/fid/bench/fd-bench.ts [--n 10000] [--dims 2048] [--batch 500]
 *     [--method auto|eigen]
 *
 * Features are synthetic (a random linear map of Gaussian noise, so the covariance is full and non-diagonal) and made
 * batch by batch: like real extraction, the N × D matrix is never held.
 */
import { parseArgs } from 'node:util';
import { Rng } from '@gantry/core';
import { FeatureStats, frechetDistance } from '@gantry/fid';

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '10000' },
    dims: { type: 'string', default: '2048' },
    batch: { type: 'string', default: '500' },
    method: { type: 'string', default: 'auto' },
  },
});
const n = Number(values.n);
const d = Number(values.dims);
const batch = Number(values.batch);

function gaussians(count: number, rng: Rng): Float64Array {
  const out = new Float64Array(count);
  for (let i = 0; i < count; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - rng.uniform()));
    const t = 2 * Math.PI * rng.uniform();
    out[i] = r * Math.cos(t);
    if (i + 1 < count) out[i + 1] = r * Math.sin(t);
  }
  return out;
}

/** Rows x = z·A / √k + shift with k = 64 latent factors plus small isotropic noise: full rank, correlated. */
const k = 64;
/** The same mixing matrix for both sets: they differ by their samples and a small mean shift. */
const mixing = gaussians(k * d, new Rng(99));

function streamStats(seed: number, shift: number): { stats: FeatureStats; ms: number } {
  const rng = new Rng(seed);
  const stats = new FeatureStats(d);
  let ms = 0;
  for (let done = 0; done < n; done += batch) {
    const rows = Math.min(batch, n - done);
    const z = gaussians(rows * k, rng);
    const noise = gaussians(rows * d, rng);
    const x = new Float32Array(rows * d);
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < d; j++) x[r * d + j] = shift + 0.1 * noise[r * d + j];
      for (let f = 0; f < k; f++) {
        const zf = z[r * k + f] / Math.sqrt(k);
        for (let j = 0; j < d; j++) x[r * d + j] += zf * mixing[f * d + j];
      }
    }
    const t = performance.now();
    stats.add(x);
    ms += performance.now() - t;
  }
  return { stats, ms };
}

console.log(`Fréchet distance benchmark: N = ${n} per set, D = ${d}, batches of ${batch}, float64, 1 thread`);
const a = streamStats(1, 0);
console.log(`streaming stats, set 1: ${(a.ms / 1000).toFixed(1)} s`);
const b = streamStats(2, 0.05);
console.log(`streaming stats, set 2: ${(b.ms / 1000).toFixed(1)} s`);
let t = performance.now();
const ma = a.stats.moments();
const mb = b.stats.moments();
const momentsMs = performance.now() - t;
t = performance.now();
const r = frechetDistance(ma, mb, { method: values.method as 'auto' | 'eigen' });
const fdMs = performance.now() - t;
console.log(`moments (covariance copies): ${(momentsMs / 1000).toFixed(2)} s`);
console.log(`Fréchet distance (${r.method} route): ${(fdMs / 1000).toFixed(1)} s`);
console.log(`total: ${((a.ms + b.ms + momentsMs + fdMs) / 1000).toFixed(1)} s; FID = ${r.value.toFixed(6)}, clipped eigenvalues ${r.clippedEigenvalues}`);
