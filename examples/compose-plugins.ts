// Compose Gantry plugins in your own code: WGAN-GP on MNIST with an EMA generator and full monitoring.
// Run: npx tsx --conditions=@gantry/source examples/compose-plugins.ts [steps]
import { Trainer, withSeed } from '@gantry/core';
import { referenceDiscriminator, referenceGenerator, useBackend } from '@gantry/engine';
import { mnist } from '@gantry/datasets';
import { gradientPenalty, wganGpDefaults } from '@gantry/loss-wgan';
import { monitorPlugins } from '@gantry/monitor';
import { ema } from '@gantry/stabilizers';

await useBackend('auto');
const runDir = 'runs/compose-plugins';
const trainer = new Trainer({
  ...withSeed(0, () => ({ generator: referenceGenerator(), discriminator: referenceDiscriminator() })),
  ...wganGpDefaults(), // wgan() loss, nCritic 5, Adam(1e-4, 0, 0.9) for G and D (Gulrajani et al. 2017)
  data: mnist(),
  steps: Number(process.argv[2] ?? 2000),
  plugins: [gradientPenalty({ lambda: 10 }), ema({ beta: 0.999 }), ...monitorPlugins({ runDir, sampleEvery: 100 })],
  checkpoint: { dir: `${runDir}/checkpoints`, every: 500 },
});
await trainer.train();
