import { checkOptions, definePlugin, GantryError } from '@gantry/core';
import cliProgress from 'cli-progress';

export interface ProgressBarOptions {
  /** Plain lines instead of a live bar; default: on when the stream is not a TTY (CI, pipes, log files). */
  quiet?: boolean;
  /** Where to write; default process.stderr. */
  stream?: NodeJS.WritableStream;
  /** Quiet mode prints every N steps; default totalSteps / 20 (about 20 lines a run). */
  every?: number;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

const fmtLoss = (v: number | undefined) => (v === undefined ? '-' : Number.isFinite(v) ? v.toFixed(4) : String(v));

/**
 * Console progress: a live cli-progress bar (step/total, it/s, ETA, D and G loss) on a terminal, or plain lines
 * every N steps in quiet mode. Alerts are printed as they happen, above the bar.
 */
export function progressBar(options: ProgressBarOptions = {}) {
  checkOptions('progressBar', options, ['quiet', 'stream', 'every']);
  if (options.every !== undefined && (!Number.isInteger(options.every) || options.every < 1)) {
    throw new GantryError(`progressBar option "every" must be a positive integer, got ${options.every}`);
  }
  const stream = options.stream ?? process.stderr;
  const quiet = options.quiet ?? !(stream as NodeJS.WriteStream).isTTY;
  let multibar: cliProgress.MultiBar | undefined;
  let bar: cliProgress.SingleBar | undefined;
  let total = 0;
  let startStep = 0;
  let every = 1;
  let lastTime = 0;
  let msPerStep: number | undefined;
  let runStarted = 0;

  const rate = () => (msPerStep ? 1000 / msPerStep : 0);
  const line = (step: number, scalars: Record<string, number>) => {
    const pct = total > 0 ? Math.floor((100 * step) / total) : 100;
    const r = rate();
    return (
      `step ${step}/${total} (${pct}%) | ${r.toFixed(2)} it/s | ETA ${r > 0 ? formatDuration((total - step) / r) : '?'} | ` +
      `D ${fmtLoss(scalars.d_loss)} G ${fmtLoss(scalars.g_loss)}`
    );
  };
  const print = (text: string) => {
    if (multibar) {
      multibar.log(text + '\n');
      // Flush now: MultiBar prints its log buffer only on its next redraw, which may never come before stop().
      multibar.update();
    } else {
      stream.write(text + '\n');
    }
  };

  return definePlugin({
    name: 'progress',
    on: {
      'run:start': ({ startStep: start, totalSteps }) => {
        total = totalSteps;
        startStep = start;
        every = options.every ?? Math.max(1, Math.round(totalSteps / 20));
        runStarted = lastTime = performance.now();
        msPerStep = undefined;
        if (quiet) {
          stream.write(`training: steps ${start + 1}..${totalSteps}\n`);
          return;
        }
        multibar = new cliProgress.MultiBar(
          {
            stream,
            format: '{bar} {value}/{total} | {speed} it/s | ETA {eta_fmt} | D {d} G {g}',
            barsize: 30,
            hideCursor: true,
            clearOnComplete: false,
            noTTYOutput: true,
            fps: 5,
          },
          cliProgress.Presets.shades_classic,
        );
        bar = multibar.create(totalSteps, start, { speed: '-', eta_fmt: '?', d: '-', g: '-' });
      },
      'step:end': ({ step, scalars }) => {
        const t = performance.now();
        const dt = t - lastTime;
        lastTime = t;
        // Exponential moving average of wall time per step, so it/s and ETA settle instead of jumping.
        msPerStep = msPerStep === undefined ? dt : 0.9 * msPerStep + 0.1 * dt;
        const r = rate();
        if (bar) {
          bar.update(step, {
            speed: r.toFixed(2),
            eta_fmt: r > 0 ? formatDuration((total - step) / r) : '?',
            d: fmtLoss(scalars.d_loss),
            g: fmtLoss(scalars.g_loss),
          });
        } else if (step % every === 0 || step === total) {
          stream.write(line(step, scalars) + '\n');
        }
      },
      alert: ({ step, kind, severity, message }) => {
        print(`[${severity}] ${kind} at step ${step}: ${message}`);
      },
      'run:end': ({ step, reason }) => {
        if (multibar) {
          multibar.stop();
          multibar = undefined;
          bar = undefined;
        }
        const seconds = (performance.now() - runStarted) / 1000;
        stream.write(`${reason === 'completed' ? 'done' : reason}: ${step - startStep} steps in ${formatDuration(seconds)} (step ${step}/${total})\n`);
      },
    },
  });
}
