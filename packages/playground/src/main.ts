import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { LINE_CHART_CSS, mountLineChart, type LineChart, type Series } from '@gantry/monitor/charts';
import { availableBackends, type PageBackend } from './backends.js';
import { drawGrid, drawScatter } from './draw.js';
import { Session, checkpointStore, experimentNamed, savedSettings, type SessionSettings } from './session.js';
import { experiments } from '@gantry/cli/experiments';
import { countModes, type Mixture2D } from '@gantry/datasets';
import './style.css';

const $ = <T extends HTMLElement>(testId: string) => document.querySelector<T>(`[data-testid="${testId}"]`)!;
document.head.append(Object.assign(document.createElement('style'), { textContent: LINE_CHART_CSS }));

/**
 * Experiments that train at a useful speed in a tab: the ring variants and those on the reference DCGAN-sized models
 * (mnist-dcgan's speed; FID, read from disk by the CLI, is left out in a page). The progressive and SN variants take
 * hours on wasm.
 */
const PAGE_EXPERIMENTS = [
  'ring-gan',
  'ring-wgan-gp',
  'ring-unrolled',
  'ring-minibatch',
  'mnist-dcgan',
  'mnist-wgan-gp',
  'mnist-cgan',
  'mnist-r3gan',
  'mnist-limited',
  'mnist-limited-diffaugment',
  'mnist-limited-ada',
].filter((name) => name in experiments);

const experimentSelect = $<HTMLSelectElement>('experiment');
const backendSelect = $<HTMLSelectElement>('backend');
const stepsInput = $<HTMLInputElement>('steps');
const startButton = $<HTMLButtonElement>('start');
const newRunButton = $<HTMLButtonElement>('new-run');
const pauseButton = $<HTMLButtonElement>('pause');
const downloadButton = $<HTMLButtonElement>('download-generator');
const status = $('status');
const samplesCanvas = $<HTMLCanvasElement>('samples');

for (const name of PAGE_EXPERIMENTS) experimentSelect.add(new Option(name, name));

let session: Session | undefined;
let running: Promise<unknown> | undefined;
/** Per-step scalars of this page's session, for the charts and for automation (`window.gantry`). */
const history: { step: number; scalars: Record<string, number>; time: number }[] = [];
const evals: { step: number; metrics: Record<string, number> }[] = [];
let lossChart: LineChart | undefined;
let gradChart: LineChart | undefined;
let chartsDue = false;
const stepTimes: number[] = [];

function seriesOf(keys: string[]): Series[] {
  return keys.map((key) => ({ key, points: history.filter((h) => key in h.scalars).map((h) => [h.step, h.scalars[key]] as [number, number]) }));
}

function redrawCharts(): void {
  chartsDue = false;
  const keys = new Set(history.flatMap((h) => Object.keys(h.scalars)));
  const gradKeys = [...keys].filter((k) => k.includes('grad_norm')).sort();
  lossChart ??= mountLineChart(uPlot, $('loss-chart'), { id: 'losses', title: 'Losses', series: [], height: 200 });
  gradChart ??= mountLineChart(uPlot, $('grad-chart'), { id: 'grad-norms', title: 'Gradient norms', series: [], height: 200 });
  lossChart.update(seriesOf(['d_loss', 'g_loss'].filter((k) => keys.has(k))));
  gradChart.update(seriesOf(gradKeys));
}

function setRunning(isRunning: boolean): void {
  startButton.disabled = newRunButton.disabled = isRunning;
  downloadButton.disabled = session === undefined;
  pauseButton.disabled = !isRunning;
  experimentSelect.disabled = backendSelect.disabled = stepsInput.disabled = isRunning;
  document.body.dataset.state = isRunning ? 'running' : 'idle';
}

function showSamples(step: number, values: Float32Array, shape: number[], cols?: number): void {
  if (shape.length === 2) {
    const data = session?.data as Partial<Mixture2D> | undefined;
    drawScatter(samplesCanvas, values, data?.centers ?? []);
    if (data?.centers && data.std !== undefined) {
      const { covered, modes } = countModes(values, { centers: data.centers, std: data.std });
      $('modes').textContent = `${covered} of ${modes} modes covered at step ${step}`;
    }
  } else {
    drawGrid(samplesCanvas, values, shape, cols);
    $('modes').textContent = cols ? `row k shows class k (${cols} samples a class), step ${step}` : '';
  }
  samplesCanvas.dataset.step = String(step);
}

function settingsFromForm(): SessionSettings {
  const experiment = experimentNamed(experimentSelect.value);
  return {
    experiment: experiment.name,
    backend: backendSelect.value as PageBackend,
    seed: 0,
    steps: Number(stepsInput.value) || experiment.defaults.steps,
    batchSize: experiment.defaults.batchSize,
    // The page samples and checkpoints more often than the CLI: it is watched live and paused at any time.
    sampleEvery: Math.min(50, experiment.defaults.sampleEvery),
    checkpointEvery: Math.min(100, experiment.defaults.checkpointEvery),
  };
}

