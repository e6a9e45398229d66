import { FidError } from './errors.js';
import { traceSqrtProduct } from './linalg.js';
import type { FeatureMoments } from './stats.js';

export interface FrechetResult {
  /** ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2(Σ₁Σ₂)^½), in float64. */
  value: number;
  /** ‖μ₁ − μ₂‖². */
  meanTerm: number;
  /** Tr(Σ₁) + Tr(Σ₂) − 2 Tr((Σ₁Σ₂)^½). */
  covTerm: number;
  /** Tr((Σ₁Σ₂)^½). */
  traceSqrt: number;
  n1: number;
  n2: number;
  dims: number;
  /** Eigenvalues at or below zero that were clipped (rank deficiency when N ≤ dims, or rounding). */
  clippedEigenvalues: number;
  /** How Σ₁ was factored for the trace term: Cholesky (positive definite) or eigendecomposition. */
  method: 'cholesky' | 'eigen';
  /** Conditions that make the number less trustworthy (e.g. fewer samples than feature dimensions). */
  warnings: string[];
}

const warnedOnce = new Set<string>();

/** Prints a warning line once per process (the same condition is not repeated every evaluation). */
export function warnOnce(message: string): void {
  if (warnedOnce.has(message)) return;
  warnedOnce.add(message);
  console.warn(`[@gantry/fid] warning: ${message}`);
}

/**
 * Fréchet distance between two Gaussians fitted to feature sets (Heusel et al. 2017), all in float64. The trace
 * term is Σ√λ over the eigenvalues of the symmetric matrix √Σ₁ Σ₂ √Σ₁ (up to an orthogonal change of basis; see
 * traceSqrtProduct), negative eigenvalues clipped to 0. `method: 'eigen'` forces the eigendecomposition route.
 * When a set has fewer samples than feature dimensions its covariance is singular and the number is biased and
 * noisy; that case is reported in `warnings` and printed once unless `quiet`.
 */
export function frechetDistance(
  a: FeatureMoments,
  b: FeatureMoments,
  options: { quiet?: boolean; method?: 'auto' | 'eigen' } = {},
): FrechetResult {
  if (a.dims !== b.dims) throw new FidError(`cannot compare ${a.dims}-dim features with ${b.dims}-dim features`);
  const d = a.dims;
  if (a.mean.length !== d || a.cov.length !== d * d || b.mean.length !== d || b.cov.length !== d * d) {
    throw new FidError(`moments do not match their dims (${d}): mean and a ${d}×${d} covariance are needed`);
  }
  let meanTerm = 0;
  for (let i = 0; i < d; i++) meanTerm += (a.mean[i] - b.mean[i]) ** 2;
  let trace1 = 0;
  let trace2 = 0;
  for (let i = 0; i < d; i++) {
    trace1 += a.cov[i * d + i];
    trace2 += b.cov[i * d + i];
  }
  const sqrt = traceSqrtProduct(a.cov, b.cov, d, { method: options.method });
  const covTerm = trace1 + trace2 - 2 * sqrt.trace;
  const warnings: string[] = [];
  const small = [a.n < d ? `N = ${a.n} (first set)` : '', b.n < d ? `N = ${b.n} (second set)` : ''].filter(Boolean);
  if (small.length > 0) {
    warnings.push(
      `${small.join(' and ')} ${small.length > 1 ? 'are' : 'is'} below the ${d} feature dimensions: the covariance is singular and the FID is ` +
        'biased upward; use N ≥ dims (ideally ≥ 10k) for numbers worth comparing',
    );
  }
  if (!options.quiet) for (const w of warnings) warnOnce(w);
  return {
    value: meanTerm + covTerm,
    meanTerm,
    covTerm,
    traceSqrt: sqrt.trace,
    n1: a.n,
    n2: b.n,
    dims: d,
    clippedEigenvalues: sqrt.clippedEigenvalues,
    method: sqrt.method,
    warnings,
  };
}
