/**
 * Training-health detectors as small state machines fed with plain numbers, so each one can be tested with
 * constructed sequences. Each returns an alert the first time its condition holds and stays quiet until the
 * condition has cleared (edge-triggered), so a persistent problem is reported once, not every step.
 */
export type Severity = 'info' | 'warning' | 'error';

export interface Finding {
  kind: string;
  severity: Severity;
  message: string;
  value?: number;
  threshold?: number;
}

export interface DiagnosticThresholds {
  /** D loss below this within the first `dOverpowerSteps` steps means D is winning too early. Default 0.1. */
  dOverpowerLoss: number;
  /** Default 100. */
  dOverpowerSteps: number;
  /** Consecutive steps below the threshold before alerting (one noisy step is not a trend). Default 3. */
  dOverpowerPatience: number;
  /** Median ratio of D to G gradient norms above this is an alert. Default 5. */
  gradRatio: number;
  /** Steps in the median. Default 20. */
  gradRatioWindow: number;
  /** Check the fixed-noise batch for mode collapse every N steps. Default 500. */
  collapseEvery: number;
  /** Samples in the fixed-noise batch. Default 64. */
  collapseSamples: number;
  /** Mean per-pixel variance across samples (on the [-1, 1] scale) below this is low diversity. Default 0.01. */
  collapseVariance: number;
  /** "Falling" pairwise distance: below this fraction of its best value so far. Default 0.5. */
  collapseDistanceDrop: number;
  /** Steps over which D-loss reversals are counted. Default 200. */
  oscillationWindow: number;
  /** Moving-average length that smooths the D loss before looking for reversals. Default 5. */
  oscillationSmoothing: number;
  /** A reversal counts only when the smoothed D loss moves back by more than this from its last extreme. Default 0.5. */
  oscillationAmplitude: number;
  /** Reversals within the window that make an alert. Default 4. */
  oscillationReversals: number;
}

export const DEFAULT_THRESHOLDS: DiagnosticThresholds = {
  dOverpowerLoss: 0.1,
  dOverpowerSteps: 100,
  dOverpowerPatience: 3,
  gradRatio: 5,
  gradRatioWindow: 20,
  collapseEvery: 500,
  collapseSamples: 64,
  collapseVariance: 0.01,
  collapseDistanceDrop: 0.5,
  oscillationWindow: 200,
  oscillationSmoothing: 5,
  oscillationAmplitude: 0.5,
  oscillationReversals: 4,
};

/** D loss below `dOverpowerLoss` for `dOverpowerPatience` consecutive steps within the first `dOverpowerSteps`. */
export class DiscriminatorOverpowerDetector {
  private streak = 0;
  private fired = false;
  constructor(private readonly t: Pick<DiagnosticThresholds, 'dOverpowerLoss' | 'dOverpowerSteps' | 'dOverpowerPatience'>) {}

  update(step: number, dLoss: number): Finding | undefined {
    if (this.fired || step > this.t.dOverpowerSteps) return undefined;
    // A negative D loss is a critic (Wasserstein) loss, for which "near zero" means nothing.
    this.streak = dLoss >= 0 && dLoss < this.t.dOverpowerLoss ? this.streak + 1 : 0;
    if (this.streak < this.t.dOverpowerPatience) return undefined;
    this.fired = true;
    return {
      kind: 'd_overpowering',
      severity: 'warning',
      message:
        `Discriminator overpowering: D loss ${dLoss.toFixed(4)} < ${this.t.dOverpowerLoss} at step ${step} ` +
        `(within the first ${this.t.dOverpowerSteps} steps), so G gets almost no gradient. ` +
        'Try one-sided label smoothing, instance noise, a lower D learning rate or fewer critic steps.',
      value: dLoss,
      threshold: this.t.dOverpowerLoss,
    };
  }
}

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Median of ‖∇D‖ / ‖∇G‖ over the last `gradRatioWindow` steps above `gradRatio`; re-arms below 80 % of it. */
export class GradNormRatioDetector {
  private readonly ratios: number[] = [];
  private active = false;
  constructor(private readonly t: Pick<DiagnosticThresholds, 'gradRatio' | 'gradRatioWindow'>) {}

  update(step: number, dNorm: number, gNorm: number): Finding | undefined {
    if (!Number.isFinite(dNorm) || !Number.isFinite(gNorm)) return undefined;
    this.ratios.push(dNorm / Math.max(gNorm, 1e-12));
    if (this.ratios.length > this.t.gradRatioWindow) this.ratios.shift();
    if (this.ratios.length < this.t.gradRatioWindow) return undefined;
    const ratio = median(this.ratios);
    if (this.active) {
      if (ratio < 0.8 * this.t.gradRatio) this.active = false;
      return undefined;
    }
    if (ratio <= this.t.gradRatio) return undefined;
    this.active = true;
    return {
      kind: 'grad_norm_ratio',
      severity: 'warning',
      message:
        `Gradient norms unbalanced at step ${step}: median ‖∇D‖/‖∇G‖ = ${ratio.toFixed(2)} > ${this.t.gradRatio} ` +
        `over ${this.t.gradRatioWindow} steps. Consider TTUR learning rates, gradient penalty or spectral norm on D.`,
      value: ratio,
      threshold: this.t.gradRatio,
    };
  }
}

export interface DiversityStats {
  /** Mean over pixels of the variance across samples. */
  meanVariance: number;
  /** Mean over sample pairs of the RMS per-pixel difference. */
  meanPairwiseDistance: number;
}

