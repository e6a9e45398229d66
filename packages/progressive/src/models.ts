import * as tfl from '@tensorflow/tfjs-layers';
import type { LayersModel, LayerVariable, SymbolicTensor } from '@tensorflow/tfjs-layers';
import { GantryError, checkOptions, withSeed } from '@gantry/core';
import { FadeIn, PixelNorm } from './layers.js';

export interface ProgressiveGanOptions {
  /** Latent size. Default 128. */
  latentDim?: number;
  /** Image channels (1 for MNIST). Default 1. */
  channels?: number;
  /** Final resolution, a power of two ≥ 8; growth starts at 4×4 and doubles per stage. Default 32. */
  resolution?: number;
  /** Feature maps per stage (4×4 first), or one number for all. Default [128, 128, 64, 32, 16, 16, …]. */
  filters?: number | number[];
  /** Leaky ReLU slope. Default 0.2. */
  leak?: number;
  /** Pixelwise feature normalization after each generator convolution (ProGAN). Default true. */
  pixelNorm?: boolean;
  /** Activation of the toRGB convolutions. ProGAN uses 'linear'; default 'tanh' keeps samples in [-1, 1]. */
  outputActivation?: 'linear' | 'tanh';
  /**
   * Layers applied to the discriminator's 4×4 features before its final block, built once and shared by every stage.
   * ProGAN puts a minibatch standard-deviation layer here: `() => [minibatchStdDev()]` from @gantry/minibatch-disc.
   */
  layersBeforeFinalBlock?: () => tfl.layers.Layer[];
  /** Seed for the initial weights of every block (built up front), for reproducible runs. */
  seed?: number;
}

const OPTION_KEYS = [
  'latentDim',
  'channels',
  'resolution',
  'filters',
  'leak',
  'pixelNorm',
  'outputActivation',
  'layersBeforeFinalBlock',
  'seed',
];

type Block = tfl.layers.Layer[];

const run = (layers: Block, x: SymbolicTensor): SymbolicTensor => layers.reduce((h, l) => l.apply(h) as SymbolicTensor, x);

/**
 * Generator and discriminator for progressive growing (Karras et al. 2018). Every block is built up front; the
 * model for a stage (stable, or fading in its newest block) is a tfjs model wired from those shared layers, so all
 * stage models train the same weights and swapping models between steps loses nothing.
 *
 * Generator stage s: z → [pixelnorm] → dense 4×4 → conv3×3 (block 0) → (upsample, conv3×3, conv3×3) per block
 * 1…s → toRGB_s (1×1 conv). While block s fades in, the output is (1 − α)·upsample(toRGB_{s−1}(h)) +
 * α·toRGB_s(block_s(h)).
 *
 * Discriminator stage s: fromRGB_s (1×1 conv) → (conv3×3, conv3×3, avgpool) per block s…1 → block 0 (conv3×3,
 * dense, dense → 1 logit). While block s fades in, the input also takes the old path avgpool(x) → fromRGB_{s−1},
 * and (1 − α)·old + α·new feeds block s−1.
 *
 * Not included from ProGAN: equalized learning rate. Its minibatch-stddev layer plugs in through
 * `layersBeforeFinalBlock` (from @gantry/minibatch-disc).
 */
export class ProgressiveGan {
  readonly latentDim: number;
  readonly channels: number;
  /** Resolution of each stage: 4, 8, …, resolution. */
  readonly resolutions: readonly number[];
  readonly filters: readonly number[];

  private readonly gBlocks: Block[] = [];
  private readonly toRGB: tfl.layers.Layer[] = [];
  private readonly dBlocks: Block[] = [];
  private readonly fromRGB: Block[] = [];
  private readonly gFade: FadeIn[] = [];
  private readonly dFade: FadeIn[] = [];
  private readonly cache = new Map<string, LayersModel>();
  private readonly leak: number;

