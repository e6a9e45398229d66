import { FidError } from './errors.js';

/**
 * Eigendecomposition of a real symmetric matrix on flat row-major float64 arrays: Householder reduction to
 * tridiagonal form, then the implicit QL algorithm with Wilkinson-style shifts (the EISPACK tred2/tql2 scheme).
 * Laid out for JavaScript: every inner loop runs along a contiguous row (the symmetric products and rank-2 updates
 * read the lower triangle row by row, and the eigenvectors are kept as rows, so each QL rotation combines two
 * contiguous rows). Without vectors only the reduction and the QL sweeps on two vectors remain, about (4/3)·n³ flops.
 */
export function symmetricEigenFlat(S: Float64Array, n: number, withVectors: boolean): { values: Float64Array; vectorsAsRows?: Float64Array } {
  if (S.length !== n * n) throw new FidError(`symmetricEigenFlat: expected ${n}×${n} values, got ${S.length}`);
  const a = Float64Array.from(S);
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  tridiagonalize(a, n, d, e, withVectors);
  let z: Float64Array | undefined;
  if (withVectors) {
    // The accumulated transform Q (columns = basis of the tridiagonal form) as rows: row i is column i of Q.
    z = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let k = 0; k < n; k++) z[i * n + k] = a[k * n + i];
  }
  implicitQl(d, e, n, z);
  // Sort ascending (values and, with them, the vector rows).
  const order = Array.from({ length: n }, (_, i) => i).sort((p, q) => d[p] - d[q]);
  const values = Float64Array.from(order, (i) => d[i]);
  if (!z) return { values };
  const vectorsAsRows = new Float64Array(n * n);
  order.forEach((src, dst) => vectorsAsRows.set(z!.subarray(src * n, src * n + n), dst * n));
  return { values, vectorsAsRows };
}

/**
 * Householder reduction of the symmetric matrix `a` (lower triangle used) to tridiagonal form: diagonal in `d`,
 * sub-diagonal in `e` (e[i] couples i−1 and i; e[0] = 0). With `accumulate`, `a` ends as the orthogonal Q with
 * Qᵀ A Q = T; otherwise its contents are left undefined.
 */
function tridiagonalize(a: Float64Array, n: number, d: Float64Array, e: Float64Array, accumulate: boolean): void {
  const p = new Float64Array(n);
  for (let i = n - 1; i > 0; i--) {
    const l = i - 1;
    const ri = i * n;
    let h = 0;
    if (l > 0) {
      let scale = 0;
      for (let k = 0; k <= l; k++) scale += Math.abs(a[ri + k]);
      if (scale === 0) {
        e[i] = a[ri + l];
      } else {
        for (let k = 0; k <= l; k++) {
          a[ri + k] /= scale;
          h += a[ri + k] * a[ri + k];
        }
        const f = a[ri + l];
        const g = f >= 0 ? -Math.sqrt(h) : Math.sqrt(h);
        e[i] = scale * g;
        h -= f * g;
        a[ri + l] = f - g;
        // p = A u / h with u = row i (0…l) and A the leading (l+1)×(l+1) block, read from its lower triangle by rows.
        for (let j = 0; j <= l; j++) p[j] = 0;
        for (let j = 0; j <= l; j++) {
          const rj = j * n;
          const uj = a[ri + j];
          let sum = a[rj + j] * uj;
          for (let k = 0; k < j; k++) {
            const ajk = a[rj + k];
            sum += ajk * a[ri + k];
            p[k] += ajk * uj;
          }
          p[j] += sum;
        }
        let fSum = 0;
        for (let j = 0; j <= l; j++) {
          p[j] /= h;
          fSum += p[j] * a[ri + j];
          if (accumulate) a[j * n + i] = a[ri + j] / h;
        }
        const hh = fSum / (h + h);
        for (let j = 0; j <= l; j++) p[j] -= hh * a[ri + j];
        // Rank-2 update A −= u qᵀ + q uᵀ on the lower triangle, row by row.
        for (let j = 0; j <= l; j++) {
          const rj = j * n;
          const fj = a[ri + j];
          const gj = p[j];
          for (let k = 0; k <= j; k++) a[rj + k] -= fj * p[k] + gj * a[ri + k];
        }
      }
    } else {
      e[i] = a[ri + l];
    }
    d[i] = h;
  }
  d[0] = 0;
  e[0] = 0;
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    if (accumulate) {
      const l = i - 1;
      if (d[i] !== 0) {
        // Q_block −= (Q_block u) uᵀ-style update, with the products formed along rows.
        const g = p;
        for (let j = 0; j <= l; j++) g[j] = 0;
        for (let k = 0; k <= l; k++) {
          const aik = a[ri + k];
          const rk = k * n;
          for (let j = 0; j <= l; j++) g[j] += aik * a[rk + j];
        }
        for (let k = 0; k <= l; k++) {
          const rk = k * n;
          const aki = a[rk + i];
          for (let j = 0; j <= l; j++) a[rk + j] -= g[j] * aki;
        }
      }
      d[i] = a[ri + i];
      a[ri + i] = 1;
      for (let j = 0; j <= l; j++) {
        a[j * n + i] = 0;
        a[ri + j] = 0;
      }
    } else {
      d[i] = a[ri + i];
    }
  }
}

/**
 * Eigenvalues (into `d`) of the symmetric tridiagonal matrix (d, e) by the implicit QL method; with `z` (rows =
 * basis vectors), the same rotations are applied to its rows so that they become the eigenvectors.
 */
function implicitQl(d: Float64Array, e: Float64Array, n: number, z?: Float64Array): void {
  for (let i = 1; i < n; i++) e[i - 1] = e[i];
  if (n > 0) e[n - 1] = 0;
  const eps = Number.EPSILON;
  for (let l = 0; l < n; l++) {
    let iterations = 0;
    let m: number;
    do {
      for (m = l; m < n - 1; m++) {
        const dd = Math.abs(d[m]) + Math.abs(d[m + 1]);
        if (Math.abs(e[m]) <= eps * dd) break;
      }
      if (m !== l) {
        if (iterations++ === 60) throw new FidError('symmetric eigendecomposition did not converge');
        let g = (d[l + 1] - d[l]) / (2 * e[l]);
        let r = Math.hypot(g, 1);
        g = d[m] - d[l] + e[l] / (g + (g >= 0 ? Math.abs(r) : -Math.abs(r)));
        let s = 1;
        let c = 1;
        let p = 0;
        let i: number;
        for (i = m - 1; i >= l; i--) {
          const f = s * e[i];
          const b = c * e[i];
          r = Math.hypot(f, g);
          e[i + 1] = r;
          if (r === 0) {
            d[i + 1] -= p;
            e[m] = 0;
            break;
          }
          s = f / r;
          c = g / r;
          g = d[i + 1] - p;
          r = (d[i] - g) * s + 2 * c * b;
          p = s * r;
          d[i + 1] = g + p;
          g = c * r - b;
          if (z) {
            const r0 = i * n;
            const r1 = r0 + n;
            for (let k = 0; k < n; k++) {
              const zi1 = z[r1 + k];
              const zi = z[r0 + k];
              z[r1 + k] = s * zi + c * zi1;
              z[r0 + k] = c * zi - s * zi1;
            }
          }
        }
        if (r === 0 && i >= l) continue;
        d[l] -= p;
        e[l] = g;
        e[m] = 0;
      }
    } while (m !== l);
  }
}
