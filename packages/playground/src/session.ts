import * as tf from '@tensorflow/tfjs-core';
import { Rng, Trainer, definePlugin, indexedDbCheckpoints, type CheckpointStore, type GantryEvents } from '@gantry/core';
import { buildExperiment, experiments, type Experiment } from '@gantry/cli/experiments';
import { mnistSource, type MnistArrays, type MnistSplit } from '@gantry/datasets';
import { diagnostics } from '@gantry/monitor';
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
  /** Fixed-noise samples: `values` is [n, ...shape] row-major. */
  samples(step: number, values: Float32Array, shape: number[]): void;
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

export function experimentNamed(name: string): Experiment {
  const experiment = experiments[name];
  if (!experiment) throw new Error(`Unknown experiment "${name}"`);
  return experiment;
}

/** Samples drawn for the grid or scatter: 64 images, or 1024 points for 2-D data. */
const sampleCount = (shape: number[]) => (shape.length === 1 ? 1024 : 64);

export class Session {
  readonly trainer: Trainer;
  private constructor(
    readonly settings: SessionSettings,
    trainer: Trainer,
    /** The experiment's data source (the ring's mode centres for the scatter). */
    readonly data: unknown,
    private readonly fixedNoise: tf.Tensor2D,
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
    if (resume) await trainer.restore(checkpointStore(settings.experiment));
    await trainer.setup();
    const fixedNoise = trainer.sampleLatent(sampleCount(trainer.dataShape), new Rng(SAMPLE_SEED));
    const session = new Session(settings, trainer, setup.data, fixedNoise, events);
    created.session = session;
    localStorage.setItem(SETTINGS_KEY, JSON.stringify(settings));
    return session;
  }

  /** The sampling generator's output for the fixed noise. */
  async samples(): Promise<{ noise: Float32Array; values: Float32Array; shape: number[] }> {
    const out = this.trainer.generate(this.fixedNoise);
    try {
      return { noise: (await this.fixedNoise.data()) as Float32Array, values: (await out.data()) as Float32Array, shape: out.shape };
    } finally {
      out.dispose();
    }
  }

  async drawSamples(): Promise<void> {
    const { values, shape } = await this.samples();
    this.events.samples(this.trainer.step, values, shape);
  }

  /** Saves the sampling generator as `model.json` + `model.weights.bin` through the browser's downloads. */
  async downloadGenerator(): Promise<void> {
    await this.trainer.samplingGenerator.save('downloads://model');
  }

  dispose(): void {
    this.fixedNoise.dispose();
  }
}
