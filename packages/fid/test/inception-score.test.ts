import { describe, expect, it } from 'vitest';
import { inceptionScore } from '../src/index.js';

describe('inceptionScore', () => {
  it('equals the number of classes for confident, evenly spread predictions', () => {
    const c = 10;
    const n = 1000;
    const p = new Float32Array(n * c);
    for (let i = 0; i < n; i++) p[i * c + (i % c)] = 1;
    const r = inceptionScore(p, { classes: c });
    expect(r.value).toBeCloseTo(10, 10);
    expect(r.std).toBeCloseTo(0, 10);
    expect(r).toMatchObject({ splits: 10, n: 1000, classes: 10 });
  });

  it('is 1 when every sample gets the same prediction', () => {
    const p = new Float32Array(200 * 4);
    for (let i = 0; i < 200; i++) p.set([0.1, 0.2, 0.3, 0.4], i * 4);
    expect(inceptionScore(p, { classes: 4, splits: 5 }).value).toBeCloseTo(1, 6);
  });

  it('matches a hand computation and accepts logits', () => {
    // Two samples, one split: p₁ = (0.9, 0.1), p₂ = (0.2, 0.8), p(y) = (0.55, 0.45).
    const p1 = [0.9, 0.1];
    const p2 = [0.2, 0.8];
    const py = [0.55, 0.45];
    const kl = (p: number[]) => p.reduce((s, v, j) => s + v * Math.log(v / py[j]), 0);
    const expected = Math.exp((kl(p1) + kl(p2)) / 2);
    expect(inceptionScore(Float32Array.from([...p1, ...p2]), { classes: 2, splits: 1 }).value).toBeCloseTo(expected, 6);
    const logits = Float32Array.from([...p1, ...p2].map((v) => Math.log(v) + 3));
    expect(inceptionScore(logits, { classes: 2, splits: 1, logits: true }).value).toBeCloseTo(expected, 6);
  });

  it('rejects rows that are not probabilities', () => {
    expect(() => inceptionScore(Float32Array.of(2, 3, 1, 1), { classes: 2, splits: 1 })).toThrow(/must sum to 1.*logits: true/);
  });
});
