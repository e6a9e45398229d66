import * as tf from '@tensorflow/tfjs-core';
import { checkOptions, definePlugin, GantryError, NonFiniteLossError, Rng, type Trainer } from '@gantry/core';
import {
  DEFAULT_THRESHOLDS,
  DiscriminatorOverpowerDetector,
  diversityStats,
  GradNormRatioDetector,
  ModeCollapseDetector,
  OscillationDetector,
  VanishingGradientDetector,
  type DiagnosticThresholds,
  type Finding,
} from '../diagnostics/detectors.js';
import { adviceFor, runFacts, type RunFacts } from '../diagnostics/advice.js';
import { emitAlert } from './util.js';

export interface DiagnosticsOptions {
  /** Override any default threshold (see DEFAULT_THRESHOLDS). */
  thresholds?: Partial<DiagnosticThresholds>;
  /** Report ‖∇D‖ and ‖∇G‖ per step (`diagnostics/grad_norm/D|G`); needed for the ratio check. Default true. */
  gradNorms?: boolean;
  /** Seed of the fixed noise used for the mode-collapse check. Default 4242. */
  seed?: number;
}

const PLUGIN = 'diagnostics';

/** The reported gradient norm of a phase: ours, or any plugin's `…/grad_norm/<phase>`. */
function gradNorm(scalars: Record<string, number>, phase: 'D' | 'G'): number | undefined {
  const own = scalars[`${PLUGIN}/grad_norm/${phase}`];
  if (own !== undefined) return own;
  const key = Object.keys(scalars).find((k) => k.endsWith(`grad_norm/${phase}`));
  return key === undefined ? undefined : scalars[key];
}

/**
 * Watches a run for common GAN failure modes and emits `alert` events (the core prints nothing; the progress bar
 * prints them, metricsLog records them, the report lists them):
 * - `d_overpowering`: D loss < 0.1 within the first 100 steps (3 steps in a row);
 * - `grad_norm_ratio` (info): median ‖∇D‖/‖∇G‖ > 20 over 20 steps (norms reported by this plugin through
 *   transformGrads);
 * - `vanishing_g_gradient`: median ‖∇G‖ over 20 steps below 1% of its largest such median in the run;
 * - `mode_collapse`: on a fixed-noise batch every 500 steps, per-pixel variance across samples < 0.01 and the mean
 *   pairwise distance below half its best value (also emitted as eval metrics `diversity_variance`/`diversity_distance`);
 * - `oscillation`: ≥ 4 reversals larger than 0.5 × max(1, |loss|) of the smoothed D loss within 200 steps, after step
 *   100 (see OscillationDetector); not for Wasserstein critics;
 * - `non_finite`: the run stopped on a NaN/Inf loss (error), `run_error` for any other failure.
 * Each alert's message ends with remedies this run does not use yet and names those it does (`adviceFor`).
 */
