import type { Command } from 'commander';
import { GantryError } from '@gantry/core';
import { setupTensorflow, verifyNativeBuild } from '@gantry/engine';

interface SetupFlags {
  version?: string;
  from?: string;
  gpu?: boolean;
  force?: boolean;
}

/** `gantry setup tensorflow`: builds tfjs-node's addon against a TensorFlow wheel (see @gantry/engine's ENGINE.md). */
export function registerSetup(program: Command): void {
  program
    .command('setup')
    .description('install an optional engine: "tensorflow" builds the native TensorFlow backend (tfjs-node) from a TensorFlow wheel')
    .argument('<engine>', 'tensorflow')
    .option('--version <x>', 'TensorFlow release whose pip wheel is used (default: the pinned one)')
    .option('--from <dir>', 'use an existing TensorFlow install instead (a Python environment\'s tensorflow folder or site-packages)')
    .option('--gpu', 'build @tensorflow/tfjs-node-gpu (CUDA) instead of @tensorflow/tfjs-node; untested, best with --from a Python env with tensorflow[and-cuda] (see ENGINE.md)')
    .option('--force', 'rebuild even when a verified build exists')
    .action(async (engine: string, flags: SetupFlags) => {
      if (engine !== 'tensorflow') throw new GantryError(`setup: unknown engine "${engine}" (known: tensorflow)`);
      const flavour = flags.gpu ? 'gpu' : 'cpu';
      const log = (line: string) => console.log(line);
      const t0 = performance.now();
      const result = await setupTensorflow(
        { version: flags.version, from: flags.from, gpu: Boolean(flags.gpu), force: Boolean(flags.force), log },
        (dir, manifest) => verifyNativeBuild(flavour, dir, manifest, log),
      );
      const stages = Object.entries(result.seconds).map(([k, s]) => `${k} ${s} s`).join(', ');
      console.log(
        `ready: ${result.manifest.package} ${result.manifest.version} on libtensorflow ${result.manifest.tensorflowVersion} ` +
          `(${result.manifest.libtensorflow}) in ${((performance.now() - t0) / 1000).toFixed(1)} s [${stages}]; ` +
          'useBackend() / --backend auto now picks it',
      );
    });
}
