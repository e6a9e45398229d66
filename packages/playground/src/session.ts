import * as tf from '@tensorflow/tfjs-core';
import { Rng, Trainer, definePlugin, indexedDbCheckpoints, type CheckpointStore, type GantryEvents } from '@gantry/core';
import { buildExperiment, experiments, type Experiment } from '@gantry/cli/experiments';
import { mnistSource, type MnistArrays, type MnistSplit } from '@gantry/datasets';
import { diagnostics, gridLabels } from '@gantry/monitor';
import { useBackend, type PageBackend } from './backends.js';
import { fetchMnist } from './mnist.js';

/** What a session was started with; kept in localStorage so a reloaded page can resume it from IndexedDB. */
export interface SessionSettings {
  experiment: string;
  backend: PageBackend;
  seed: number;
  steps: number;
  batchSize: number;
  sampleEvery: number;
  checkpointEvery: number;
}

export interface SessionEvents {
  step(payload: GantryEvents['step:end']): void;
  eval(payload: GantryEvents['eval']): void;
  alert(payload: GantryEvents['alert']): void;
  /** A damaged newest checkpoint was passed over on resume (one line naming it and the one used). */
  warn(line: string): void;
  /** Fixed-noise samples: `values` is [n, ...shape] row-major; `cols` images a row (a class a row when conditional). */
  samples(step: number, values: Float32Array, shape: number[], cols?: number): void;
}

const SETTINGS_KEY = 'gantry-playground:session';
/** Fixed noise for the sample view (and for checking a downloaded generator against the page). */
export const SAMPLE_SEED = 0xf1ced;

export const savedSettings = (): SessionSettings | undefined => {
  const text = localStorage.getItem(SETTINGS_KEY);
  return text ? (JSON.parse(text) as SessionSettings) : undefined;
};

/** The IndexedDB checkpoints of an experiment's page run (one run per experiment name). */
export const checkpointStore = (experiment: string): CheckpointStore => indexedDbCheckpoints(`gantry-playground/${experiment}`);

/**
 * Removes everything stored for an experiment's page run (checkpoints, manifests, the latest pointer). A new run starts
 * from this, so that pruning by step number never keeps an older run's higher steps, nor a damaged checkpoint's
 * fallback land in another run.
 */
export async function forgetStoredRun(experiment: string): Promise<void> {
  // Every key under the store's location, half-written checkpoints included (list() names complete ones only).
  const prefix = `${checkpointStore(experiment).location}/`;
  for (const key of Object.keys(await tf.io.listModels())) if (key.startsWith(prefix)) await tf.io.removeModel(key);
  if (savedSettings()?.experiment === experiment) localStorage.removeItem(SETTINGS_KEY);
}

export function experimentNamed(name: string): Experiment {
  const experiment = experiments[name];
  if (!experiment) throw new Error(`Unknown experiment "${name}"`);
  return experiment;
}

/** Samples drawn for the scatter or grid: 1024 points for 2-D data, 64 images, or 10 a class (a row each). */
function sampleLayout(trainer: Trainer): { count: number; cols?: number; classes?: number } {
  if (trainer.dataShape.length === 1) return { count: 1024 };
  const classes = trainer.conditional ? trainer.numClasses : undefined;
  if (trainer.conditional && !classes) throw new Error('The generator is conditional but the number of classes is unknown');
  return classes ? { count: classes * 10, cols: 10, classes } : { count: 64 };
}

export class Session {
  readonly trainer: Trainer;
  private constructor(
    readonly settings: SessionSettings,
    trainer: Trainer,
    /** The experiment's data source (the ring's mode centres for the scatter). */
    readonly data: unknown,
    private readonly fixedNoise: tf.Tensor2D,
    /** The class of each fixed-noise sample of a conditional generator (row k shows class k). */
    private readonly fixedLabels: tf.Tensor1D | undefined,
    /** Samples a row in the grid (10 for a conditional generator, else a square). */
    private readonly cols: number | undefined,
    private readonly events: SessionEvents,
  ) {
    this.trainer = trainer;
  }

  /** Builds the experiment on the chosen backend; with `resume`, continues from the store's latest checkpoint. */
  static async create(settings: SessionSettings, events: SessionEvents, resume: boolean): Promise<Session> {
    await useBackend(settings.backend);
    const experiment = experimentNamed(settings.experiment);
    const arrays = new Map<MnistSplit, MnistArrays>();
    for (const split of experiment.needs?.mnist ?? []) arrays.set(split, await fetchMnist(split));
    const setup = await buildExperiment(experiment, {
      seed: settings.seed,
      batchSize: settings.batchSize,
      steps: settings.steps,
      mnist: (options = {}) => {
        const split = options.split ?? 'train';
        const loaded = arrays.get(split);
        if (!loaded) throw new Error(`${experiment.name} reads MNIST ${split} but does not list it in needs.mnist`);
        return mnistSource(loaded, options);
      },
    });
    // The page plugin draws samples through the session, which exists once the trainer does.
    const created: { session?: Session } = {};
    const page = definePlugin({
      name: 'playground',
      on: {
        'step:end': async (payload) => {
          events.step(payload);
          if (payload.step % settings.sampleEvery === 0) await created.session?.drawSamples();
        },
        eval: (payload) => events.eval(payload),
        alert: (payload) => events.alert(payload),
      },
    });
    const trainer = new Trainer({
      ...setup,
      steps: settings.steps,
      batchSize: settings.batchSize,
      seed: settings.seed,
      checkpoint: { dir: checkpointStore(settings.experiment), every: settings.checkpointEvery, keep: 2 },
      plugins: [...(setup.plugins ?? []), diagnostics(), page],
    });
    if (resume) await trainer.restore(checkpointStore(settings.experiment), { warn: (line) => events.warn(line) });
    else await forgetStoredRun(settings.experiment);
    await trainer.setup();
    const layout = sampleLayout(trainer);
    const fixedNoise = trainer.sampleLatent(layout.count, new Rng(SAMPLE_SEED));
    const labels = layout.classes ? tf.tensor1d(gridLabels(layout.count, layout.cols!, layout.classes), 'int32') : undefined;
    const session = new Session(settings, trainer, setup.data, fixedNoise, labels, layout.cols, events);
    created.session = session;
    localStorage.setItem(SETTINGS_KEY, JSON.stringify(settings));
    return session;
  }

  /** The sampling generator's output for the fixed noise. */
  async samples(): Promise<{ noise: Float32Array; labels?: Int32Array; values: Float32Array; shape: number[] }> {
    const out = this.trainer.generate(this.fixedNoise, this.fixedLabels);
    try {
      return {
        noise: (await this.fixedNoise.data()) as Float32Array,
        labels: this.fixedLabels ? ((await this.fixedLabels.data()) as Int32Array) : undefined,
        values: (await out.data()) as Float32Array,
        shape: out.shape,
      };
    } finally {
      out.dispose();
    }
  }

  async drawSamples(): Promise<void> {
    const { values, shape } = await this.samples();
    this.events.samples(this.trainer.step, values, shape, this.cols);
  }

  /** Saves the sampling generator as `model.json` + `model.weights.bin` through the browser's downloads. */
  async downloadGenerator(): Promise<void> {
    await this.trainer.samplingGenerator.save('downloads://model');
  }

  dispose(): void {
    this.fixedNoise.dispose();
    this.fixedLabels?.dispose();
  }
}
