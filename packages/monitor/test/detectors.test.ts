import { describe, expect, it } from 'vitest';
import {
  DEFAULT_THRESHOLDS as T,
  DiscriminatorOverpowerDetector,
  diversityStats,
  GradNormRatioDetector,
  ModeCollapseDetector,
  OscillationDetector,
  VanishingGradientDetector,
} from '../src/diagnostics/detectors.js';
import { adviceFor, type RunFacts } from '../src/diagnostics/advice.js';

const run = <A extends unknown[]>(update: (step: number, ...a: A) => unknown, inputs: A[]) =>
  inputs.map((a, i) => [i + 1, update(i + 1, ...a)] as const).filter(([, f]) => f).map(([step, f]) => ({ step, ...(f as object) }));

describe('DiscriminatorOverpowerDetector', () => {
  it('fires once after 3 consecutive steps with D loss < 0.1 within 100 steps', () => {
    const d = new DiscriminatorOverpowerDetector(T);
    const losses = [1.2, 0.05, 0.08, 0.5, 0.05, 0.04, 0.03, 0.02, 0.01];
    const found = run((s, v: number) => d.update(s, v), losses.map((v) => [v] as [number]));
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ step: 7, kind: 'd_overpowering', severity: 'warning', value: 0.03, threshold: 0.1 });
  });

  it('ignores low losses after step 100 and negative critic losses', () => {
    const d = new DiscriminatorOverpowerDetector(T);
    for (let s = 1; s <= 100; s++) expect(d.update(s, s % 2 ? 0.05 : 0.7)).toBeUndefined();
    for (let s = 101; s < 110; s++) expect(d.update(s, 0.01)).toBeUndefined();
    const critic = new DiscriminatorOverpowerDetector(T);
    for (let s = 1; s < 10; s++) expect(critic.update(s, -3)).toBeUndefined();
  });
});

describe('GradNormRatioDetector', () => {
  it('fires when the median ratio over 20 steps exceeds the threshold (5 here), re-arms below 80% of it', () => {
    const d = new GradNormRatioDetector({ ...T, gradRatio: 5 });
    const inputs: [number, number][] = [];
    for (let i = 0; i < 19; i++) inputs.push([6, 1]); // window not full yet
    inputs.push([6, 1]); // step 20: median 6 > 5
    for (let i = 0; i < 20; i++) inputs.push([3, 1]); // recovers (median 3 < 4)
    for (let i = 0; i < 20; i++) inputs.push([10, 1]); // fires again
    const found = run((s, dn: number, gn: number) => d.update(s, dn, gn), inputs);
    // Step 31: eleven 3s of twenty, median 3 < 4, re-armed. Step 50: ten 3s and ten 10s, median 6.5 > 5.
    expect(found.map((f) => f.step)).toEqual([20, 50]);
    expect(found[0]).toMatchObject({ kind: 'grad_norm_ratio', severity: 'info', value: 6, threshold: 5 });
  });

  it('default threshold 20: quiet at the ratios of healthy runs (up to 15), info above', () => {
    const d = new GradNormRatioDetector(T);
    for (let s = 1; s <= 60; s++) expect(d.update(s, 15, 1)).toBeUndefined();
    const e = new GradNormRatioDetector(T);
    const found = run((s, dn: number) => e.update(s, dn, 1), Array.from({ length: 20 }, () => [21] as [number]));
    expect(found).toEqual([expect.objectContaining({ step: 20, severity: 'info', threshold: 20 })]);
  });

  it('is quiet for balanced or occasionally spiky norms', () => {
    const d = new GradNormRatioDetector(T);
    for (let s = 1; s <= 100; s++) expect(d.update(s, s % 7 === 0 ? 50 : 2, 1)).toBeUndefined();
  });
});

