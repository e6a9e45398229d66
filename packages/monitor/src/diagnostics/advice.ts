/**
 * Advice that fits the run: an alert suggests only remedies that are not already in use, and says which ones are.
 * ("Add a gradient penalty" while one is active is a false lead that costs the user's trust in every alert.)
 */
import type { Trainer } from '@gantry/core';

/** What the advice needs to know about a run: its plugins, loss, discriminator layers and optimizer settings. */
export interface RunFacts {
  plugins: ReadonlySet<string>;
  lossName: string;
  /** Class names of the discriminator's layers (also of nested models' layers). */
  discriminatorLayers: ReadonlySet<string>;
  learningRates: { generator?: number; discriminator?: number };
  nCritic: number;
}

interface LayerLike {
  getClassName(): string;
  layers?: LayerLike[];
  layer?: LayerLike;
}

function layerClasses(layers: readonly LayerLike[], into = new Set<string>()): Set<string> {
  for (const layer of layers) {
    into.add(layer.getClassName());
    if (layer.layers) layerClasses(layer.layers, into);
    if (layer.layer) layerClasses([layer.layer], into);
  }
  return into;
}

const learningRate = (optimizer: { getConfig(): Record<string, unknown> } | undefined) => {
  const value = optimizer?.getConfig().learningRate;
  return typeof value === 'number' ? value : undefined;
};

export function runFacts(trainer: Trainer): RunFacts {
  return {
    plugins: new Set(trainer.plugins.map((p) => p.name)),
    lossName: trainer.loss?.name ?? '',
    discriminatorLayers: layerClasses(trainer.discriminator.layers as unknown as LayerLike[]),
    learningRates: {
      generator: learningRate(trainer.optimizers.generator as never),
      discriminator: learningRate(trainer.optimizers.discriminator as never),
    },
    nCritic: trainer.nCritic,
  };
}

interface Remedy {
  /** The suggestion, as it reads after "Try". */
  text: string;
  /** Set when the run already has it: what the run has, named for the user. */
  active?: (f: RunFacts) => string | undefined;
  /** Only suggested where it applies to this run. */
  applies?: (f: RunFacts) => boolean;
}

const has = (name: string, label = name) => (f: RunFacts) => (f.plugins.has(name) ? label : undefined);
const gradientPenalty = (f: RunFacts) =>
  ['gradient-penalty', 'r1', 'r2'].find((p) => f.plugins.has(p)) ? 'a gradient penalty' : undefined;
const spectralNorm = (f: RunFacts) =>
  f.plugins.has('spectral-norm') || f.discriminatorLayers.has('SpectralNormalization') ? 'spectral normalization on D' : undefined;
const ttur = (f: RunFacts) => {
  const { generator, discriminator } = f.learningRates;
  return generator !== undefined && discriminator !== undefined && generator !== discriminator
    ? `separate learning rates (G ${generator}, D ${discriminator})`
    : undefined;
};
const augmentation = (f: RunFacts) => ['ada', 'diffaugment'].find((p) => f.plugins.has(p)) ?? undefined;
const minibatchFeatures = (f: RunFacts) =>
  f.discriminatorLayers.has('MinibatchDiscrimination') || f.discriminatorLayers.has('MinibatchStdDev') ? 'minibatch features in D' : undefined;

const REMEDIES: Record<string, Remedy[]> = {
  d_overpowering: [
    { text: 'one-sided label smoothing', active: has('label-smoothing', 'label smoothing') },
    { text: 'instance noise', active: has('instance-noise', 'instance noise') },
    { text: 'differentiable augmentation (DiffAugment or ADA)', active: augmentation },
    { text: 'a lower D learning rate' },
    { text: 'fewer critic steps', applies: (f) => f.nCritic > 1 },
  ],
  grad_norm_ratio: [
    { text: 'TTUR learning rates', active: ttur },
    { text: 'a gradient penalty', active: gradientPenalty },
    { text: 'spectral normalization on D', active: spectralNorm },
  ],
  mode_collapse: [
    { text: 'minibatch discrimination', active: minibatchFeatures },
    { text: 'unrolled D steps', active: has('unrolled', 'unrolled D steps') },
    { text: 'PacGAN packing', active: has('pacgan', 'PacGAN packing') },
    { text: 'a lower G learning rate' },
  ],
  oscillation: [{ text: 'lower learning rates' }, { text: 'a gradient penalty', active: gradientPenalty }],
  vanishing_g_gradient: [
    { text: 'the non-saturating generator loss', applies: (f) => f.lossName === 'minimax' },
    { text: 'a lower D learning rate' },
    { text: 'one-sided label smoothing', active: has('label-smoothing', 'label smoothing') },
    { text: 'instance noise', active: has('instance-noise', 'instance noise') },
  ],
};

const list = (items: string[]) => (items.length <= 1 ? items.join('') : `${items.slice(0, -1).join(', ')} or ${items.at(-1)}`);

/** "Try a, b or c." with the remedies this run does not use yet, and "Already active: …" for the others. */
export function adviceFor(kind: string, facts: RunFacts): string {
  const remedies = (REMEDIES[kind] ?? []).filter((r) => !r.applies || r.applies(facts));
  const active = remedies.map((r) => r.active?.(facts)).filter((a): a is string => a !== undefined);
  const open = remedies.filter((r) => !r.active?.(facts)).map((r) => r.text);
  const parts: string[] = [];
  if (open.length) parts.push(`Try ${list(open)}.`);
  if (active.length) parts.push(`Already active: ${active.join(', ')}.`);
  return parts.join(' ');
}