  constructor(options: ProgressiveGanOptions = {}) {
    checkOptions('ProgressiveGan', options, OPTION_KEYS);
    this.latentDim = options.latentDim ?? 128;
    this.channels = options.channels ?? 1;
    const resolution = options.resolution ?? 32;
    const stages = Math.log2(resolution) - 1;
    if (!Number.isInteger(stages) || stages < 2) {
      throw new GantryError(`ProgressiveGan resolution must be a power of two ≥ 8, got ${resolution}`);
    }
    this.resolutions = Array.from({ length: stages }, (_, s) => 4 * 2 ** s);
    const defaults = [128, 128, 64, 32, 16, 16, 16, 16, 16];
    const f = options.filters ?? defaults.slice(0, stages);
    this.filters = typeof f === 'number' ? new Array(stages).fill(f) : [...f];
    if (this.filters.length !== stages || this.filters.some((n) => !Number.isInteger(n) || n < 1)) {
      throw new GantryError(`ProgressiveGan filters must list ${stages} positive integers (one per resolution 4…${resolution})`);
    }
    this.leak = options.leak ?? 0.2;
    const pixelNorm = options.pixelNorm ?? true;
    const outputActivation = options.outputActivation ?? 'tanh';
    const build = () => this.buildLayers(pixelNorm, outputActivation, options.layersBeforeFinalBlock?.() ?? []);
    if (options.seed === undefined) build();
    else withSeed(options.seed, build);
  }

  get stages(): number {
    return this.resolutions.length;
  }

  private lrelu(): tfl.layers.Layer {
    return tfl.layers.leakyReLU({ alpha: this.leak });
  }

  private buildLayers(pixelNorm: boolean, outputActivation: 'linear' | 'tanh', beforeFinal: Block): void {
    const norm = (): Block => (pixelNorm ? [new PixelNorm()] : []);
    const conv = (filters: number, kernelSize: number, name: string, activation?: 'linear' | 'tanh') =>
      tfl.layers.conv2d({ filters, kernelSize, padding: 'same', name, activation });
    const f = this.filters;
    for (let s = 0; s < this.stages; s++) {
      const r = this.resolutions[s];
      if (s === 0) {
        this.gBlocks.push([
          ...norm(),
          tfl.layers.dense({ units: 4 * 4 * f[0], name: 'g_4_dense' }),
          tfl.layers.reshape({ targetShape: [4, 4, f[0]] }),
          this.lrelu(),
          ...norm(),
          conv(f[0], 3, 'g_4_conv'),
          this.lrelu(),
          ...norm(),
        ]);
      } else {
        this.gBlocks.push([
          tfl.layers.upSampling2d({ size: [2, 2] }),
          conv(f[s], 3, `g_${r}_conv1`),
          this.lrelu(),
          ...norm(),
          conv(f[s], 3, `g_${r}_conv2`),
          this.lrelu(),
          ...norm(),
        ]);
        this.gFade[s] = new FadeIn({ name: `g_${r}_fade` });
        this.dFade[s] = new FadeIn({ name: `d_${r}_fade` });
      }
      this.toRGB.push(conv(this.channels, 1, `g_${r}_torgb`, outputActivation));
      this.fromRGB.push([conv(f[s], 1, `d_${r}_fromrgb`), this.lrelu()]);
      this.dBlocks.push(
        s === 0
          ? [
              ...beforeFinal,
              conv(f[0], 3, 'd_4_conv'),
              this.lrelu(),
              tfl.layers.flatten(),
              tfl.layers.dense({ units: f[0], name: 'd_4_dense' }),
              this.lrelu(),
              tfl.layers.dense({ units: 1, name: 'd_4_logit' }),
            ]
          : [
              conv(f[s], 3, `d_${r}_conv1`),
              this.lrelu(),
              conv(f[s - 1], 3, `d_${r}_conv2`),
              this.lrelu(),
              tfl.layers.averagePooling2d({ poolSize: 2, strides: 2 }),
            ],
      );
    }
    // Build every layer now, so all weights exist (and are checkpointed) before their stage is reached.
    for (let s = 0; s < this.stages; s++) {
      this.generator(s, s > 0);
      this.discriminator(s, s > 0);
    }
  }

