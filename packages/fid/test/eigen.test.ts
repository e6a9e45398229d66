import { EigenvalueDecomposition, Matrix } from 'ml-matrix';
import { describe, expect, it } from 'vitest';
import { symmetricEigen } from '../src/index.js';
import { gaussian } from './helpers.js';

function randomSymmetric(n: number, seed: number): Float64Array {
  const g = gaussian(n * n, seed);
  const S = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) S[i * n + j] = g[i * n + j] + g[j * n + i];
  return S;
}

describe('symmetricEigen', () => {
  it.each([[1], [2], [5], [33], [120]])('matches ml-matrix and gives orthonormal eigenvectors (n = %i)', (n) => {
    const S = randomSymmetric(n, n + 1);
    const reference = new EigenvalueDecomposition(Matrix.from1DArray(n, n, S), { assumeSymmetric: true }).realEigenvalues.sort((a, b) => a - b);
    const full = symmetricEigen(S, n, true);
    const valuesOnly = symmetricEigen(S, n, false);
    const scale = Math.max(...reference.map(Math.abs));
    for (let i = 0; i < n; i++) {
      expect(Math.abs(full.values[i] - reference[i]) / scale).toBeLessThan(1e-13);
      expect(Math.abs(valuesOnly.values[i] - reference[i]) / scale).toBeLessThan(1e-13);
    }
    expect(valuesOnly.vectorsAsRows).toBeUndefined();
    const V = full.vectorsAsRows!;
    for (let i = 0; i < n; i++) {
      // S v = λ v and vᵢ·vⱼ = δᵢⱼ.
      for (let r = 0; r < n; r++) {
        let sv = 0;
        for (let k = 0; k < n; k++) sv += S[r * n + k] * V[i * n + k];
        expect(Math.abs(sv - full.values[i] * V[i * n + r]) / scale).toBeLessThan(1e-13);
      }
      for (let j = 0; j < n; j++) {
        let dot = 0;
        for (let k = 0; k < n; k++) dot += V[i * n + k] * V[j * n + k];
        expect(Math.abs(dot - (i === j ? 1 : 0))).toBeLessThan(1e-13);
      }
    }
  });

  it('handles repeated eigenvalues, zeros and an already diagonal matrix', () => {
    const diag = Float64Array.from([3, 0, 0, 0, 0, 0, 0, 0, 3]);
    expect(Array.from(symmetricEigen(diag, 3).values)).toEqual([0, 3, 3]);
    expect(Array.from(symmetricEigen(new Float64Array(16), 4, false).values)).toEqual([0, 0, 0, 0]);
    // Rank one: u uᵀ with u = (1, 2, 2) has eigenvalues 0, 0, 9.
    const u = [1, 2, 2];
    const rankOne = Float64Array.from(u.flatMap((a) => u.map((b) => a * b)));
    const values = symmetricEigen(rankOne, 3, false).values;
    expect(values[0]).toBeCloseTo(0, 14);
    expect(values[1]).toBeCloseTo(0, 14);
    expect(values[2]).toBeCloseTo(9, 13);
  });
});