/** Diversity of n samples of d values each (row-major), on the [-1, 1] scale. */
export function diversityStats(data: Float32Array, n: number, d: number): DiversityStats {
  if (data.length !== n * d) throw new RangeError(`diversityStats: ${data.length} values for ${n}×${d}`);
  let varianceSum = 0;
  for (let j = 0; j < d; j++) {
    let mean = 0;
    for (let i = 0; i < n; i++) mean += data[i * d + j];
    mean /= n;
    let v = 0;
    for (let i = 0; i < n; i++) v += (data[i * d + j] - mean) ** 2;
    varianceSum += v / n;
  }
  let distanceSum = 0;
  let pairs = 0;
  for (let a = 0; a < n; a++) {
    for (let b = a + 1; b < n; b++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += (data[a * d + j] - data[b * d + j]) ** 2;
      distanceSum += Math.sqrt(s / d);
      pairs += 1;
    }
  }
  return { meanVariance: varianceSum / d, meanPairwiseDistance: pairs ? distanceSum / pairs : 0 };
}

/**
 * Mode collapse on the fixed-noise batch: mean per-pixel variance below `collapseVariance` and the mean pairwise
 * distance fallen below `collapseDistanceDrop` × its best value so far. Requiring the fall keeps a generator that
 * starts out with near-constant output (common at initialization) from being reported.
 */
export class ModeCollapseDetector {
  peakDistance = 0;
  checks = 0;
  private active = false;
  constructor(private readonly t: Pick<DiagnosticThresholds, 'collapseVariance' | 'collapseDistanceDrop'>) {}

  update(step: number, stats: DiversityStats): Finding | undefined {
    const falling = this.checks > 0 && stats.meanPairwiseDistance < this.t.collapseDistanceDrop * this.peakDistance;
    this.peakDistance = Math.max(this.peakDistance, stats.meanPairwiseDistance);
    this.checks += 1;
    const collapsed = stats.meanVariance < this.t.collapseVariance && falling;
    if (!collapsed) {
      this.active = false;
      return undefined;
    }
    if (this.active) return undefined;
    this.active = true;
    return {
      kind: 'mode_collapse',
      severity: 'error',
      message:
        `Mode collapse suspected at step ${step}: fixed-noise samples have mean per-pixel variance ` +
        `${stats.meanVariance.toExponential(2)} < ${this.t.collapseVariance} and their mean pairwise distance fell to ` +
        `${stats.meanPairwiseDistance.toFixed(4)} (best ${this.peakDistance.toFixed(4)}). ` +
        'Try minibatch discrimination, unrolled D steps, or a lower G learning rate.',
      value: stats.meanVariance,
      threshold: this.t.collapseVariance,
    };
  }

  getState(): { peakDistance: number; checks: number } {
    return { peakDistance: this.peakDistance, checks: this.checks };
  }

  setState(state: { peakDistance: number; checks: number }): void {
    this.peakDistance = state.peakDistance;
    this.checks = state.checks;
  }
}

/**
 * Oscillating losses. Definition: smooth the D loss with a moving average of `oscillationSmoothing` steps and
 * follow it with a zig-zag filter: a reversal is registered when the smoothed loss moves back by more than
 * `oscillationAmplitude` from its last extreme (a peak or trough). `oscillationReversals` or more reversals within
 * the last `oscillationWindow` steps is an alert. Noise smaller than the amplitude never counts, and a loss that
 * drifts in one direction has no reversals, so only repeated large swings (the two players chasing each other)
 * trigger it.
 */
export class OscillationDetector {
  private readonly recent: number[] = [];
  private readonly reversals: number[] = [];
  private direction: -1 | 0 | 1 = 0;
  private extreme = 0;
  private lo = Infinity;
  private hi = -Infinity;
  private active = false;
  constructor(
    private readonly t: Pick<
      DiagnosticThresholds,
      'oscillationWindow' | 'oscillationSmoothing' | 'oscillationAmplitude' | 'oscillationReversals'
    >,
  ) {}

  update(step: number, dLoss: number): Finding | undefined {
    if (!Number.isFinite(dLoss)) return undefined;
    this.recent.push(dLoss);
    if (this.recent.length > this.t.oscillationSmoothing) this.recent.shift();
    if (this.recent.length < this.t.oscillationSmoothing) return undefined;
    const v = this.recent.reduce((a, b) => a + b, 0) / this.recent.length;
    const a = this.t.oscillationAmplitude;
    if (this.direction === 0) {
      this.lo = Math.min(this.lo, v);
      this.hi = Math.max(this.hi, v);
      if (v - this.lo > a) [this.direction, this.extreme] = [1, v];
      else if (this.hi - v > a) [this.direction, this.extreme] = [-1, v];
    } else if (this.direction === 1) {
      if (v > this.extreme) this.extreme = v;
      else if (this.extreme - v > a) {
        this.reversals.push(step);
        [this.direction, this.extreme] = [-1, v];
      }
    } else {
      if (v < this.extreme) this.extreme = v;
      else if (v - this.extreme > a) {
        this.reversals.push(step);
        [this.direction, this.extreme] = [1, v];
      }
    }
    while (this.reversals.length > 0 && this.reversals[0] <= step - this.t.oscillationWindow) this.reversals.shift();
    const count = this.reversals.length;
    if (count < this.t.oscillationReversals) {
      this.active = false;
      return undefined;
    }
    if (this.active) return undefined;
    this.active = true;
    return {
      kind: 'oscillation',
      severity: 'warning',
      message:
        `Oscillating losses at step ${step}: the smoothed D loss reversed ${count} times by more than ${a} ` +
        `within ${this.t.oscillationWindow} steps. Lower the learning rates or add a gradient penalty.`,
      value: count,
      threshold: this.t.oscillationReversals,
    };
  }
}