describe('diversityStats', () => {
  it('matches hand-computed variance and pairwise distance', () => {
    // Samples (d = 2): [0, 0], [1, 1], [1, -1]. Per-pixel variance: x: mean 2/3, var (4/9 + 1/9 + 1/9)/3 = 2/9;
    // y: mean 0, var 2/3. Mean variance = (2/9 + 2/3) / 2 = 4/9.
    // RMS distances: |(0,0)-(1,1)| = √(2/2) = 1, |(0,0)-(1,-1)| = 1, |(1,1)-(1,-1)| = √(4/2) = √2.
    const s = diversityStats(new Float32Array([0, 0, 1, 1, 1, -1]), 3, 2);
    expect(s.meanVariance).toBeCloseTo(4 / 9, 6);
    expect(s.meanPairwiseDistance).toBeCloseTo((2 + Math.SQRT2) / 3, 6);
  });
});

describe('ModeCollapseDetector', () => {
  it('needs low variance and a falling distance; a generator that starts out flat is not reported', () => {
    const d = new ModeCollapseDetector(T);
    expect(d.update(500, { meanVariance: 0.001, meanPairwiseDistance: 0.02 })).toBeUndefined(); // flat at init
    expect(d.update(1000, { meanVariance: 0.2, meanPairwiseDistance: 0.6 })).toBeUndefined(); // diverse
    expect(d.update(1500, { meanVariance: 0.05, meanPairwiseDistance: 0.25 })).toBeUndefined(); // falling, variance ok
    const f = d.update(2000, { meanVariance: 0.004, meanPairwiseDistance: 0.08 });
    expect(f).toMatchObject({ kind: 'mode_collapse', severity: 'error', value: 0.004, threshold: 0.01 });
    expect(d.update(2500, { meanVariance: 0.003, meanPairwiseDistance: 0.07 })).toBeUndefined(); // still collapsed: once
    expect(d.update(3000, { meanVariance: 0.3, meanPairwiseDistance: 0.7 })).toBeUndefined(); // recovered
    expect(d.update(3500, { meanVariance: 0.001, meanPairwiseDistance: 0.05 })).toBeDefined(); // again
  });
});

describe('OscillationDetector', () => {
  const square = (period: number, amp: number, steps: number) =>
    Array.from({ length: steps }, (_, i) => (Math.floor(i / (period / 2)) % 2 ? 1 + amp : 1 - amp));

  it('fires on repeated large swings of the D loss', () => {
    const d = new OscillationDetector({ ...T, oscillationAfter: 0 });
    // Swings of ±0.6 with a period of 40 steps: a reversal every 20 steps; the 4th one is within 200 steps.
    const found = run((s, v: number) => d.update(s, v), square(40, 0.6, 200).map((v) => [v] as [number]));
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ kind: 'oscillation', threshold: 4 });
    expect(found[0].step).toBeGreaterThan(60);
    expect(found[0].step).toBeLessThan(120);
  });

  it('ignores noise below the amplitude and a steady decline', () => {
    const noise = new OscillationDetector(T);
    const small = square(10, 0.2, 400);
    small.forEach((v, i) => expect(noise.update(i + 1, v)).toBeUndefined());
    const decline = new OscillationDetector(T);
    for (let s = 1; s <= 400; s++) expect(decline.update(s, 3 - s / 100 + 0.1 * Math.sin(s))).toBeUndefined();
  });

  it('ignores the first 100 steps, and scales the amplitude with large losses', () => {
    // Swings of ±0.6 around 1 with period 40: the 5-step average crosses the (now 0.5 × max(1, |loss|)) amplitude three
    // steps into each swing, so reversals fall on steps 43, 63, 83, …; counting only after step 100, the 4th is 163.
    const d = new OscillationDetector(T);
    const found = run((s, v: number) => d.update(s, v), square(40, 0.6, 240).map((v) => [v] as [number]));
    expect(found.map((f) => f.step)).toEqual([163]);
    // A critic loss swinging between −4.6 and −3.4 (the same ±0.6) moves by less than 0.5 × |loss| ≈ 2: no reversal.
    const critic = new OscillationDetector({ ...T, oscillationAfter: 0 });
    square(40, 0.6, 400).forEach((v, i) => expect(critic.update(i + 1, v - 5)).toBeUndefined());
  });

  it('counts reversals only within the window', () => {
    const d = new OscillationDetector({ ...T, oscillationWindow: 50 });
    // Period 80: reversals 40 steps apart, never 4 within 50 steps.
    square(80, 1, 600).forEach((v, i) => expect(d.update(i + 1, v)).toBeUndefined());
  });
});