  private checkStage(stage: number, fading: boolean): void {
    if (!Number.isInteger(stage) || stage < 0 || stage >= this.stages) {
      throw new GantryError(`Stage ${stage} does not exist (stages 0…${this.stages - 1}: ${this.resolutions.join(', ')})`);
    }
    if (fading && stage === 0) throw new GantryError('Stage 0 (4×4) has no fade-in');
  }

  /** The generator of `stage` (output resolutions[stage]); `fading` blends in block `stage` with the fade α. */
  generator(stage: number, fading = false): LayersModel {
    this.checkStage(stage, fading);
    const key = `g${stage}${fading ? 'f' : ''}`;
    const cached = this.cache.get(key);
    if (cached) return cached;
    const z = tfl.input({ shape: [this.latentDim], name: `z_${key}` });
    let h = run(this.gBlocks[0], z);
    for (let s = 1; s < stage; s++) h = run(this.gBlocks[s], h);
    let out: SymbolicTensor;
    if (stage === 0) out = this.toRGB[0].apply(h) as SymbolicTensor;
    else {
      const fresh = this.toRGB[stage].apply(run(this.gBlocks[stage], h)) as SymbolicTensor;
      if (!fading) out = fresh;
      else {
        const old = tfl.layers.upSampling2d({ size: [2, 2] }).apply(this.toRGB[stage - 1].apply(h)) as SymbolicTensor;
        out = this.gFade[stage].apply([old, fresh]) as SymbolicTensor;
      }
    }
    const model = tfl.model({ inputs: z, outputs: out, name: `generator_${this.resolutions[stage]}${fading ? '_fade' : ''}` });
    this.cache.set(key, model);
    return model;
  }

  /** The discriminator of `stage` (input resolutions[stage]); `fading` blends in block `stage` with the fade α. */
  discriminator(stage: number, fading = false): LayersModel {
    this.checkStage(stage, fading);
    const key = `d${stage}${fading ? 'f' : ''}`;
    const cached = this.cache.get(key);
    if (cached) return cached;
    const r = this.resolutions[stage];
    const x = tfl.input({ shape: [r, r, this.channels], name: `x_${key}` });
    let h = run(this.fromRGB[stage], x);
    if (stage > 0) {
      h = run(this.dBlocks[stage], h);
      if (fading) {
        const pooled = tfl.layers.averagePooling2d({ poolSize: 2, strides: 2 }).apply(x) as SymbolicTensor;
        const old = run(this.fromRGB[stage - 1], pooled);
        h = this.dFade[stage].apply([old, h]) as SymbolicTensor;
      }
      for (let s = stage - 1; s >= 1; s--) h = run(this.dBlocks[s], h);
    }
    const out = run(this.dBlocks[0], h);
    const model = tfl.model({ inputs: x, outputs: out, name: `discriminator_${r}${fading ? '_fade' : ''}` });
    this.cache.set(key, model);
    return model;
  }

  /** Sets the fade α of block `stage` in both networks. */
  setAlpha(stage: number, alpha: number): void {
    this.checkStage(stage, true);
    if (!(alpha >= 0 && alpha <= 1)) throw new GantryError(`Fade alpha must be in [0, 1], got ${alpha}`);
    this.gFade[stage].alpha = alpha;
    this.dFade[stage].alpha = alpha;
  }

  /** Every weight of every block of both networks, in a fixed order (for checkpoints). */
  allWeights(): LayerVariable[] {
    const seen = new Set<LayerVariable>();
    for (let s = 0; s < this.stages; s++) {
      for (const model of [this.generator(s, s > 0), this.discriminator(s, s > 0)]) {
        for (const w of model.weights) seen.add(w);
      }
    }
    return [...seen];
  }

  /** Releases every weight. */
  dispose(): void {
    for (const w of this.allWeights()) w.dispose();
    this.cache.clear();
  }
}

/** Builds the layers of a progressively growing GAN; see ProgressiveGan. */
export function progressiveGan(options: ProgressiveGanOptions = {}): ProgressiveGan {
  return new ProgressiveGan(options);
}