export function diagnostics(options: DiagnosticsOptions = {}) {
  checkOptions('diagnostics', options, ['thresholds', 'gradNorms', 'seed']);
  checkOptions('diagnostics thresholds', options.thresholds, Object.keys(DEFAULT_THRESHOLDS));
  const t: DiagnosticThresholds = { ...DEFAULT_THRESHOLDS, ...options.thresholds };
  for (const [k, v] of Object.entries(t)) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new GantryError(`diagnostics threshold "${k}" must be a non-negative number, got ${v}`);
  }
  const overpower = new DiscriminatorOverpowerDetector(t);
  const ratio = new GradNormRatioDetector(t);
  const collapse = new ModeCollapseDetector(t);
  const oscillation = new OscillationDetector(t);
  const vanishing = new VanishingGradientDetector(t);
  let facts: RunFacts | undefined;
  let z: tf.Tensor2D | undefined;
  let labels: tf.Tensor1D | undefined;
  let critic = false;

  // Every alert ends with remedies this run does not use yet (and names those it does).
  const raise = (trainer: Trainer, step: number, finding: Finding | undefined) => {
    if (!finding) return undefined;
    const advice = adviceFor(finding.kind, facts ?? runFacts(trainer));
    return emitAlert(trainer, { step, ...finding, message: advice ? `${finding.message} ${advice}` : finding.message });
  };

  const release = () => {
    z?.dispose();
    labels?.dispose();
    z = labels = undefined;
  };

  const checkDiversity = async (trainer: Trainer, step: number) => {
    if (!z) return;
    const out = trainer.generate(z, labels);
    let data: Float32Array;
    try {
      data = (await out.data()) as Float32Array;
    } finally {
      out.dispose();
    }
    const n = z.shape[0];
    const stats = diversityStats(data, n, data.length / n);
    await trainer.bus.emit('eval', {
      step,
      metrics: { diversity_variance: stats.meanVariance, diversity_distance: stats.meanPairwiseDistance },
      meta: { source: PLUGIN },
    });
    await raise(trainer, step, collapse.update(step, stats));
  };

  return definePlugin({
    name: PLUGIN,
    hooks: {
      transformGrads: (grads, ctx) => {
        if (options.gradNorms === false) return;
        const list = Object.values(grads);
        if (list.length === 0) return;
        // Inside tidy: the core keeps what report() records; the intermediate tensors go.
        tf.tidy(() => {
          const norm = tf.sqrt(tf.addN(list.map((g) => tf.sum(tf.square(g))))) as tf.Scalar;
          ctx.report(`grad_norm/${ctx.phase}`, norm);
        });
      },
      teardown: release,
    },
    on: {
      'run:start': ({ trainer }) => {
        release();
        facts = runFacts(trainer);
        critic = /wasserstein|wgan/i.test(trainer.loss?.name ?? '');
        const count = t.collapseSamples;
        z = trainer.sampleLatent(count, new Rng(options.seed ?? 4242));
        const classes = trainer.conditional ? trainer.numClasses : undefined;
        if (classes) labels = tf.tensor1d(Int32Array.from({ length: count }, (_, i) => i % classes), 'int32');
      },
      // Before other listeners of the step (order 'pre'): an alert is logged with the step that raised it.
      'step:end': {
        order: 'pre',
        handler: async ({ step, scalars }, trainer) => {
          const d = scalars.d_loss;
          if (d !== undefined) {
            // A Wasserstein critic's loss estimates a distance that moves with G by design: a healthy ring-wgan-gp run
            // swung 4 times by more than 0.5 within 200 steps (steps 39 and 121), so neither check applies to critics.
            if (!critic) {
              await raise(trainer, step, overpower.update(step, d));
              await raise(trainer, step, oscillation.update(step, d));
            }
          }
          const dn = gradNorm(scalars, 'D');
          const gn = gradNorm(scalars, 'G');
          if (dn !== undefined && gn !== undefined) await raise(trainer, step, ratio.update(step, dn, gn));
          if (gn !== undefined) await raise(trainer, step, vanishing.update(step, gn));
          if (t.collapseEvery > 0 && step % t.collapseEvery === 0) await checkDiversity(trainer, step);
        },
      },
      'run:end': async ({ step, reason, error }, trainer) => {
        if (reason !== 'error' || !error) return;
        if (error instanceof NonFiniteLossError || error.name === 'NonFiniteLossError') {
          const e = error as NonFiniteLossError;
          await emitAlert(trainer, { step: e.step ?? step + 1, kind: 'non_finite', severity: 'error', message: e.message, value: e.value });
        } else {
          await emitAlert(trainer, { step, kind: 'run_error', severity: 'error', message: error.message });
        }
      },
    },
    state: {
      save: () => ({ json: { collapse: collapse.getState(), vanishing: vanishing.getState() } }),
      load: (snapshot) => {
        const saved = snapshot.json as { collapse?: { peakDistance: number; checks: number }; vanishing?: { peak: number } } | undefined;
        if (saved?.collapse) collapse.setState(saved.collapse);
        if (saved?.vanishing) vanishing.setState(saved.vanishing);
      },
    },
  });
}