describe('VanishingGradientDetector', () => {
  it('fires when the 20-step median ‖∇G‖ falls below 1% of its peak; re-arms above 10× that level', () => {
    const d = new VanishingGradientDetector(T);
    const inputs: [number][] = [];
    for (let i = 0; i < 20; i++) inputs.push([1]); // steps 1–20: median 1 = peak
    for (let i = 0; i < 20; i++) inputs.push([0.005]); // from step 21
    for (let i = 0; i < 20; i++) inputs.push([0.5]); // from step 41: recovers
    for (let i = 0; i < 20; i++) inputs.push([0.001]); // from step 61
    const found = run((s, g: number) => d.update(s, g), inputs);
    // Step 31: eleven of twenty are 0.005, median 0.005 < 0.01 · 1. Step 71: eleven 0.001, nine 0.5: median 0.001.
    expect(found.map((f) => f.step)).toEqual([31, 71]);
    expect(found[0]).toMatchObject({ kind: 'vanishing_g_gradient', severity: 'warning', value: 0.005, threshold: 0.01 });
  });

  it('is quiet for norms that drift down by less than 100× or are noisy around a level', () => {
    const d = new VanishingGradientDetector(T);
    for (let s = 1; s <= 400; s++) expect(d.update(s, 2 * Math.exp(-s / 100) * (s % 3 ? 1 : 0.2))).toBeUndefined();
  });
});

describe('adviceFor: remedies that fit the run', () => {
  const facts = (over: Partial<RunFacts> = {}): RunFacts => ({
    plugins: new Set(),
    lossName: 'non-saturating',
    discriminatorLayers: new Set(['Dense']),
    learningRates: { generator: 2e-4, discriminator: 2e-4 },
    nCritic: 1,
    ...over,
  });

  it('a plain run gets every remedy', () => {
    expect(adviceFor('grad_norm_ratio', facts())).toBe('Try TTUR learning rates, a gradient penalty or spectral normalization on D.');
  });

  it('a gradient penalty, TTUR and spectral norm in use are named as active, not suggested', () => {
    const wganGp = facts({ plugins: new Set(['gradient-penalty']), learningRates: { generator: 1e-4, discriminator: 4e-4 } });
    expect(adviceFor('grad_norm_ratio', wganGp)).toBe(
      'Try spectral normalization on D. Already active: separate learning rates (G 0.0001, D 0.0004), a gradient penalty.',
    );
    const sn = facts({ discriminatorLayers: new Set(['SpectralNormalization', 'Dense']), plugins: new Set(['r1']) });
    expect(adviceFor('oscillation', sn)).toBe('Try lower learning rates. Already active: a gradient penalty.');
    expect(adviceFor('grad_norm_ratio', sn)).toContain('Already active: a gradient penalty, spectral normalization on D.');
  });

  it('fewer critic steps only with several, the non-saturating loss only under minimax', () => {
    expect(adviceFor('d_overpowering', facts())).not.toContain('critic');
    expect(adviceFor('d_overpowering', facts({ nCritic: 5 }))).toContain('fewer critic steps');
    expect(adviceFor('d_overpowering', facts({ plugins: new Set(['ada', 'label-smoothing']) }))).toBe(
      'Try instance noise or a lower D learning rate. Already active: label smoothing, ada.',
    );
    expect(adviceFor('vanishing_g_gradient', facts())).not.toContain('non-saturating');
    expect(adviceFor('vanishing_g_gradient', facts({ lossName: 'minimax' }))).toMatch(/^Try the non-saturating generator loss, /);
  });

  it('mode collapse: unrolling, packing and minibatch features in use are not suggested again', () => {
    const f = facts({ plugins: new Set(['unrolled', 'pacgan']), discriminatorLayers: new Set(['MinibatchStdDev']) });
    expect(adviceFor('mode_collapse', f)).toBe(
      'Try a lower G learning rate. Already active: minibatch features in D, unrolled D steps, PacGAN packing.',
    );
  });
});