/** Clears what the page shows of the previous session: a new run's charts start at step 1. */
function clearView(): void {
  history.length = evals.length = stepTimes.length = 0;
  $('alerts').replaceChildren();
  $('step').textContent = '0';
}

async function start(fresh = false): Promise<void> {
  const saved = savedSettings();
  const resume = !fresh && saved !== undefined && saved.experiment === experimentSelect.value && startButton.dataset.resume === 'true';
  if (!resume) clearView();
  const settings = resume ? { ...saved, backend: backendSelect.value as PageBackend, steps: Math.max(saved.steps, Number(stepsInput.value) || 0) } : settingsFromForm();
  setRunning(true);
  status.textContent = resume ? 'Resuming…' : 'Starting…';
  try {
    session?.dispose();
    session = await Session.create(
      settings,
      {
        step: ({ step, scalars, stepMs }) => {
          history.push({ step, scalars, time: performance.now() });
          stepTimes.push(performance.now());
          if (stepTimes.length > 20) stepTimes.shift();
          $('step').textContent = String(step);
          $('d-loss').textContent = scalars.d_loss.toFixed(4);
          $('g-loss').textContent = scalars.g_loss.toFixed(4);
          const seconds = (stepTimes[stepTimes.length - 1] - stepTimes[0]) / 1000;
          $('steps-per-second').textContent = stepTimes.length > 1 ? ((stepTimes.length - 1) / seconds).toFixed(1) : (1000 / stepMs).toFixed(1);
          if (!chartsDue) {
            chartsDue = true;
            requestAnimationFrame(redrawCharts);
          }
        },
        eval: ({ step, metrics }) => void evals.push({ step, metrics }),
        alert: ({ step, severity, message }) => {
          const item = document.createElement('li');
          item.className = severity;
          item.textContent = `step ${step}: ${message}`;
          $('alerts').append(item);
        },
        warn: (line) => {
          const item = document.createElement('li');
          item.className = 'warning';
          item.textContent = line;
          $('alerts').append(item);
        },
        samples: showSamples,
      },
      resume,
    );
    const { trainer } = session;
    downloadButton.disabled = false;
    $('step').textContent = String(trainer.step);
    $('total-steps').textContent = String(settings.steps);
    $('backend-in-use').textContent = settings.backend;
    await session.drawSamples();
    status.textContent = 'Training';
    running = trainer.train();
    const result = (await running) as Awaited<ReturnType<typeof trainer.train>>;
    await session.drawSamples();
    status.textContent = result.reason === 'completed' ? `Done at step ${result.steps}` : `Paused at step ${result.steps} (checkpoint saved)`;
    startButton.dataset.resume = 'true';
    startButton.textContent = 'Resume';
  } catch (error) {
    status.textContent = `Error: ${error instanceof Error ? error.message : String(error)}`;
    throw error;
  } finally {
    running = undefined;
    setRunning(false);
    redrawCharts();
  }
}

startButton.addEventListener('click', () => void start());
// Start always resumes a stored run of the chosen experiment; this forgets it and trains from step 1.
newRunButton.addEventListener('click', () => void start(true));
pauseButton.addEventListener('click', () => session?.trainer.stop());
downloadButton.addEventListener('click', () => void session?.downloadGenerator());

async function init(): Promise<void> {
  for (const backend of await availableBackends()) backendSelect.add(new Option(backend, backend));
  const saved = savedSettings();
  if (saved && saved.experiment in experiments) {
    experimentSelect.value = saved.experiment;
    stepsInput.value = String(saved.steps);
    startButton.textContent = 'Resume';
    startButton.dataset.resume = 'true';
    status.textContent = `A ${saved.experiment} run can be resumed from this browser's storage`;
  } else {
    stepsInput.value = String(experimentNamed(experimentSelect.value).defaults.steps);
  }
  experimentSelect.addEventListener('change', () => {
    stepsInput.value = String(experimentNamed(experimentSelect.value).defaults.steps);
    const resumable = savedSettings()?.experiment === experimentSelect.value;
    startButton.textContent = resumable ? 'Resume' : 'Start';
    startButton.dataset.resume = String(resumable);
  });
  pauseButton.disabled = true;
  downloadButton.disabled = true;
  document.body.dataset.state = 'idle';
}

/** Hooks for automation and the console: the session, its per-step scalars and the fixed-noise samples. */
Object.assign(window, {
  gantry: {
    get session() {
      return session;
    },
    history,
    evals,
    samples: () => session!.samples(),
    /** The latest IndexedDB checkpoint of the current experiment: its state document and generator weights. */
    async checkpoint() {
      const store = checkpointStore(experimentSelect.value);
      const name = (await store.latest())!;
      const generator = await store.reader(name, 'generator').load!();
      const state = (await store.reader(name, 'state').load!()).modelTopology;
      return { name, state, weightSpecs: generator.weightSpecs, weights: Array.from(new Uint8Array(generator.weightData as ArrayBuffer)) };
    },
    running: () => running,
  },
});

void init();
