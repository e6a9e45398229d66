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
  /**
   * Median ratio of D to G gradient norms above this is an (info) alert. Default 20: healthy runs measured 4–15
   * (ring-gan: median 4.1, 95th percentile 11.6, max 15.3 over its first steps; earlier notes saw 5–12 on mnist-dcgan
   * and 5.01 on mnist-wgan-gp), and a 10× discriminator learning rate lowered it on ring-gan (median 0.54).
   */
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
  /**
   * A reversal counts only when the smoothed D loss moves back by more than this × max(1, |smoothed loss|) from its
   * last extreme (relative for large losses: a Wasserstein critic's loss of −4 swings by more than a BCE loss). Default 0.5.
   */
  oscillationAmplitude: number;
  /** Reversals in the first this many steps (the early transient) do not count. Default 100. */
  oscillationAfter: number;
  /** Reversals within the window that make an alert. Default 4. */
  oscillationReversals: number;
  /** Median ‖∇G‖ over `vanishWindow` steps below this fraction of its largest median so far is an alert. Default 0.01. */
  vanishRatio: number;
  /** Steps in the median. Default 20. */
  vanishWindow: number;
}

export const DEFAULT_THRESHOLDS: DiagnosticThresholds = {
  dOverpowerLoss: 0.1,
  dOverpowerSteps: 100,
  dOverpowerPatience: 3,
  gradRatio: 20,
  gradRatioWindow: 20,
  collapseEvery: 500,
  collapseSamples: 64,
  collapseVariance: 0.01,
  collapseDistanceDrop: 0.5,
  oscillationWindow: 200,
  oscillationSmoothing: 5,
  oscillationAmplitude: 0.5,
  oscillationReversals: 4,
  oscillationAfter: 100,
  vanishRatio: 0.01,
  vanishWindow: 20,
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
        `(within the first ${this.t.dOverpowerSteps} steps), so G gets almost no gradient.`,
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

/**
 * Median of ‖∇D‖ / ‖∇G‖ over the last `gradRatioWindow` steps above `gradRatio`; re-arms below 80 % of it. Severity
 * `info`: the ratio depends on the two networks' sizes as much as on their balance, so on its own it does not show
 * that training is failing (the calibration in the monitor README).
 */
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
      severity: 'info',
      message:
        `Gradient norms unbalanced at step ${step}: median ‖∇D‖/‖∇G‖ = ${ratio.toFixed(2)} > ${this.t.gradRatio} ` +
        `over ${this.t.gradRatioWindow} steps.`,
      value: ratio,
      threshold: this.t.gradRatio,
    };
  }
}

/**
 * Vanishing generator gradients: the median ‖∇G‖ over the last `vanishWindow` steps has fallen below `vanishRatio`
 * × the largest such median seen in this run (the run's own scale: gradient norms differ by orders of magnitude
 * between models, so no absolute threshold fits all). Re-arms once the median is back above 10 × that level.
 */
export class VanishingGradientDetector {
  private readonly norms: number[] = [];
  private peak = 0;
  private active = false;
  constructor(private readonly t: Pick<DiagnosticThresholds, 'vanishRatio' | 'vanishWindow'>) {}

  update(step: number, gNorm: number): Finding | undefined {
    if (!Number.isFinite(gNorm)) return undefined;
    this.norms.push(gNorm);
    if (this.norms.length > this.t.vanishWindow) this.norms.shift();
    if (this.norms.length < this.t.vanishWindow) return undefined;
    const current = median(this.norms);
    this.peak = Math.max(this.peak, current);
    const level = this.t.vanishRatio * this.peak;
    if (this.active) {
      if (current > 10 * level) this.active = false;
      return undefined;
    }
    if (!(current < level)) return undefined;
    this.active = true;
    return {
      kind: 'vanishing_g_gradient',
      severity: 'warning',
      message:
        `Vanishing generator gradients at step ${step}: median ‖∇G‖ = ${current.toExponential(2)} over ` +
        `${this.t.vanishWindow} steps, below ${this.t.vanishRatio} × its peak ${this.peak.toExponential(2)}; G has ` +
        'almost nothing to learn from (typically D rejects every sample with a saturating loss).',
      value: current,
      threshold: level,
    };
  }

  getState(): { peak: number } {
    return { peak: this.peak };
  }

  setState(state: { peak: number }): void {
    this.peak = state.peak;
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
        `${stats.meanPairwiseDistance.toFixed(4)} (best ${this.peakDistance.toFixed(4)}).`,
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
      'oscillationWindow' | 'oscillationSmoothing' | 'oscillationAmplitude' | 'oscillationReversals' | 'oscillationAfter'
    >,
  ) {}

  update(step: number, dLoss: number): Finding | undefined {
    if (!Number.isFinite(dLoss)) return undefined;
    this.recent.push(dLoss);
    if (this.recent.length > this.t.oscillationSmoothing) this.recent.shift();
    if (this.recent.length < this.t.oscillationSmoothing) return undefined;
    const v = this.recent.reduce((a, b) => a + b, 0) / this.recent.length;
    const a = this.t.oscillationAmplitude * Math.max(1, Math.abs(v));
    const counts = step > this.t.oscillationAfter;
    if (this.direction === 0) {
      this.lo = Math.min(this.lo, v);
      this.hi = Math.max(this.hi, v);
      if (v - this.lo > a) [this.direction, this.extreme] = [1, v];
      else if (this.hi - v > a) [this.direction, this.extreme] = [-1, v];
    } else if (this.direction === 1) {
      if (v > this.extreme) this.extreme = v;
      else if (this.extreme - v > a) {
        if (counts) this.reversals.push(step);
        [this.direction, this.extreme] = [-1, v];
      }
    } else {
      if (v < this.extreme) this.extreme = v;
      else if (v - this.extreme > a) {
        if (counts) this.reversals.push(step);
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
        `Oscillating losses at step ${step}: the smoothed D loss reversed ${count} times by more than ${a.toFixed(2)} ` +
        `within ${this.t.oscillationWindow} steps.`,
      value: count,
      threshold: this.t.oscillationReversals,
    };
  }
}
